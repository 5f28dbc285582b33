"""Upstream faults seen through the real daemon: resets, garbage, endless streams, rate limits.

The fake upstream runs in the test process and misbehaves on purpose (it
writes on its raw transport where a Site would write a response). The
daemon's --idle-timeout is 3 s so a silent upstream is a 504 in seconds.
"""

from __future__ import annotations

import json
import socket
import struct
import time

import pytest
import pytest_twisted
from hardening_support import (
    Daemon,
    assert_provider_error,
    connect,
    parse_response,
    send,
    sleep,
    start_daemon,
)
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import LoopingCall
from twisted.web.server import NOT_DONE_YET, Request

PATHS = [b"/v1/chat/completions", b"/v1/messages"]
IDLE_TIMEOUT = 3.0
HELD_BACK_AT_MOST = 10  # events, at 0.1 s apart


@pytest.fixture(scope="module")
def daemon(fake) -> Daemon:
    running = start_daemon(fake.url, f"--idle-timeout={IDLE_TIMEOUT:g}")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _daemon_still_relays(daemon: Daemon, fake) -> None:
    """Beyond surviving (conftest), the daemon must still relay after each fault."""
    yield
    assert daemon.alive(), daemon.log_text()[-3000:]
    fake.handler = lambda request, recorded: b"fine"
    after = pytest_twisted.blockon(Deferred.fromCoroutine(send(daemon.port, "GET", b"/v1/models")))
    assert (after.status, after.body) == (200, b"fine"), "the daemon stopped relaying after the fault"


def reset(request: Request) -> None:
    """Close the upstream socket with an RST rather than a FIN."""
    transport = request.channel.transport
    transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abortConnection()


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.ensureDeferred
async def test_reset_before_the_response_is_502_in_provider_shape(daemon: Daemon, fake, path: bytes) -> None:
    def handler(request: Request, recorded: object) -> object:
        reset(request)
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "POST", path, b"{}")
    assert_provider_error(response, path, {502})


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest_twisted.ensureDeferred
async def test_reset_mid_response_is_never_a_clean_end_for_the_client(daemon: Daemon, fake, framing: str) -> None:
    sent = b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "partial'

    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/json")
        if framing == "content-length":
            request.setHeader(b"content-length", b"5000")
        request.write(sent)
        reactor.callLater(0.2, reset, request)
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "POST", b"/v1/chat/completions", b"{}")
    assert response.status == 200
    assert response.body == sent  # every byte that came, and only those
    assert not response.complete, "a cut upstream body looked complete to the client"


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.ensureDeferred
async def test_stall_after_headers_is_504_in_provider_shape(daemon: Daemon, fake, path: bytes) -> None:
    """Headers, then silence: the client has seen nothing yet, so it still gets the promised 504.

    Before, it got zero bytes and a close (and the log said status 200).
    """
    request_id = f"stall-after-headers-{path.decode().replace('/', '-')}"

    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"100")
        request.channel.writeHeaders(b"HTTP/1.1", b"200", b"OK", request.responseHeaders)
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "POST", path, b"{}", headers=[(b"x-request-id", request_id.encode())])
    assert_provider_error(response, path, {504})
    await sleep(0.05)
    [finished] = [e for e in daemon.events() if e.get("event") == "request_finished" and e["request_id"] == request_id]
    assert finished["status"] == 504


@pytest_twisted.ensureDeferred
async def test_stall_mid_stream_is_a_visible_cut_logged_as_truncated(daemon: Daemon, fake) -> None:
    """Some events, then silence: the client cannot get a 504 any more, so it gets a cut it can see.

    Before, the log said the client disconnected, as if it had left on its own.
    """
    events = b'data: {"choices": [{"delta": {"content": "hel"}}]}\n\n'

    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"text/event-stream")
        request.write(events)
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(
        daemon.port, "POST", b"/v1/chat/completions", b"{}", headers=[(b"x-request-id", b"stall-mid-stream")]
    )
    assert (response.status, response.body, response.complete) == (200, events, False)
    await sleep(0.05)
    [finished] = [
        e for e in daemon.events() if e.get("event") == "request_finished" and e["request_id"] == "stall-mid-stream"
    ]
    assert (finished["status"], finished["outcome"], finished["client_disconnected"]) == (200, "truncated", False)


def connection_delimited(request: Request, body: bytes, then: str) -> None:
    """A response framed by the connection's end (no Content-Length, no chunking), ended by `then`."""
    transport = request.channel.transport
    transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body)
    if then == "reset":
        reactor.callLater(0.2, reset, request)
    else:
        reactor.callLater(0.2, transport.loseConnection)


SENT = b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "partial'


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/1.0"])
@pytest_twisted.ensureDeferred
async def test_connection_delimited_body_cut_by_a_reset_is_never_a_clean_end(
    daemon: Daemon, fake, version: bytes
) -> None:
    """Twisted's client reports the end of such a body the same way for a close and a reset.

    Before, the client got a clean end either way: the last chunk (HTTP/1.1)
    or an orderly close (HTTP/1.0). Now the cut shows: no last chunk, or a reset.
    """
    fake.handler = lambda request, recorded: connection_delimited(request, SENT, "reset") or NOT_DONE_YET
    client = await connect(daemon.port)
    client.transport.write(b"POST /v1/chat/completions " + version + b"\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    assert await client.wait_closed(10)
    response = parse_response(bytes(client.received))
    assert response.status == 200 and SENT.startswith(response.body)
    if version == b"HTTP/1.1":
        assert response.header(b"transfer-encoding") == [b"chunked"]
        assert not response.complete, "a cut upstream body looked complete to the client"
    else:
        assert not client.close_reason.check(ConnectionDone), "an HTTP/1.0 client saw an orderly close"


@pytest_twisted.ensureDeferred
async def test_connection_delimited_body_closed_cleanly_is_complete(daemon: Daemon, fake) -> None:
    fake.handler = lambda request, recorded: connection_delimited(request, SENT, "close") or NOT_DONE_YET
    response = await send(daemon.port, "POST", b"/v1/chat/completions", b"{}")
    assert (response.status, response.body, response.complete) == (200, SENT, True)


GARBAGE = [
    b"garbage\r\n\r\n",
    b"\x00\xff\xfe\x01" * 64,
    b"HTTP/1.1 abc Not A Status\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n{}",
    b"HTTP/1.1 200 OK\r\nBad Header Line\r\n\r\n",
    b"SSH-2.0-OpenSSH_9.6\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
    b"\r\n\r\n\r\n",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("garbage", GARBAGE)
@pytest_twisted.ensureDeferred
async def test_garbage_instead_of_http_is_502_in_provider_shape(
    daemon: Daemon, fake, garbage: bytes, path: bytes
) -> None:
    def handler(request: Request, recorded: object) -> object:
        request.channel.transport.write(garbage)
        request.channel.transport.loseConnection()
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "POST", path, b"{}")
    assert_provider_error(response, path, {502})


@pytest_twisted.ensureDeferred
async def test_garbage_then_silence_is_504_after_the_idle_timeout(daemon: Daemon, fake) -> None:
    def handler(request: Request, recorded: object) -> object:
        request.channel.transport.write(b"HTTP/1.1 2")
        return NOT_DONE_YET

    fake.handler = handler
    started = time.monotonic()
    response = await send(daemon.port, "POST", b"/v1/messages", b"{}")
    assert_provider_error(response, b"/v1/messages", {504})
    assert IDLE_TIMEOUT - 0.5 < time.monotonic() - started < 2 * IDLE_TIMEOUT


@pytest_twisted.ensureDeferred
async def test_endless_sse_stream_arrives_as_it_comes_and_client_disconnect_tears_it_down(daemon: Daemon, fake) -> None:
    """Events every 0.1 s for longer than the idle timeout; each reaches the client at once.

    "At once" is judged by the upstream's own pace, not a clock bound: no
    event arrives after the upstream has sent `HELD_BACK_AT_MOST` more, and
    the stream stops within that many events of the client leaving.
    """
    upstream_closed: Deferred[int] = Deferred()
    sent: list[bytes] = []
    sent_at: list[float] = []

    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"text/event-stream")

        def emit() -> None:
            event = {"seq": len(sent)}
            frame = b"data: " + json.dumps({"choices": [{"delta": {"content": json.dumps(event)}}]}).encode() + b"\n\n"
            sent.append(frame)
            sent_at.append(time.monotonic())
            request.write(frame)

        loop = LoopingCall(emit)
        loop.start(0.1)

        def closed(_: object) -> None:
            loop.stop()
            upstream_closed.callback(len(sent))

        request.notifyFinish().addBoth(closed)
        return NOT_DONE_YET

    fake.handler = handler
    client = await connect(daemon.port)
    client.transport.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n"
        b'{"stream": 1}'
    )
    await sleep(IDLE_TIMEOUT + 1.5)
    assert not client.closed.called, "a stream that keeps sending was cut"
    head = bytes(client.received).partition(b"\r\n\r\n")[0]
    assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()
    frames = parse_response(bytes(client.received)).body
    expected = b"".join(sent)
    assert expected.startswith(frames) and len(sent) - frames.count(b"data: ") <= HELD_BACK_AT_MOST, "events held back"
    late = []
    arrived = 0
    for arrived_at, data in client.arrivals[1:]:
        for line in data.split(b"\n"):
            if line.startswith(b"data: "):
                seq = json.loads(json.loads(line[6:])["choices"][0]["delta"]["content"])["seq"]
                arrived += 1
                if seq + HELD_BACK_AT_MOST < len(sent_at) and arrived_at > sent_at[seq + HELD_BACK_AT_MOST]:
                    late.append(seq)
    assert arrived >= 30 and late == [], f"events {late} arrived after {HELD_BACK_AT_MOST} later ones were sent"
    sent_before_leaving = len(sent)
    client.transport.abortConnection()
    sent_in_all = await upstream_closed
    assert sent_in_all - sent_before_leaving <= HELD_BACK_AT_MOST, "the upstream stream outlived its client"
    await sleep(0.2)
    closed = [e for e in daemon.events() if e.get("event") == "sse_stream_closed"]
    assert closed, "no stream summary logged"


@pytest.mark.parametrize(("status", "phrase"), [(429, b"Too Many Requests"), (529, b"Overloaded"), (503, b"Slow Down")])
@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.ensureDeferred
async def test_rate_limits_pass_through_verbatim(daemon: Daemon, fake, status: int, phrase: bytes, path: bytes) -> None:
    body = b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}  \n'

    def handler(request: Request, recorded: object) -> bytes:
        request.setResponseCode(status, phrase)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"retry-after", b"17")
        request.setHeader(b"retry-after-ms", b"17000")
        request.setHeader(b"x-should-retry", b"true")
        request.setHeader(b"anthropic-ratelimit-requests-reset", b"2026-01-01T00:00:17Z")
        request.setHeader(b"x-ratelimit-remaining-tokens", b"0")
        return body

    fake.handler = handler
    response = await send(daemon.port, "POST", path, b"{}")
    assert (response.status, response.phrase, response.body) == (status, phrase, body)
    assert response.complete
    for name, value in [
        (b"retry-after", b"17"),
        (b"retry-after-ms", b"17000"),
        (b"x-should-retry", b"true"),
        (b"anthropic-ratelimit-requests-reset", b"2026-01-01T00:00:17Z"),
        (b"x-ratelimit-remaining-tokens", b"0"),
        (b"content-type", b"application/json"),
    ]:
        assert response.header(name) == [value], name
    assert len(fake.requests) == 1, "the proxy must not retry on its own"


HOSTILE_EVENTS = [
    b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n",
    b'data: {"choices": [{"delta": {"content": "\xff\xfe\xed\xa0\x80"}}]}\n\n',
    b'data: {"choices": [{"delta": {"content": "\\ud800"}}], "usage": {"prompt_tokens": 1e400}}\n\n',
    b'data: {"choices": [{"index": 99999999999999999999999, "delta": {"tool_calls": [{"index": -1}]}}]}\n\n',
    b'event: message_start\ndata: {"type": "message_start", "message": {"usage": {"input_tokens": "many"}}}\n\n',
    b"event: content_block_delta\ndata: {not json\n\n",
    b"data: " + b"x" * 300_000 + b"\n\n",
    b"\r\r\n\n:\n\ndata\n\nevent:\n\n",
    b"data: [DONE]\n\ndata: after the end\n\n",
]


@pytest.mark.parametrize("path", PATHS)
@pytest_twisted.ensureDeferred
async def test_hostile_sse_events_reach_the_client_byte_for_byte(daemon: Daemon, fake, path: bytes) -> None:
    """The side parser reads odd events; whatever it makes of them, the client gets the exact bytes."""
    stream = b"".join(HOSTILE_EVENTS)

    def handler(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"text/event-stream")
        for event in HOSTILE_EVENTS:
            request.write(event)
        request.finish()
        return NOT_DONE_YET

    fake.handler = handler
    response = await send(daemon.port, "POST", path, b"{}")
    assert response.status == 200 and response.complete
    assert response.body == stream
    assert "RecursionError" not in daemon.log_text()
