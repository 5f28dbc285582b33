from twisted.application.service import ServiceMaker

headroom = ServiceMaker(
    "headroom",
    "headroom_twisted.tap",
    "LLM context-compression reverse proxy",
    "headroom",
)
