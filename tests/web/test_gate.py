"""The gate: which requests may be compressed, and why not."""

from __future__ import annotations

import pytest
from twisted.web.http_headers import Headers

from headroom_twisted.endpoints import Endpoint
from headroom_twisted.web.gate import decide

JSON = {b"content-type": [b"application/json"]}
LIMIT = 16 * 1024 * 1024


def gate(method=b"POST", endpoint=Endpoint.CHAT, headers=JSON, length=100, mode="live_zone"):
    return decide(method, endpoint, Headers(headers), length, mode, LIMIT)


@pytest.mark.parametrize("endpoint", list(Endpoint))
def test_the_three_llm_endpoints_are_compressible(endpoint):
    decision = gate(endpoint=endpoint)
    assert decision.endpoint is endpoint
    assert decision.passthrough_reason is None
    assert decision.compress


def test_a_route_naming_no_llm_endpoint_is_not_compressible():
    decision = gate(endpoint=None)
    assert decision.endpoint is None
    assert decision.passthrough_reason == "not_compressible_path"
    assert not decision.compress


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"mode": "off"}, "mode_off"),
        ({"method": b"GET"}, "not_compressible_method"),
        ({"method": b"post"}, "not_compressible_method"),
        ({"method": b"PUT"}, "not_compressible_method"),
        ({"headers": {}}, "not_json"),
        ({"headers": {b"content-type": [b"text/plain"]}}, "not_json"),
        ({"headers": {b"content-type": [b"application/json-seq"]}}, "not_json"),
        ({"headers": {b"content-type": [b"application/json", b"application/json"]}}, "not_json"),
        ({"headers": {**JSON, b"content-encoding": [b"gzip"]}}, "content_encoded"),
        ({"headers": {**JSON, b"content-encoding": [b"identity, br"]}}, "content_encoded"),
        ({"headers": {**JSON, b"content-encoding": [b"identity", b"zstd"]}}, "content_encoded"),
        ({"length": LIMIT + 1}, "too_large"),
    ],
)
def test_passthrough_reasons(kwargs, reason):
    decision = gate(**kwargs)
    assert decision.endpoint is Endpoint.CHAT
    assert decision.passthrough_reason == reason
    assert not decision.compress


@pytest.mark.parametrize(
    "headers",
    [
        {b"content-type": [b"application/json; charset=utf-8"]},
        {b"Content-Type": [b"Application/JSON ;charset=UTF-8"]},
        {b"content-type": [b"application/json"], b"content-encoding": [b"identity"]},
        {b"content-type": [b"application/json"], b"content-encoding": [b""]},
    ],
)
def test_accepted_headers(headers):
    assert gate(headers=headers).compress


def test_body_exactly_at_the_limit_is_compressible():
    assert gate(length=LIMIT).compress
