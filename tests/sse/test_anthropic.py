"""Anthropic Messages events accumulated into MessageStreamState."""

from __future__ import annotations

import orjson

from headroom_twisted.sse.anthropic import AnthropicMachine
from headroom_twisted.sse.framing import SSEEvent
from headroom_twisted.sse.state import Usage

from .streams import fixture, run


def machine_for(name: str) -> AnthropicMachine:
    observer, _ = run("/v1/messages", [fixture(name)])
    assert isinstance(observer.machine, AnthropicMachine)
    return observer.machine


def test_text_stream_with_cached_prompt() -> None:
    machine = machine_for("anthropic_text")
    state = machine.state
    assert (state.id, state.model, state.role) == (
        "msg_01XFDUDYJgAACzvnptvVoYEL",
        "claude-sonnet-4-5-20250929",
        "assistant",
    )
    assert machine.digest().text_chars == len("Bonjour, ça va ? 👋")
    assert state.pings == 1
    assert state.stopped and state.stop_reason == "end_turn"
    assert machine.digest().usage == Usage(
        input_tokens=25 + 2048, output_tokens=15, cached_tokens=2048, cache_creation_tokens=0
    )


def test_tool_use_input_json_accumulated_and_validated_at_stop() -> None:
    machine = machine_for("anthropic_tool_use")
    block = machine.state.blocks[1]
    assert (block.type, block.tool_id, block.name) == ("tool_use", "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather")
    assert block.input_valid and block.stopped
    digest = machine.digest()
    assert digest.tool_names == ("get_weather",)
    assert digest.invalid_tool_json == 0
    assert digest.finish_reason == "tool_use"
    assert digest.usage.output_tokens == 89


def test_thinking_is_counted_apart_from_text() -> None:
    machine = machine_for("anthropic_thinking")
    thinking, text = machine.state.blocks[0], machine.state.blocks[1]
    assert (thinking.type, text.type) == ("thinking", "text")
    assert (thinking.thinking_chars, thinking.text_chars) == (83, 0)
    digest = machine.digest()
    assert (digest.thinking_chars, digest.text_chars) == (83, len("27 * 453 = 12,231"))
    assert digest.usage.cache_creation_tokens == 1200
    assert digest.usage.input_tokens == 1242


def test_citations_are_counted() -> None:
    assert machine_for("anthropic_citations").state.blocks[0].citations == 1


def test_error_event_mid_stream() -> None:
    digest = machine_for("anthropic_error").digest()
    assert digest.error == "overloaded_error: Overloaded"
    assert digest.text_chars == len("Once upon")
    assert digest.terminal is False


def test_truncated_tool_input_is_not_judged() -> None:
    machine = machine_for("anthropic_truncated")
    block = machine.state.blocks[0]
    assert block.input_valid is None and not block.stopped
    assert machine.digest().invalid_tool_json == 0


def feed(machine: AnthropicMachine, *payloads: object) -> None:
    for payload in payloads:
        machine.on_event(SSEEvent("message", orjson.dumps(payload).decode()))


def test_invalid_tool_json_at_stop_is_counted() -> None:
    machine = AnthropicMachine()
    feed(
        machine,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "name": "t", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        {"type": "content_block_stop", "index": 0},
    )
    assert machine.state.blocks[0].input_valid is False
    assert machine.digest().invalid_tool_json == 1


def test_message_delta_usage_replaces_start_usage() -> None:
    machine = AnthropicMachine()
    feed(
        machine,
        {"type": "message_start", "message": {"usage": {"input_tokens": 10, "output_tokens": 1}}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"input_tokens": 12, "output_tokens": 50, "server_tool_use": {"web_search_requests": 1}},
        },
    )
    assert machine.digest().usage == Usage(input_tokens=12, output_tokens=50)
    assert machine.digest().finish_reason == "max_tokens"


def test_event_name_is_used_when_payload_has_no_type() -> None:
    machine = AnthropicMachine()
    machine.on_event(SSEEvent("message_stop", "{}"))
    assert machine.state.stopped
