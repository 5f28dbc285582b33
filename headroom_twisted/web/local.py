"""Endpoints the proxy answers itself and never forwards."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import orjson
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request


def _json(request: Request, status: int, payload: object) -> bytes:
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"cache-control", b"no-store")
    return orjson.dumps(payload)


class LocalOnly(Resource):
    """Answers only requests whose ``Host`` names this machine: against DNS rebinding.

    A web page at ``attacker.example`` whose name the attacker re-points at
    127.0.0.1 could otherwise read ``/stats`` from the browser of the laptop
    the proxy runs on: its requests carry ``Host: attacker.example``. So the
    wrapped resource answers only ``localhost``, an IP address (a page whose
    origin is an address is not rebinding anything) or a name the operator
    configured (``--local-hosts``); any other Host gets 421 and nothing else.
    """

    isLeaf = True

    def __init__(self, resource: IResource, names: tuple[str, ...]) -> None:
        super().__init__()
        self._resource = resource
        self._names = frozenset(("localhost", *names))

    def render(self, request: Request) -> bytes:
        if self._allowed(request.getRequestHostname().decode("ascii", "replace").lower()):
            return self._resource.render(request)  # type: ignore[no-any-return]
        return _json(request, 421, {"error": "misdirected request: this Host is not the proxy's"})

    def _allowed(self, host: str) -> bool:
        if host in self._names or host.endswith(".localhost"):
            return True
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return True


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
