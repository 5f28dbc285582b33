"""Endpoints the proxy answers itself and never forwards."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from twisted.web.resource import Resource
from twisted.web.server import Request


def _json(request: Request, status: int, payload: object) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return orjson.dumps(payload)


class HealthResource(Resource):
    """`/healthz`: 200 while the process runs."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return _json(request, 200, {"status": "ok"})


class ReadyResource(Resource):
    """`/readyz`: 200 once the thread pool, tokenizer and detector are loaded, else 503."""

    isLeaf = True

    def __init__(self, readiness: Callable[[], dict[str, bool]]) -> None:
        super().__init__()
        self._readiness = readiness

    def render_GET(self, request: Request) -> bytes:
        checks = self._readiness()
        ready = all(checks.values())
        return _json(request, 200 if ready else 503, {"ready": ready, "checks": checks})
