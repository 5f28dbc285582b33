"""An upstream that drops a kept-alive connection as the next request arrives costs no request.

Upstreams and load balancers close idle keep-alive connections on their own
schedule; a request that meets such a close gets no response at all. This
upstream makes the race certain: it answers the first request of each
connection and closes the connection when a second one arrives. Every POST
must still get its 200, each body reaching the application exactly once.
"""

from __future__ import annotations

import hashlib

import pytest_twisted
import treq
from http_fakes import http_client, start_proxy
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol

REPLY = b'{"id": "c1", "object": "chat.completion", "choices": []}'


class OneRequestPerConnection(Protocol):
    """Answers one request with keep-alive, then closes at the first byte of the next."""

    def __init__(self, received: list[bytes]) -> None:
        self.received = received
        self.buffer = b""
        self.answered = False

    def dataReceived(self, data: bytes) -> None:
        if self.answered:
            self.transport.loseConnection()
            return
        self.buffer += data
        head, separator, body = self.buffer.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
            0,
        )
        if not separator or len(body) < length:
            return
        self.received.append(body[:length])
        self.answered = True
        self.transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
            b"Content-Length: " + str(len(REPLY)).encode() + b"\r\n\r\n" + REPLY
        )


@pytest_twisted.ensureDeferred
async def test_every_post_gets_its_answer_when_the_upstream_drops_reused_connections() -> None:
    received: list[bytes] = []
    factory = Factory.forProtocol(lambda: OneRequestPerConnection(received))
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
    proxy = start_proxy(f"http://127.0.0.1:{port.getHost().port}")
    client = http_client(persistent=False)
    try:
        bodies = [b'{"model": "gpt-5", "messages": [{"role": "user", "content": "turn %d"}]}' % n for n in range(10)]
        statuses = []
        for body in bodies:
            response = await client.post(
                proxy.url + "/v1/chat/completions", data=body, headers={b"content-type": [b"application/json"]}
            )
            statuses.append(response.code)
            assert await treq.content(response) == REPLY
        assert statuses == [200] * len(bodies)
        assert [hashlib.sha256(b).hexdigest() for b in received] == [hashlib.sha256(b).hexdigest() for b in bodies]
    finally:
        await proxy.stop()
        await port.stopListening()
