"""Header rules both ways, request ids, routing by path only (never an open proxy)."""

from __future__ import annotations

import pytest
import pytest_twisted
import treq
from http_fakes import http_client, start_upstream
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.server import Request

from headroom_twisted.upstream.routing import BadRequestTarget, origin_form


@pytest_twisted.ensureDeferred
async def test_request_headers_hop_by_hop_dropped_and_rest_passed(proxy, upstream) -> None:
    headers = {
        b"authorization": [b"Bearer sk-secret-value-123456"],
        b"x-api-key": [b"sk-ant-secret-987654321"],
        b"anthropic-version": [b"2023-06-01"],
        b"anthropic-beta": [b"tools-2024-04-04", b"prompt-caching-2024-07-31"],
        b"openai-organization": [b"org-123"],
        b"connection": [b"keep-alive, X-Drop-Me"],
        b"x-drop-me": [b"gone"],
        b"keep-alive": [b"timeout=5"],
        b"te": [b"trailers"],
        b"upgrade": [b"websocket"],
        b"proxy-authorization": [b"Basic abc"],
        b"x-headroom-debug": [b"1"],
        b"host": [b"evil.example.com"],
        b"content-type": [b"application/json"],
    }
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b"{}", headers=headers)
    await treq.content(response)
    seen = upstream.last
    for passed in (b"authorization", b"x-api-key", b"anthropic-version", b"openai-organization", b"content-type"):
        assert seen.header(passed) == headers[passed], passed
    assert seen.header(b"anthropic-beta") == [b"tools-2024-04-04", b"prompt-caching-2024-07-31"]
    for dropped in (b"x-drop-me", b"keep-alive", b"te", b"upgrade", b"proxy-authorization", b"x-headroom-debug"):
        assert seen.header(dropped) == [], dropped
    assert seen.header(b"host") == [upstream.url.split("//")[1].encode()]
    assert seen.header(b"x-forwarded-host") == [b"evil.example.com"]
    assert seen.header(b"x-forwarded-for") == [b"127.0.0.1"]
    assert seen.header(b"x-forwarded-proto") == [b"http"]


@pytest_twisted.ensureDeferred
async def test_response_headers_hop_by_hop_dropped_and_ids_returned(proxy, upstream) -> None:
    def answer(request: Request, recorded: object) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"proxy-authenticate", b"Basic realm=upstream")
        request.setHeader(b"trailer", b"x-checksum")
        request.setHeader(b"request-id", b"req_anthropic_1")
        request.responseHeaders.setRawHeaders(b"set-cookie", [b"a=1", b"b=2"])
        request.setHeader(b"openai-processing-ms", b"12")
        return b"{}"

    upstream.handler = answer
    response = await http_client().post(
        proxy.url + "/v1/messages", data=b"{}", headers={b"x-request-id": [b"client-id-42"]}
    )
    await treq.content(response)
    assert upstream.last.header(b"x-request-id") == [b"client-id-42"]
    assert response.headers.getRawHeaders(b"x-request-id") == [b"client-id-42"]
    assert response.headers.getRawHeaders(b"headroom-upstream-request-id") == [b"req_anthropic_1"]
    assert response.headers.getRawHeaders(b"request-id") == [b"req_anthropic_1"]
    assert response.headers.getRawHeaders(b"proxy-authenticate") is None
    assert response.headers.getRawHeaders(b"trailer") is None
    assert response.headers.getRawHeaders(b"set-cookie") == [b"a=1", b"b=2"]
    assert response.headers.getRawHeaders(b"openai-processing-ms") == [b"12"]


@pytest_twisted.ensureDeferred
async def test_request_id_generated_when_absent_or_malformed(proxy, upstream) -> None:
    for sent in ({}, {b"x-request-id": [b"bad id with spaces\x7f"]}):
        response = await http_client().get(proxy.url + "/v1/models", headers=sent)
        await treq.content(response)
        returned = response.headers.getRawHeaders(b"x-request-id")[0]
        assert len(returned) == 32 and returned.isalnum()
        assert upstream.last.header(b"x-request-id") == [returned]
        assert response.headers.getRawHeaders(b"headroom-upstream-request-id") == [b"req_upstream_123"]


@pytest_twisted.ensureDeferred
async def test_messages_paths_go_to_anthropic_with_base_path(make_proxy, upstream) -> None:
    anthropic = await start_upstream()
    try:
        proxy = make_proxy(anthropic_upstream=anthropic.url + "/anthropic/", openai_upstream=upstream.url + "/oai")
        client = http_client()
        for path, target, expected in [
            ("/v1/messages?beta=true", anthropic, b"/anthropic/v1/messages?beta=true"),
            ("/v1/messages/count_tokens", anthropic, b"/anthropic/v1/messages/count_tokens"),
            ("/v1/messagesX", upstream, b"/oai/v1/messagesX"),
            ("/v1/chat/completions", upstream, b"/oai/v1/chat/completions"),
            ("/", upstream, b"/oai/"),
        ]:
            await treq.content(await client.post(proxy.url + path, data=b"{}"))
            assert target.last.uri == expected, path
    finally:
        await anthropic.stop()


class _RawExchange(Protocol):
    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.received = b""
        self.closed: Deferred[None] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.payload)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed.callback(None)


async def raw_request(url: str, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send `payload` and return what came back by the time the proxy closed (or `timeout`).

    Every caller sends a request the proxy answers and then closes on, so the
    close, not a guess at how long the answer takes, ends the wait.
    """
    port = int(url.rsplit(":", 1)[1])
    protocol = _RawExchange(payload)
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), protocol)
    await protocol.closed.addTimeout(timeout, reactor)
    return protocol.received


@pytest_twisted.ensureDeferred
async def test_absolute_form_uri_never_chooses_the_upstream(proxy, upstream) -> None:
    received = await raw_request(
        proxy.url,
        b"GET http://169.254.169.254/latest/meta-data?x=1 HTTP/1.1\r\n"
        b"Host: 169.254.169.254\r\nConnection: close\r\n\r\n",
    )
    assert received.startswith(b"HTTP/1.1 200")
    assert upstream.last.uri == b"/latest/meta-data?x=1"
    assert upstream.last.header(b"host") == [upstream.url.split("//")[1].encode()]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"/v1/x?y", b"/v1/x?y"),
        (b"http://h/v1/x?y", b"/v1/x?y"),
        (b"HTTPS://h:1/a", b"/a"),
        (b"http://h?q=1", b"/?q=1"),
        (b"http://h", b"/"),
    ],
)
def test_origin_form(target: bytes, expected: bytes) -> None:
    assert origin_form(target) == expected


@pytest.mark.parametrize(
    "target",
    [
        b"*",
        b"example.com:443",
        b"",
        # Bytes Twisted's server accepts in a target and its client refuses in a URL.
        b"/v1/models?key=K1secret&x=\x7f",
        b"http://h/v1/messages?api_key=K1secret&q=caf\x80",
        b"/v1/chat/completions\xb0?token=K1secret",
    ],
)
def test_origin_form_refuses_other_targets_without_quoting_them(target: bytes) -> None:
    with pytest.raises(BadRequestTarget) as refused:
        origin_form(target)
    assert "K1secret" not in str(refused.value) and "K1secret" not in repr(refused.value)
