"""All request bodies in flight share one budget, counted in bytes received: past it, 503 with Retry-After,
upstream untouched."""

from __future__ import annotations

import json
import socket

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from headroom_twisted.config import ConfigError, build_config

KIB = 1024


def head(size: int, path: bytes = b"/v1/messages") -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (path, size)


def read_response(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def body_of(size: int) -> bytes:
    return b'{"pad": "' + b"x" * (size - 11) + b'"}'


def send_refusable(sock: socket.socket, data: bytes) -> None:
    """Send ``data``; the proxy may refuse and close before it has read all of it."""
    try:
        sock.sendall(data)
    except OSError:
        pass


@pytest_twisted.ensureDeferred
async def test_a_body_that_does_not_fit_gets_503_and_the_budget_comes_back(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="64KiB", max_inflight_body_bytes="100KiB")
    port = int(proxy.url.rsplit(":", 1)[1])
    holder = socket.create_connection(("127.0.0.1", port))
    holder.sendall(head(60 * KIB) + body_of(60 * KIB)[:-1])  # 60 KiB held, the last byte still to come
    await deferLater(reactor, 0.2)

    refused = socket.create_connection(("127.0.0.1", port))
    send_refusable(refused, head(60 * KIB) + body_of(60 * KIB))
    answer = await deferToThread(read_response, refused)
    refused.close()
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 503")
    assert b"Retry-After: 5" in rest
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert upstream.requests == []

    holder.sendall(body_of(60 * KIB)[-1:])
    answer = await deferToThread(read_response, holder)
    holder.close()
    assert answer.startswith(b"HTTP/1.1 200")

    again = socket.create_connection(("127.0.0.1", port))
    again.sendall(head(60 * KIB) + body_of(60 * KIB))
    answer = await deferToThread(read_response, again)
    again.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert len(upstream.requests) == 2


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_mid_body_returns_its_share(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="64KiB", max_inflight_body_bytes="64KiB")
    port = int(proxy.url.rsplit(":", 1)[1])
    for _ in range(3):
        leaver = socket.create_connection(("127.0.0.1", port))
        leaver.sendall(head(60 * KIB) + b"{")
        await deferLater(reactor, 0.1)
        leaver.close()
        await deferLater(reactor, 0.1)
    client = socket.create_connection(("127.0.0.1", port))
    client.sendall(head(60 * KIB) + body_of(60 * KIB))
    answer = await deferToThread(read_response, client)
    client.close()
    assert answer.startswith(b"HTTP/1.1 200")


@pytest_twisted.ensureDeferred
async def test_chunked_bodies_are_counted_as_they_arrive(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="64KiB", max_inflight_body_bytes="64KiB")
    port = int(proxy.url.rsplit(":", 1)[1])
    holder = socket.create_connection(("127.0.0.1", port))
    holder.sendall(head(40 * KIB) + body_of(40 * KIB)[:-1])
    await deferLater(reactor, 0.2)
    chunked = socket.create_connection(("127.0.0.1", port))
    piece = b"x" * (30 * KIB)
    send_refusable(
        chunked,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(piece), piece),
    )
    answer = await deferToThread(read_response, chunked)
    chunked.close()
    holder.close()
    assert answer.startswith(b"HTTP/1.1 503")
    assert b'"type": "proxy_error"' in answer or b'"type":"proxy_error"' in answer
    assert upstream.requests == []


def test_the_budget_must_hold_at_least_one_largest_body() -> None:
    try:
        build_config({"max-body-bytes": "2MiB", "max-inflight-body-bytes": "1MiB"}, [], {})
    except ConfigError as error:
        assert "--max-inflight-body-bytes" in str(error)
    else:
        raise AssertionError("a budget smaller than one body was accepted")
