"""The bill on /stats through a running proxy: a JSON response's cache figures reach the billing section."""

from __future__ import annotations

import json

import pytest_twisted
from obs_support import ANTHROPIC_JSON, fetch


@pytest_twisted.ensureDeferred
async def test_stats_endpoint_shows_the_bill_for_a_non_streamed_response(make_proxy, upstream) -> None:
    def answer(request, recorded):
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(ANTHROPIC_JSON).encode()

    upstream.handler = answer
    proxy = make_proxy(production=True, compression="stable")
    body = json.dumps({"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
    status, _ = await fetch(
        proxy.url + "/v1/messages", "POST", data=body.encode(), headers={"content-type": ["application/json"]}
    )
    assert status == 200
    status, text = await fetch(proxy.url + "/stats")
    bill = json.loads(text)["billing"]["by_provider"]["anthropic"]
    assert (bill["cache_read_tokens"], bill["cache_write_tokens"], bill["uncached_input_tokens"]) == (9000, 900, 100)
