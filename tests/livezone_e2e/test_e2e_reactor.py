"""The reactor stays responsive while big bodies compress on the thread pool.

A loose bound only (the real figures come from bench/reactor_responsiveness.py):
while four big tool outputs are being compressed, small requests on other
connections still get through in well under half a second.
"""

from __future__ import annotations

import json
import time

import pytest_twisted
import treq
from e2e_support import JSON, corpus, decisions
from http_fakes import http_client
from structlog.testing import capture_logs
from tool_outputs import service_rows
from twisted.internet.defer import DeferredList, ensureDeferred

BOUND_MS = 500.0
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
    in_flight = {"big": len(bodies)}

    async def send_big(body: bytes) -> None:
        response = await http_client().post(proxy.url + "/v1/chat/completions", data=body, headers=JSON)
        await treq.content(response)
        in_flight["big"] -= 1

    async def small(method: str, path: str, body: bytes | None) -> float:
        started = time.perf_counter()
        response = await http_client().request(method, proxy.url + path, data=body, headers=JSON)
        await treq.content(response)
        assert response.code == 200
        return (time.perf_counter() - started) * 1000.0

    with capture_logs() as logs:
        big = DeferredList([ensureDeferred(send_big(body)) for body in bodies], fireOnOneErrback=True)
        latencies = []
        while in_flight["big"] > 0:
            latencies.append(await small("GET", "/v1/models", None))
            latencies.append(await small("POST", "/v1/chat/completions", SMALL_CHAT))
        await big
    compressed = [event for event in decisions(logs) if event["decision"] == "compressed"]
    assert len(compressed) == len(bodies)
    assert len(latencies) >= 6, "the big bodies finished before small requests could be measured"
    assert max(latencies) < BOUND_MS, sorted(latencies)[-5:]
