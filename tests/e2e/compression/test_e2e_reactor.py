"""The reactor stays responsive while big bodies compress on the thread pool.

Behaviour only, no clock: while four big tool outputs are being compressed,
small requests on other connections keep completing, many of them before
the first big body is answered. Were compression to hold the reactor, none
could. Latency figures come from bench/reactor_responsiveness.py, where a
loaded machine cannot fail a build.
"""

from __future__ import annotations

import json

import pytest_twisted
import treq
from e2e_support import JSON, corpus, decisions
from http_fakes import http_client
from structlog.testing import capture_logs
from tool_outputs import service_rows
from twisted.internet.defer import DeferredList, ensureDeferred

SMALL_BEFORE_FIRST_BIG = 6
SMALL_CHAT = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'


def big_bodies() -> list[bytes]:
    outputs = [
        service_rows(3000),
        corpus("pytest_failures.txt") * 8,
        corpus("grep_deprecationwarning.txt") * 3,
        corpus("git_diff_requests_tests.txt") * 5,
    ]
    return [
        json.dumps(
            {
                "model": "gpt-4o",
                "messages": [
                    {"role": "user", "content": "What failed?"},
                    {"role": "tool", "tool_call_id": "c1", "content": output},
                ],
            }
        ).encode()
        for output in outputs
    ]


@pytest_twisted.ensureDeferred
async def test_small_requests_get_through_while_big_bodies_compress(make_proxy, upstream) -> None:
    proxy = make_proxy(production=True, threads="2")
    bodies = big_bodies()
    small_done = 0
    small_done_when_big_done: list[int] = []

    async def send_big(body: bytes) -> None:
        response = await http_client().post(proxy.url + "/v1/chat/completions", data=body, headers=JSON)
        await treq.content(response)
        small_done_when_big_done.append(small_done)

    async def small(method: str, path: str, body: bytes | None) -> None:
        nonlocal small_done
        response = await http_client().request(method, proxy.url + path, data=body, headers=JSON)
        await treq.content(response)
        assert response.code == 200
        small_done += 1

    with capture_logs() as logs:
        big = DeferredList([ensureDeferred(send_big(body)) for body in bodies], fireOnOneErrback=True)
        while len(small_done_when_big_done) < len(bodies):
            await small("GET", "/v1/models", None)
            await small("POST", "/v1/chat/completions", SMALL_CHAT)
        await big
    compressed = [event for event in decisions(logs) if event["decision"] == "compressed"]
    assert len(compressed) == len(bodies)
    assert small_done_when_big_done[0] >= SMALL_BEFORE_FIRST_BIG, small_done_when_big_done
