"""Recorded agent sessions through real proxies in stable mode, as a user would run them.

Each proxy is wired as ``twistd headroom`` wires it (worker processes, real
compressors). Turns alternate between two proxies with separate memos and
worker pools, as behind a load balancer without affinity; then one of them
is replaced by a fresh proxy (a restart) for the rest of the session.
"""

from __future__ import annotations

import hashlib

import pytest
import pytest_twisted
import treq
from http_fakes import FakeUpstream, Recorded, http_client
from stable_support import AGENTS, prefix_breaks, session
from twisted.web.server import Request

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.pipeline import compress_request


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize("agent", AGENTS)
@pytest_twisted.ensureDeferred
async def test_a_session_across_two_proxies_and_a_restart(agent: str, upstream: FakeUpstream, make_proxy) -> None:
    turns = session(agent)

    def replay(request: Request, recorded: Recorded) -> bytes:
        request.setHeader(b"content-type", b"text/event-stream")
        return turns[len(upstream.requests) - 1].reply

    upstream.handler = replay
    proxies = [make_proxy(production=True, compression="stable", threads="1") for _ in range(2)]
    client = http_client(persistent=True)
    received = []
    for number, turn in enumerate(turns):
        if number == len(turns) // 2:
            proxies[0] = make_proxy(production=True, compression="stable", threads="1")
        proxy = proxies[number % 2]
        response = await client.post(
            proxy.url + turn.path, data=turn.body, headers={b"content-type": [turn.content_type.encode()]}
        )
        received.append(await treq.content(response))
        assert response.code == 200
    sent = [turn.body for turn in turns]
    forwarded = [recorded.body for recorded in upstream.requests]
    assert [sha256(body) for body in received] == [sha256(turn.reply) for turn in turns]
    assert prefix_breaks(sent, forwarded) == []
    expected = [compress_request(t.body, t.endpoint, compress_block, mode="stable").body for t in turns]
    assert [sha256(body) for body in forwarded] == [sha256(body) for body in expected]
    assert sum(map(len, forwarded)) < sum(map(len, sent))
    if agent == "claude-code":  # its last turn reads twisted/web/http.py: the read goes out folded, by line range
        assert b"folded (body" in forwarded[-1] and b"Read offset=" in forwarded[-1]
