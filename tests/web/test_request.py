"""`ProxyChannel`, `ProxyRequest` and `ProxySite` in memory: client deadlines, draining, refusals.

A client connection is a `ProxyChannel` on a `StringTransport`; every
deadline runs on the site's `Clock` (`ProxySite(reactor=clock, limits=...)`,
with limits of a few seconds), so no test waits for real time. The resource
behind the site only records what reached it, or holds a request open to
stand for one in flight.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from site_client import SiteClient
from structlog.testing import capture_logs
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from headroom_twisted.endpoints import label_for_path
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.web.budget import RETRY_AFTER_SECONDS, BodyBudget
from headroom_twisted.web.request import ClientLimits, ProxySite

LIMITS = ClientLimits(headers_deadline=2.0, body_grace=2.0, body_min_rate=10.0, idle_timeout=5.0)
MAX_BODY = 1000
BUDGET = 1500


@dataclass
class Backend(Resource):
    """What reached the resource tree: (method, path, body); with `hold`, requests stay open."""

    hold: bool = False
    received: list[tuple[bytes, bytes, bytes]] = field(default_factory=list)
    held: list[Request] = field(default_factory=list)
    isLeaf = True

    def __post_init__(self) -> None:
        Resource.__init__(self)

    def render(self, request: Request) -> bytes | int:
        assert request.content is not None
        self.received.append((request.method, request.path, request.content.read()))
        if self.hold:
            self.held.append(request)
            return NOT_DONE_YET
        return b"ok"


@dataclass
class Proxy:
    """A site on a Clock and the connections made to it."""

    backend: Backend = field(default_factory=Backend)
    clock: Clock = field(default_factory=Clock)
    per_client: int = BUDGET

    def __post_init__(self) -> None:
        self.metrics = ProxyMetrics(self.clock, process_collectors=False)
        self.site = ProxySite(
            self.backend,
            reactor=self.clock,
            limits=LIMITS,
            max_body_bytes=MAX_BODY,
            body_budget=BodyBudget(BUDGET, self.per_client),
            metrics=self.metrics,
        )

    def connect(self, host: str = "127.0.0.1") -> Connection:
        return Connection(self.site, IPv4Address("TCP", host, 50000))

    def requests_counted(self, path: bytes, status_class: str) -> float:
        labels = {"provider": "openai" if path.startswith(b"/v1/chat") else "anthropic", "method": "POST"}
        labels |= {"endpoint": label_for_path(path), "status_class": status_class}
        return self.metrics.registry.get_sample_value("headroom_requests_total", labels) or 0.0


class Connection(SiteClient):
    """A client connection that reads back every response the proxy wrote."""

    def responses(self) -> list[tuple[int, dict[bytes, bytes], bytes]]:
        """Every response on the wire so far: status, headers (lower-cased), body (by Content-Length)."""
        raw, found = self.transport.value(), []
        while raw:
            head, _, raw = raw.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            headers = {
                name.strip().lower(): value.strip() for name, _, value in (ln.partition(b":") for ln in lines[1:])
            }
            length = int(headers.get(b"content-length", b"0"))
            found.append((int(lines[0].split(b" ")[1]), headers, raw[:length]))
            raw = raw[length:]
        return found


def get(path: bytes = b"/v1/models") -> bytes:
    return b"GET %s HTTP/1.1\r\nHost: proxy.test\r\n\r\n" % path


def post_head(path: bytes, length: int, *extra: bytes) -> bytes:
    lines = [b"POST %s HTTP/1.1" % path, b"Host: proxy.test", b"Content-Length: %d" % length, *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


# Client deadlines


def test_headers_trickled_steadily_are_cut_at_the_headers_deadline() -> None:
    proxy = Proxy()
    client = proxy.connect()
    head = get() + b"X-Pad: " + b"p" * 100
    for byte in range(int(LIMITS.headers_deadline / 0.5)):
        client.send(head[byte : byte + 1])  # well inside the idle timeout, every time
        assert not client.closing
        proxy.clock.advance(0.5)
    assert client.closing
    assert proxy.backend.received == []


def test_the_headers_deadline_starts_again_for_each_keep_alive_request() -> None:
    proxy = Proxy()
    client = proxy.connect()
    for _ in range(3):
        client.send(get())
        proxy.clock.advance(LIMITS.headers_deadline * 0.75)
    assert not client.closing
    assert [status for status, _, _ in client.responses()] == [200, 200, 200]


def test_a_body_behind_its_allowance_is_cut_when_the_allowance_runs_out() -> None:
    """Grace, plus a second per `body_min_rate` bytes: 5 bytes buy half a second more."""
    proxy = Proxy()
    client = proxy.connect()
    client.send(post_head(b"/v1/chat/completions", 100))
    proxy.clock.advance(1.0)
    client.send(b"x" * 5)
    proxy.clock.advance(LIMITS.body_grace - 1.0)  # the grace alone is over
    proxy.clock.advance(0.45)
    assert not client.closing
    with capture_logs() as logs:
        proxy.clock.advance(0.1)  # past grace + 5 / body_min_rate
    assert client.closing
    assert proxy.backend.received == []
    [(status, _, body)] = client.responses()
    assert status == 408 and json.loads(body)["error"]["code"] == "request_timeout"
    assert (refused(logs)["reason"], refused(logs)["bytes_in"]) == ("body_too_slow", 5)


def test_a_slow_but_steady_body_is_never_cut() -> None:
    proxy = Proxy()
    client = proxy.connect()
    body = b"y" * 200
    client.send(post_head(b"/v1/chat/completions", len(body)))
    for start in range(0, len(body), 2):  # 20 bytes a second, twice the minimum, for ten seconds
        proxy.clock.advance(0.1)
        client.send(body[start : start + 2])
        assert not client.closing
    assert proxy.backend.received == [(b"POST", b"/v1/chat/completions", body)]
    assert client.responses()[0][0] == 200


@pytest.mark.parametrize("after_a_request", [False, True])
def test_a_silent_connection_is_closed_after_the_idle_timeout(after_a_request: bool) -> None:
    proxy = Proxy()
    client = proxy.connect()
    if after_a_request:
        client.send(get())
    proxy.clock.advance(LIMITS.idle_timeout - 0.01)
    assert not client.closing
    proxy.clock.advance(0.01)
    assert client.closing


# Draining


def test_draining_closes_idle_connections_now_and_busy_ones_after_their_response() -> None:
    proxy = Proxy(backend=Backend(hold=True))
    idle, busy = proxy.connect(), proxy.connect()
    busy.send(get())
    proxy.site.start_draining()
    assert idle.closing
    assert not busy.closing
    [request] = proxy.backend.held
    request.setHeader(b"content-length", b"4")
    request.write(b"done")
    request.finish()
    [(status, headers, _)] = busy.responses()
    assert (status, headers[b"connection"]) == (200, b"close")
    assert busy.closing


def test_a_request_that_arrives_while_draining_is_answered_and_its_connection_closed() -> None:
    proxy = Proxy()
    proxy.site.start_draining()
    client = proxy.connect()
    client.send(get())
    [(status, headers, _)] = client.responses()
    assert (status, headers[b"connection"]) == (200, b"close")
    assert client.closing


def test_channels_leave_the_site_when_their_connection_closes() -> None:
    proxy = Proxy()
    client = proxy.connect()
    assert client.channel in proxy.site.channels
    client.close_as_asked()
    assert proxy.site.channels == set()


# Refusals: answered before the body is read, logged as the request's only `request_finished`


def refused(logs: list[dict[str, object]]) -> dict[str, object]:
    [finished] = [entry for entry in logs if entry["event"] == "request_finished"]
    return finished


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue"])
def test_a_content_length_over_the_limit_is_413_before_any_body_byte(expect: bytes) -> None:
    proxy = Proxy()
    client = proxy.connect()
    extra = [b"x-request-id: client-7"] + ([expect] if expect else [])
    with capture_logs() as logs:
        client.send(post_head(b"/v1/chat/completions", MAX_BODY + 1, *extra))
    [(status, headers, body)] = client.responses()
    assert (status, headers[b"connection"], headers[b"x-request-id"]) == (413, b"close", b"client-7")
    assert json.loads(body)["error"]["code"] == "request_too_large"  # the OpenAI shape
    assert b"100 Continue" not in client.transport.value()
    assert client.closing
    assert refused(logs) == {
        "event": "request_finished",
        "log_level": "warning",
        "request_id": "client-7",
        "method": "POST",
        "path": "/v1/chat/completions",
        "provider": "openai",
        "status": 413,
        "outcome": "refused",
        "reason": "body_too_large",
        "bytes_in": MAX_BODY + 1,
        "limit": MAX_BODY,
    }
    assert proxy.requests_counted(b"/v1/chat/completions", "4xx") == 1
    assert proxy.backend.received == []


def test_a_chunked_body_is_refused_once_its_count_passes_the_limit() -> None:
    proxy = Proxy()
    client = proxy.connect()
    head = b"POST /v1/messages?beta=true HTTP/1.1\r\nHost: proxy.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    with capture_logs() as logs:
        client.send(head + b"258\r\n" + b"a" * 600 + b"\r\n")
        assert client.responses() == []
        client.send(b"258\r\n" + b"a" * 600 + b"\r\n")
    [(status, _, body)] = client.responses()
    assert status == 413
    assert json.loads(body)["type"] == "error"  # the Anthropic shape
    finished = refused(logs)
    assert (finished["path"], finished["provider"], finished["bytes_in"]) == ("/v1/messages", "anthropic", 1200)
    assert proxy.backend.received == []


def test_a_content_length_no_message_can_have_is_400() -> None:
    proxy = Proxy()
    client = proxy.connect()
    with capture_logs() as logs:
        client.send(post_head(b"/v1/chat/completions", 2**64))
    [(status, _, body)] = client.responses()
    assert (status, json.loads(body)["error"]["code"]) == (400, "bad_content_length")
    finished = refused(logs)
    assert (finished["status"], finished["reason"], finished["bytes_in"], finished["limit"]) == (
        400,
        "bad_content_length",
        0,
        MAX_BODY,
    )
    assert proxy.requests_counted(b"/v1/chat/completions", "4xx") == 1


def test_a_body_that_does_not_fit_the_budget_is_503_with_retry_after_and_the_budget_comes_back() -> None:
    proxy = Proxy(backend=Backend(hold=True))
    first = proxy.connect()
    first.send(post_head(b"/v1/messages", 900) + b"z" * 900)
    assert len(proxy.backend.held) == 1
    second = proxy.connect()
    with capture_logs() as logs:
        second.send(post_head(b"/v1/messages", 900))
        assert second.responses() == [], "announced bytes hold nothing: the refusal waits for received ones"
        second.send(b"z" * 900)
    [(status, headers, _)] = second.responses()
    assert (status, headers[b"retry-after"]) == (503, b"%d" % RETRY_AFTER_SECONDS)
    finished = refused(logs)
    assert (finished["status"], finished["reason"], finished["bytes_in"], finished["limit"]) == (
        503,
        "body_budget_exceeded",
        900,
        BUDGET,
    )
    assert proxy.requests_counted(b"/v1/messages", "5xx") == 1
    proxy.backend.held[0].finish()
    third = proxy.connect()
    third.send(post_head(b"/v1/messages", 900) + b"z" * 900)
    assert len(proxy.backend.held) == 2, "the finished request's budget did not come back"


def test_connections_that_announce_big_bodies_and_send_little_hold_only_what_they_sent() -> None:
    """Eleven connections announcing 100 MiB and trickling once held the whole budget: 503 for everyone."""
    proxy = Proxy(backend=Backend(hold=True))
    slow = [proxy.connect(f"10.0.0.{n}") for n in range(1, 12)]
    for client in slow:
        client.send(post_head(b"/v1/messages", MAX_BODY) + b"z" * 20)
    ordinary = proxy.connect()
    ordinary.send(post_head(b"/v1/messages", 900) + b"z" * 900)
    assert ordinary.responses() == [] and len(proxy.backend.held) == 1
    assert all(client.responses() == [] for client in slow)


def test_one_client_address_holds_at_most_its_share_and_others_still_get_through() -> None:
    proxy = Proxy(backend=Backend(hold=True), per_client=1000)
    proxy.connect("10.0.0.1").send(post_head(b"/v1/messages", 900) + b"z" * 900)
    greedy = proxy.connect("10.0.0.1")
    greedy.send(post_head(b"/v1/messages", 200) + b"z" * 200)
    [(status, _, _)] = greedy.responses()
    assert status == 503
    other = proxy.connect("10.0.0.2")
    other.send(post_head(b"/v1/messages", 500) + b"z" * 500)
    assert other.responses() == [] and len(proxy.backend.held) == 2


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/models HTTP/1.1\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n",
        b"POST /v1/messages HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\nContent-Length: 2\r\n\r\n{}",
    ],
)
def test_an_http_1_1_request_without_exactly_one_host_is_400(head: bytes) -> None:
    proxy = Proxy()
    client = proxy.connect()
    client.send(head)
    [(status, _, body)] = client.responses()
    assert status == 400 and b"Host header" in body and client.closing
    assert proxy.backend.received == []


def test_an_http_1_0_request_may_omit_host() -> None:
    proxy = Proxy()
    client = proxy.connect()
    client.send(b"GET /v1/models HTTP/1.0\r\n\r\n")
    [(status, _, _)] = client.responses()
    assert status == 200 and len(proxy.backend.received) == 1


def test_a_request_line_past_the_line_limit_is_414() -> None:
    client = Proxy().connect()
    client.send(b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.transport.value().startswith(b"HTTP/1.1 414 ") and client.closing


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 20_000 + b"\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 200) for n in range(90)),
    ],
)
def test_headers_past_the_limits_are_431(head: bytes) -> None:
    proxy = Proxy()
    client = proxy.connect()
    client.send(head + b"\r\n")
    assert client.transport.value().startswith(b"HTTP/1.1 431 ") and client.closing
    assert proxy.backend.received == []


def test_after_a_request_the_next_request_line_is_judged_as_a_request_line_again() -> None:
    proxy = Proxy()
    client = proxy.connect()
    client.send(get() + b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\n")
    assert b"HTTP/1.1 414 " in client.transport.value()


@pytest.mark.parametrize(
    ("codings", "status"),
    [
        ([b"chunked", b"identity"], b"400"),
        ([b"chunked", b"chunked"], b"400"),
        ([b"identity"], b"501"),
        ([b"gzip, chunked"], b"501"),
    ],
)
def test_transfer_encoding_is_one_chunked_line_or_refused(codings: list[bytes], status: bytes) -> None:
    proxy = Proxy()
    client = proxy.connect()
    lines = b"".join(b"Transfer-Encoding: %s\r\n" % coding for coding in codings)
    client.send(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n2\r\n{}\r\n0\r\n\r\n")
    assert client.transport.value().startswith(b"HTTP/1.1 " + status) and client.closing
    assert proxy.backend.received == []
