"""A recording fake upstream, an in-process proxy, and a loopback HTTP client for tests."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from headroom_twisted.compression_service import CompressionService
from headroom_twisted.config import Config, build_config
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.service import HeadroomService
from headroom_twisted.web.proxy import BodyStage, forward_unchanged
from headroom_twisted.wiring import assemble, build_service

Handler = Callable[[Request, "Recorded"], Any]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Recorded:
    method: bytes
    uri: bytes
    headers: Headers
    body: bytes

    def header(self, name: bytes) -> list[bytes]:
        return self.headers.getRawHeaders(name, [])


def json_ok(request: Request, recorded: Recorded) -> bytes:
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"x-request-id", b"req_upstream_123")
    return b'{"ok": true}'


class _Recorder(Resource):
    isLeaf = True

    def __init__(self, fake: FakeUpstream) -> None:
        super().__init__()
        self._fake = fake

    def render(self, request: Request) -> Any:
        recorded = Recorded(
            method=request.method,
            uri=request.uri,
            headers=Headers(dict(request.requestHeaders.getAllRawHeaders())),
            body=request.content.read(),
        )
        self._fake.requests.append(recorded)
        return self._fake.handler(request, recorded)


@dataclass
class FakeUpstream:
    """An HTTP server on loopback that records every request and answers via `handler`."""

    handler: Handler = json_ok
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    port: Any = None
    site: Any = None

    def stop(self) -> Deferred[None]:
        return self.port.stopListening()

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


@inlineCallbacks
def start_upstream() -> Any:
    fake = FakeUpstream()
    fake.site = Site(_Recorder(fake))
    fake.site.noisy = False
    fake.port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(fake.site)
    fake.url = f"http://127.0.0.1:{fake.port.getHost().port}"
    return fake


@dataclass
class RunningProxy:
    service: HeadroomService
    url: str

    def stop(self) -> Deferred[None]:
        return self.service.stopService()


def start_proxy(upstream_url: str, production: bool = False, **options: str) -> RunningProxy:
    """A proxy on an ephemeral loopback port.

    `production=True` wires the real compression stage and SSE telemetry (as
    `twistd headroom` does, compression on by default); otherwise the proxy
    forwards bytes only, with compression off and no warm-up.
    """
    flags = {
        "openai-upstream": upstream_url,
        "anthropic-upstream": upstream_url,
        "compression": "live_zone" if production else "off",
        **{name.replace("_", "-"): value for name, value in options.items()},
    }
    config = build_config(flags, ["tcp:0:interface=127.0.0.1"], {})
    if production:
        service = build_service(config, reactor)
    else:
        service = proxy_service(config)
    service.startService()
    port = service.ports[0].getHost().port
    return RunningProxy(service=service, url=f"http://127.0.0.1:{port}")


def proxy_service(config: Config, body_stage: BodyStage = forward_unchanged) -> HeadroomService:
    """A service whose bodies go through `body_stage` (unchanged by default), not the compression pool."""

    def never_called(body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> NoReturn:
        raise AssertionError("a forwarding proxy compressed a body")

    compression = CompressionService(reactor, never_called, threads=config.threads)
    return assemble(config, reactor, compression, body_stage=body_stage)


def http_client(persistent: bool = False) -> treq.client.HTTPClient:
    pool = HTTPConnectionPool(reactor, persistent=persistent)
    return treq.client.HTTPClient(Agent(reactor, pool=pool))
