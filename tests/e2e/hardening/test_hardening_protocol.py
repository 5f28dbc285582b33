"""Smaller HTTP points through the real daemon: framing of bodiless answers, odd targets, stale connections.

Each one is what a careful client or a careful upstream would notice: a HEAD
that loses its length, a 204 that gains one, a `Proxy-Connection` passed on,
a `*` target answered by Twisted instead of the proxy, a request target whose
bytes the upstream client refuses (and whose key then reached the log), and
a GET that fails only because the upstream closed an idle connection.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from hardening_support import (
    Daemon,
    assert_provider_error,
    exchange,
    parse_response,
    send,
    sleep,
    start_daemon,
)
from twisted.web.server import NOT_DONE_YET, Request

SECRET = "AIzaSyDontLogMe0123456789"


@pytest.fixture(scope="module")
def daemon(fake) -> Daemon:
    running = start_daemon(fake.url)
    yield running
    running.stop()


def _finished(daemon: Daemon, request_id: str) -> list[dict]:
    return [e for e in daemon.events() if e.get("event") == "request_finished" and e.get("request_id") == request_id]


@pytest_twisted.ensureDeferred
async def test_head_keeps_the_upstreams_content_length(daemon: Daemon, fake) -> None:
    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"1234")
        request.write(b"")
        request.finish()
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "HEAD", b"/v1/models")
    assert response.status == 200
    assert response.header(b"content-length") == [b"1234"]
    assert response.body == b""


@pytest.mark.parametrize("status", [204, 304])
@pytest_twisted.ensureDeferred
async def test_bodiless_statuses_gain_no_content_length(daemon: Daemon, fake, status: int) -> None:
    def handler(request: Request, recorded: object) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"etag", b'"v1"')
        return b""

    fake.handler = handler
    response = await send(daemon.port, "GET", b"/v1/files/f1")
    assert response.status == status
    assert response.header(b"etag") == [b'"v1"']
    assert response.header(b"content-length") == []
    assert response.header(b"transfer-encoding") == []


@pytest_twisted.ensureDeferred
async def test_proxy_connection_is_hop_by_hop(daemon: Daemon, fake) -> None:
    def handler(request: Request, recorded: object) -> bytes:
        request.setHeader(b"proxy-connection", b"keep-alive")
        return b"{}"

    fake.handler = handler
    response = await send(
        daemon.port, "GET", b"/v1/models", headers=[(b"Proxy-Connection", b"keep-alive"), (b"X-Kept", b"1")]
    )
    assert response.status == 200
    assert fake.last.header(b"proxy-connection") == []
    assert fake.last.header(b"x-kept") == [b"1"]
    assert response.header(b"proxy-connection") == []


@pytest.mark.parametrize("target", [b"/v1/chat/completions", b"/v1/messages"])
@pytest_twisted.ensureDeferred
async def test_content_length_past_64_bits_is_400_in_provider_shape(daemon: Daemon, fake, target: bytes) -> None:
    for length in (b"18446744073709551616", b"9" * 40):
        payload = b"POST " + target + b" HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n{}"
        response = parse_response(await exchange(daemon.port, payload))
        assert_provider_error(response, target, {400})
    assert fake.requests == []
    text = daemon.log_text()
    assert "Unhandled" not in text and "Traceback" not in text


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
@pytest_twisted.ensureDeferred
async def test_asterisk_target_is_answered_in_provider_shape_and_logged(daemon: Daemon, fake, method: str) -> None:
    request_id = f"star-{method.lower()}"
    response = await send(daemon.port, method, b"*", headers=[(b"x-request-id", request_id.encode())])
    assert_provider_error(response, b"*", {400})
    assert fake.requests == []
    await sleep(0.05)
    [finished] = _finished(daemon, request_id)
    assert (finished["method"], finished["status"]) == (method, 400)


UNSENDABLE = [
    (b"/v1/models?key=" + SECRET.encode() + b"&x=\x7f", b"/v1/models"),
    (b"/v1/messages?api_key=" + SECRET.encode() + b"&q=caf\x80", b"/v1/messages"),
    (b"/v1/chat/completions?token=" + SECRET.encode() + b"\xb0", b"/v1/chat/completions"),
]


@pytest.mark.parametrize(("target", "path"), UNSENDABLE)
@pytest_twisted.ensureDeferred
async def test_target_the_upstream_client_refuses_is_400_and_its_key_is_never_logged(
    daemon: Daemon, fake, target: bytes, path: bytes
) -> None:
    """Twisted's server takes DEL and bytes up to 0xB0 in a target; its client refuses them.

    Before, that was a 502 whose `proxy_internal_error` line quoted the whole
    upstream URL, key included, in the exception text and its traceback.
    """
    method = "POST" if path != b"/v1/models" else "GET"
    response = await send(daemon.port, method, target, b"{}" if method == "POST" else b"")
    assert_provider_error(response, path, {400})
    assert fake.requests == []
    await sleep(0.05)
    assert SECRET not in daemon.log_text()


@pytest_twisted.ensureDeferred
async def test_get_on_a_pooled_connection_the_upstream_closed_is_retried_once(daemon: Daemon, fake) -> None:
    """The upstream closes each connection when a second request arrives on it, unanswered.

    That is what an upstream's keep-alive timeout looks like from the proxy
    when it strikes just as a pooled connection is reused. A GET goes out
    again on a fresh connection; a POST whose body was sent does not.
    """
    answered: set[object] = set()

    def first_request_per_connection(request: Request, recorded: object) -> object:
        if request.channel in answered:
            request.channel.transport.loseConnection()
            return NOT_DONE_YET
        answered.add(request.channel)
        return b"fine"

    fake.handler = first_request_per_connection
    statuses = []
    for _ in range(6):
        response = await send(daemon.port, "GET", b"/v1/models")
        statuses.append((response.status, response.body))
    assert statuses == [(200, b"fine")] * 6
    assert len(answered) == 6
    assert len(fake.requests) > 6, "no GET met a connection the upstream closed: nothing was tested"

    fake.requests.clear()
    response = await send(daemon.port, "POST", b"/v1/chat/completions", b'{"n": 1}')
    assert_provider_error(response, b"/v1/chat/completions", {502})
    assert len(fake.requests) == 1, "a POST whose body went out must not be sent twice"
