"""`ProxyExchange` in memory: client bytes in on a StringTransport, upstream through treq's in-memory agent.

No sockets and no real seconds: the client side is a `ProxyChannel` on a
`StringTransport`, the upstream is a `Resource` behind
`treq.testing.RequestTraversalAgent`, and the idle timeout runs on a `Clock`.
Each test checks one thing the exchange promises: bytes forwarded as the
client sent them, errors in the provider's shape before any byte, a visible
cut after one, and a client that leaves taking its upstream work with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from site_client import SiteClient
from structlog.testing import capture_logs
from treq.testing import RequestTraversalAgent
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgent, IBodyProducer, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from headroom_twisted.config import Config, build_config
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.routing import Route
from headroom_twisted.web.proxy import BodyStage, InFlight, ProxyResource, forward_unchanged
from headroom_twisted.web.request import ProxySite


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Upstream(Resource):
    """A fake provider: records what it received, answers with `answer` (bytes, or NOT_DONE_YET to stream)."""

    answer: Callable[[Request], bytes | int] = lambda request: b'{"ok":true}'
    received: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    open_requests: list[Request] = field(default_factory=list)
    isLeaf = True

    def __post_init__(self) -> None:
        Resource.__init__(self)

    def render(self, request: Request) -> bytes | int:
        self.received.append((request.method, request.uri, request.content.read()))
        result = self.answer(request)
        if result == NOT_DONE_YET:
            self.open_requests.append(request)
        return result


def streaming(request: Request) -> int:
    request.setHeader(b"content-type", b"text/event-stream")
    request.write(b"data: first\n\n")
    return NOT_DONE_YET


@implementer(IAgent)
class FailingAgent:
    """An agent whose every request fails the way a refused connection does."""

    def request(
        self, method: bytes, uri: bytes, headers: Headers | None = None, bodyProducer: IBodyProducer | None = None
    ) -> Deferred[IResponse]:
        return fail(ConnectionRefusedError("refused"))


@implementer(IAgent)
class SilentAgent:
    """An agent that never answers: the exchange's own timeout must end the wait."""

    def __init__(self) -> None:
        self.cancelled = 0

    def request(
        self, method: bytes, uri: bytes, headers: Headers | None = None, bodyProducer: IBodyProducer | None = None
    ) -> Deferred[IResponse]:
        def cancelled(_: Deferred[IResponse]) -> None:
            self.cancelled += 1

        return Deferred(cancelled)


def config(**flags: str) -> Config:
    return build_config(
        {"openai-upstream": "http://openai.test", "anthropic-upstream": "http://anthropic.test", **flags},
        ["tcp:0"],
        {},
    )


@dataclass
class Harness:
    """One proxy resource and site on a Clock, and one client connection to it."""

    agent: IAgent
    clock: Clock
    site: ProxySite
    in_flight: InFlight

    def __post_init__(self) -> None:
        self.client = SiteClient(self.site)
        self.transport = self.client.transport

    def send(self, method: bytes, target: bytes, body: bytes = b"", headers: dict[bytes, bytes] | None = None) -> None:
        head = [b"%s %s HTTP/1.1" % (method, target), b"Host: proxy.test"]
        head += [b"%s: %s" % item for item in (headers or {b"content-type": b"application/json"}).items()]
        if body or method == b"POST":
            head.append(b"Content-Length: %d" % len(body))
        self.client.send(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.pump()

    def pump(self) -> None:
        flush = getattr(self.agent, "flush", None)
        if flush is not None:
            flush()

    def response(self) -> tuple[int, Headers, bytes]:
        return parse_response(self.transport.value())

    def close_as_the_proxy_asked(self) -> None:
        """StringTransport only records `loseConnection`; deliver the close it asked for."""
        assert self.client.closing
        self.client.close_as_asked()

    def client_leaves(self) -> None:
        self.client.leave(Failure(ConnectionRefusedError("client gone")))
        self.pump()


def harness(agent: IAgent, body_stage: BodyStage = forward_unchanged, **flags: str) -> tuple[Harness, ProxyResource]:
    clock = Clock()
    cfg = config(**flags)
    in_flight = InFlight()
    resource = ProxyResource(
        config=cfg,
        agent=agent,
        clock=clock,
        in_flight=in_flight,
        metrics=ProxyMetrics(clock, process_collectors=False),
        body_stage=body_stage,
    )
    site = ProxySite(resource, reactor=clock, max_body_bytes=cfg.max_body_bytes)
    return Harness(agent=agent, clock=clock, site=site, in_flight=in_flight), resource


def parse_response(raw: bytes) -> tuple[int, Headers, bytes]:
    """One HTTP/1.1 response: status, headers, and the body (chunked decoded; a cut body as far as it went)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers = Headers()
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.addRawHeader(name.strip(), value.strip())
    if headers.getRawHeaders(b"transfer-encoding") != [b"chunked"]:
        return status, headers, rest
    body = b""
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return status, headers, body


def finished_chunked(raw: bytes) -> bool:
    return raw.endswith(b"0\r\n\r\n")


BODY = json.dumps(
    {"model": "m", "messages": [{"role": "tool", "tool_call_id": "t", "content": "x" * 5000}]},
    separators=(", ", ": "),
).encode()


def test_the_upstream_receives_exactly_the_bytes_the_client_sent() -> None:
    upstream = Upstream()
    proxy, _ = harness(RequestTraversalAgent(upstream))
    proxy.send(b"POST", b"/v1/chat/completions?x=1", BODY)
    method, uri, received = upstream.received[0]
    assert (method, uri) == (b"POST", b"/v1/chat/completions?x=1")
    assert sha256(received) == sha256(BODY)
    status, headers, body = proxy.response()
    assert (status, body) == (200, b'{"ok":true}')
    assert len(proxy.in_flight) == 0


def test_what_the_body_stage_returns_is_what_goes_upstream() -> None:
    upstream = Upstream()
    seen: list[tuple[bytes, Route]] = []

    def shrink(method: bytes, route: Route, headers: Headers, body: bytes, log: object) -> Deferred[bytes]:
        seen.append((body, route))
        return succeed(b'{"model":"m","messages":[]}')

    proxy, _ = harness(RequestTraversalAgent(upstream), body_stage=shrink)
    proxy.send(b"POST", b"/v1/messages", BODY)
    assert seen[0][0] == BODY
    assert seen[0][1].path == b"/v1/messages"
    assert upstream.received[0][2] == b'{"model":"m","messages":[]}'
    assert proxy.response()[0] == 200


def test_a_stream_reaches_the_client_chunk_by_chunk_before_the_upstream_finishes() -> None:
    upstream = Upstream(answer=streaming)
    proxy, _ = harness(RequestTraversalAgent(upstream))
    proxy.send(b"POST", b"/v1/chat/completions", BODY)
    assert b"data: first" in proxy.transport.value()
    assert not finished_chunked(proxy.transport.value())
    upstream.open_requests[0].write(b"data: [DONE]\n\n")
    proxy.pump()
    assert proxy.transport.value().count(b"data: ") == 2
    upstream.open_requests[0].finish()
    proxy.pump()
    status, headers, body = proxy.response()
    assert status == 200
    assert headers.getRawHeaders(b"content-type") == [b"text/event-stream"]
    assert body == b"data: first\n\ndata: [DONE]\n\n"
    assert finished_chunked(proxy.transport.value())


def test_an_upstream_cut_mid_stream_is_a_visible_truncation_never_a_clean_end() -> None:
    upstream = Upstream(answer=streaming)
    proxy, _ = harness(RequestTraversalAgent(upstream))
    with capture_logs() as logs:
        proxy.send(b"POST", b"/v1/chat/completions", BODY)
        upstream.open_requests[0].channel.transport.loseConnection()
        proxy.pump()
        assert b"data: first" in proxy.transport.value()
        assert not finished_chunked(proxy.transport.value())
        proxy.close_as_the_proxy_asked()
    finished = [event for event in logs if event["event"] == "request_finished"]
    assert finished and finished[0]["outcome"] == "truncated"


@pytest.mark.parametrize(
    ("target", "shape"),
    [(b"/v1/chat/completions", "openai"), (b"/v1/messages", "anthropic")],
)
def test_an_unreachable_upstream_is_a_502_in_the_providers_shape(target: bytes, shape: str) -> None:
    proxy, _ = harness(FailingAgent())
    with capture_logs() as logs:
        proxy.send(b"POST", target, BODY)
    status, headers, body = proxy.response()
    assert status == 502
    error = json.loads(body)
    if shape == "anthropic":
        assert error["type"] == "error" and error["error"]["type"] == "api_error"
    else:
        assert error["error"]["code"] == "upstream_unreachable"
    assert [event["kind"] for event in logs if event["event"] == "upstream_error"] == ["connect"]


def test_no_response_headers_within_the_idle_timeout_is_a_504_and_the_call_is_cancelled() -> None:
    agent = SilentAgent()
    proxy, _ = harness(agent, **{"idle-timeout": "30"})
    proxy.send(b"POST", b"/v1/responses", BODY)
    assert proxy.transport.value() == b""
    proxy.clock.advance(29.9)
    assert proxy.transport.value() == b""
    proxy.clock.advance(0.2)
    status, _, body = proxy.response()
    assert status == 504
    assert json.loads(body)["error"]["code"] == "upstream_timeout"
    assert agent.cancelled == 1


def test_a_client_that_leaves_mid_stream_drops_the_upstream_connection() -> None:
    upstream = Upstream(answer=streaming)
    proxy, _ = harness(RequestTraversalAgent(upstream))
    proxy.send(b"POST", b"/v1/chat/completions", BODY)
    upstream_request = upstream.open_requests[0]
    lost: list[Failure] = []
    upstream_request.notifyFinish().addErrback(lost.append)
    with capture_logs() as logs:
        proxy.client_leaves()
    assert lost, "the upstream connection should be dropped when the client leaves"
    finished = [event for event in logs if event["event"] == "request_finished"]
    assert finished[0]["outcome"] == "client_disconnected"
    assert len(proxy.in_flight) == 0


def test_a_client_that_leaves_during_the_body_stage_is_never_sent_upstream() -> None:
    upstream = Upstream()
    pending: list[Deferred[bytes]] = []

    def slow_stage(method: bytes, route: Route, headers: Headers, body: bytes, log: object) -> Deferred[bytes]:
        cancelled: list[bool] = []
        stage: Deferred[bytes] = Deferred(lambda _: cancelled.append(True))
        pending.append(stage)
        return stage

    proxy, _ = harness(RequestTraversalAgent(upstream), body_stage=slow_stage)
    proxy.send(b"POST", b"/v1/messages", BODY)
    proxy.client_leaves()
    assert pending[0].called, "leaving should cancel the stage"
    assert upstream.received == []


def test_a_target_that_is_not_a_path_is_a_400_and_nothing_goes_upstream() -> None:
    upstream = Upstream()
    proxy, _ = harness(RequestTraversalAgent(upstream))
    proxy.send(b"GET", b"*")
    status, _, body = proxy.response()
    assert status == 400
    assert json.loads(body)["error"]["code"] == "bad_request_target"
    assert upstream.received == []


def test_head_keeps_the_upstream_content_length_and_sends_no_body() -> None:
    def head(request: Request) -> bytes:
        request.setHeader(b"content-length", b"1234")
        return b""

    proxy, _ = harness(RequestTraversalAgent(Upstream(answer=head)))
    proxy.send(b"HEAD", b"/v1/models", headers={})
    raw = proxy.transport.value()
    status, headers, _ = parse_response(raw)
    assert status == 200
    assert headers.getRawHeaders(b"content-length") == [b"1234"]
    assert raw.endswith(b"\r\n\r\n")
