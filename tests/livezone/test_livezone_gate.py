"""The gate: which requests may be compressed, and why not."""

from __future__ import annotations

import pytest

from headroom_twisted.compress.gate import Endpoint, decide

JSON = {"content-type": ["application/json"]}
LIMIT = 16 * 1024 * 1024


def gate(method="POST", path="/v1/chat/completions", headers=JSON, length=100, mode="live_zone"):
    return decide(method, path, headers, length, mode, LIMIT)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/chat/completions", Endpoint.CHAT),
        ("/v1/messages", Endpoint.ANTHROPIC),
        ("/v1/responses", Endpoint.RESPONSES),
        (b"/v1/messages", Endpoint.ANTHROPIC),
        ("/v1/responses?stream=true", Endpoint.RESPONSES),
    ],
)
def test_compressible_paths(path, endpoint):
    decision = gate(path=path)
    assert decision.endpoint is endpoint
    assert decision.passthrough_reason is None
    assert decision.compress


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions/",
        "/v1/messages/count_tokens",
        "/v1/responses/resp_123",
        "/V1/messages",
        "/v1/chat%2Fcompletions",
        "//v1/messages",
        "/v1/models",
        "/x?/v1/messages",
        "",
    ],
)
def test_other_paths_are_not_compressible(path):
    decision = gate(path=path)
    assert decision.endpoint is None
    assert decision.passthrough_reason == "not_compressible_path"
    assert not decision.compress


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"mode": "off"}, "mode_off"),
        ({"method": "GET"}, "not_compressible_method"),
        ({"method": "post"}, "not_compressible_method"),
        ({"method": b"PUT"}, "not_compressible_method"),
        ({"headers": {}}, "not_json"),
        ({"headers": {"content-type": ["text/plain"]}}, "not_json"),
        ({"headers": {"content-type": ["application/json-seq"]}}, "not_json"),
        ({"headers": {"content-type": ["application/json", "application/json"]}}, "not_json"),
        ({"headers": {**JSON, "content-encoding": ["gzip"]}}, "content_encoded"),
        ({"headers": {**JSON, "content-encoding": [b"identity, br"]}}, "content_encoded"),
        ({"headers": {**JSON, "content-encoding": ["identity", "zstd"]}}, "content_encoded"),
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
        {"content-type": ["application/json; charset=utf-8"]},
        {"content-type": [b"Application/JSON ;charset=UTF-8"]},
        {"content-type": ["application/json"], "content-encoding": ["identity"]},
        {"content-type": ["application/json"], "content-encoding": [""]},
    ],
)
def test_accepted_headers(headers):
    assert gate(headers=headers).compress


def test_body_exactly_at_the_limit_is_compressible():
    assert gate(length=LIMIT).compress
