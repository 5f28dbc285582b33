"""Idle upstream connections are reused only for --upstream-keepalive seconds.

Upstreams and load balancers close idle keep-alive connections on their own
schedule; a request sent on one just as it closes gets no response. The
proxy closes its idle connections first, so it does not meet that race.
Here the proxy keeps idle connections for 1 s: requests 0.2 s apart share
one connection, requests 1.5 s apart each open their own.
"""

from __future__ import annotations

import pytest_twisted
import treq
from http_fakes import http_client, start_proxy
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.task import deferLater
from twisted.web.resource import Resource
from twisted.web.server import Request, Site


class Answer(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.connections: set[object] = set()

    def render_POST(self, request: Request) -> bytes:
        self.connections.add(request.channel)
        return b'{"id": "c1"}'


@pytest_twisted.ensureDeferred
async def test_idle_upstream_connections_are_closed_before_the_upstream_would() -> None:
    answer = Answer()
    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Site(answer))
    proxy = start_proxy(f"http://127.0.0.1:{port.getHost().port}", upstream_keepalive="1")
    client = http_client(persistent=False)

    async def posts(count: int, gap: float) -> int:
        answer.connections.clear()
        for _ in range(count):
            response = await client.post(proxy.url + "/v1/chat/completions", data=b"{}")
            assert response.code == 200 and await treq.content(response) == b'{"id": "c1"}'
            await deferLater(reactor, gap)
        return len(answer.connections)

    try:
        assert await posts(4, 0.2) == 1
        assert await posts(3, 1.5) == 3
    finally:
        await proxy.stop()
        await port.stopListening()
