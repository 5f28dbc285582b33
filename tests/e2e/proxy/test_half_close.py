"""A client that sends its request and then shuts down its sending side still reads the response."""

from __future__ import annotations

import socket

import pytest_twisted
from twisted.internet.threads import deferToThread


def request_then_half_close(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


@pytest_twisted.ensureDeferred
async def test_a_half_closed_client_gets_its_response_and_then_the_close(make_proxy, upstream) -> None:
    proxy = make_proxy()
    answer = await deferToThread(request_then_half_close, int(proxy.url.rsplit(":", 1)[1]))
    assert answer.startswith(b"HTTP/1.1 200") and len(upstream.requests) == 1
