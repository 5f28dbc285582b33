"""Clients that lie about their body, never finish it, or trickle their headers.

The daemon runs with a 1 MiB body limit and short client timeouts (its
`ClientLimits`, set before twistd starts): 4 s idle, 2 s to deliver the
request headers, and a body must keep up 500 bytes/s on average once its
first 2 s are over. Each case is bounded in time and
memory, the upstream is never contacted, and other clients are served
meanwhile.
"""

from __future__ import annotations

import socket
import time

import pytest
import pytest_twisted
from hardening_support import (
    Daemon,
    Traffic,
    assert_provider_error,
    connect,
    parse_response,
    sleep,
    start_daemon,
)
from twisted.internet.defer import Deferred

IDLE_TIMEOUT = 4.0
HEADERS_DEADLINE = 2.0
BODY_GRACE = 2.0
BODY_MIN_RATE = 500


@pytest.fixture(scope="module")
def daemon(fake) -> Daemon:
    running = start_daemon(
        fake.url,
        "--max-body-bytes=1MiB",
        limits={
            "idle_timeout": IDLE_TIMEOUT,
            "headers_deadline": HEADERS_DEADLINE,
            "body_grace": BODY_GRACE,
            "body_min_rate": BODY_MIN_RATE,
        },
    )
    yield running
    running.stop()


def blocking_exchange(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send, read until the daemon closes; returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue\r\n"])
@pytest.mark.parametrize("target", [b"/v1/chat/completions", b"/v1/messages"])
def test_2gb_content_length_with_short_body_is_413_at_once(daemon: Daemon, fake, target: bytes, expect: bytes) -> None:
    payload = (
        b"POST "
        + target
        + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + expect
        + b'Content-Length: 2147483648\r\n\r\n{"short": true}'
    )
    received = blocking_exchange(daemon.port, payload)
    # A 413 at all means it came before the body: waiting for the body would end in a timeout.
    assert received.startswith(b"HTTP/1.1 413 "), received[:100]
    assert b"100 Continue" not in received, "the refusal was followed by an invitation to send the body"
    response = parse_response(received)
    assert_provider_error(response, target, {413})
    assert fake.requests == []


def test_chunked_body_that_never_ends_hits_the_body_limit(daemon: Daemon, fake) -> None:
    """Chunks keep coming until the daemon refuses: memory stays bounded by the limit."""
    rss_before = daemon.rss_kib()
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    sent = 0
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < 64 * 1024 * 1024 and time.monotonic() - started < 10:
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        received = bytearray()
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionResetError:
            pass
    assert received.startswith(b"HTTP/1.1 413"), bytes(received[:200])
    assert_provider_error(parse_response(bytes(received)), b"/v1/chat/completions", {413})
    assert sent < 16 * 1024 * 1024, f"the daemon read {sent} bytes past a 1 MiB limit"
    assert daemon.rss_kib() - rss_before < 32 * 1024
    assert fake.requests == []


def test_chunked_body_that_stalls_is_closed_on_a_timeout(daemon: Daemon, fake) -> None:
    """Whichever ends first: the idle timer or the body's rate allowance (here, the allowance)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=IDLE_TIMEOUT * 3) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert min(BODY_GRACE, IDLE_TIMEOUT) - 0.5 < time.monotonic() - started < 2 * IDLE_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 408 "), "the allowance ran out: the client is told why"
    assert fake.requests == []


@pytest_twisted.ensureDeferred
async def test_headers_trickled_one_byte_at_a_time_are_dropped_at_the_deadline(daemon: Daemon, fake) -> None:
    """Slowloris: each byte resets the idle timer, so only a total deadline ends it.

    Bytes come every 0.5 s, well inside the 4 s idle timeout; the 2 s header
    deadline must close the connection while normal clients keep being served.
    """
    headers = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"p" * 200 + b"\r\n\r\n"
    loris = await connect(daemon.port)
    started = time.monotonic()
    traffic = Traffic()
    served_while_trickling = 0
    sent = 0
    while not loris.closed.called and sent < len(headers) and time.monotonic() - started < 20:
        loris.transport.write(headers[sent : sent + 1])
        sent += 1
        await Deferred.fromCoroutine(traffic.one(daemon.port))
        served_while_trickling += not loris.closed.called
        await sleep(0.5)
    await loris.wait_closed(2)
    assert loris.closed.called, "a trickling client was never dropped"
    assert loris.closed.result - started < 3 * HEADERS_DEADLINE
    assert sent < len(headers)
    assert traffic.statuses and set(traffic.statuses) == {200}
    assert served_while_trickling >= 1, "normal clients waited for the trickling one to be dropped"
    assert fake.requests and all(r.uri == b"/v1/chat/completions" for r in fake.requests)
    assert len(fake.requests) == len(traffic.statuses)


@pytest_twisted.ensureDeferred
async def test_headers_deadline_restarts_for_each_keep_alive_request(daemon: Daemon, fake) -> None:
    """A persistent client that sends whole requests promptly is never cut by the deadline."""
    client = await connect(daemon.port)
    request = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(3):
        client.transport.write(request)
        await sleep(HEADERS_DEADLINE * 0.75)
    assert not client.closed.called
    client.transport.loseConnection()
    assert client.received.count(b"HTTP/1.1 200") == 3


@pytest_twisted.ensureDeferred
async def test_chunked_body_trickled_forever_is_dropped_by_the_minimum_rate(daemon: Daemon, fake) -> None:
    """One body byte every 0.3 s never trips the idle timer or the size limit; the rate rule ends it."""
    client = await connect(daemon.port)
    client.transport.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    started = time.monotonic()
    while not client.closed.called and time.monotonic() - started < 15:
        client.transport.write(b"1\r\na\r\n")
        await sleep(0.3)
    assert client.closed.called, "an endless trickled body held the connection"
    assert client.closed.result - started < 3 * BODY_GRACE
    assert fake.requests == []


@pytest_twisted.ensureDeferred
async def test_body_sent_slowly_but_steadily_is_forwarded_whole(daemon: Daemon, fake) -> None:
    """About 2 KB/s for longer than the grace period: slow, above the minimum rate, never cut."""
    body = b'{"messages": [], "pad": "' + b"q" * 7000 + b'"}'
    client = await connect(daemon.port)
    client.transport.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    for start in range(0, len(body), 200):
        client.transport.write(body[start : start + 200])
        await sleep(0.1)
    await client.wait_closed(5)
    response = parse_response(bytes(client.received))
    assert response.status == 200 and response.header(b"x-fake-upstream") == [b"1"]
    assert fake.last.body == body
