"""Responses events accumulated into ResponseStreamState."""

from __future__ import annotations

import orjson

from headroom_twisted.sse.framing import SSEEvent
from headroom_twisted.sse.responses import ResponsesMachine
from headroom_twisted.sse.state import Usage

from .streams import fixture, run


def machine_for(name: str) -> ResponsesMachine:
    observer, _ = run("/v1/responses", [fixture(name)])
    assert isinstance(observer.machine, ResponsesMachine)
    return observer.machine


def test_text_stream() -> None:
    machine = machine_for("responses_text")
    state = machine.state
    assert state.id == "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654"
    assert (state.model, state.status, state.terminal_type) == ("gpt-4.1-2025-04-14", "completed", "completed")
    item = state.items[0]
    assert (item.type, item.status, item.done) == ("message", "completed", True)
    assert item.text_chars == {0: len("Hi there — ünïcødé ✓")}
    assert state.usage == Usage(input_tokens=1337, output_tokens=9, cached_tokens=1280, reasoning_tokens=0)
    assert machine.digest().finish_reason == "completed"


def test_function_call() -> None:
    machine = machine_for("responses_function_call")
    call = machine.state.items[1]
    assert (call.type, call.name, call.call_id, call.id) == (
        "function_call",
        "get_weather",
        "call_12345xyz",
        "fc_12345xyz",
    )
    assert orjson.loads(call.arguments.value) == {"location": "Paris, France"}
    assert machine.digest().thinking_chars == len("Need the weather tool.")
    digest = machine.digest()
    assert digest.tool_names == ("get_weather",)
    assert digest.invalid_tool_json == 0
    assert digest.usage.reasoning_tokens == 64


def test_events_without_the_response_prefix() -> None:
    machine = machine_for("responses_unprefixed")
    assert machine.digest().text_chars == len("No prefix here.")
    assert machine.digest().terminal


def test_failed_response_is_an_error() -> None:
    digest = machine_for("responses_failed").digest()
    assert digest.error == "server_error: The model failed to generate a response."
    assert digest.finish_reason == "failed"
    assert not digest.terminal


def test_truncated_function_call_is_not_judged() -> None:
    machine = machine_for("responses_truncated")
    assert machine.state.items[0].arguments.value == '{"query": "twis'
    digest = machine.digest()
    assert (digest.terminal, digest.finish_reason, digest.invalid_tool_json) == (False, None, 0)
    assert digest.tool_names == ("search_docs",)


def feed(machine: ResponsesMachine, *payloads: object) -> None:
    for payload in payloads:
        machine.on_event(SSEEvent("message", orjson.dumps(payload).decode()))


def test_incomplete_response_reports_its_reason() -> None:
    machine = ResponsesMachine()
    feed(
        machine,
        {
            "type": "response.incomplete",
            "response": {"id": "r", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
        },
    )
    digest = machine.digest()
    assert (digest.terminal, digest.finish_reason) == (True, "max_output_tokens")


def test_refusal_and_error_event() -> None:
    machine = ResponsesMachine()
    feed(
        machine,
        {"type": "response.refusal.delta", "output_index": 0, "content_index": 0, "delta": "No"},
        {"type": "response.refusal.done", "output_index": 0, "content_index": 0, "refusal": "No can do"},
        {"type": "error", "code": "rate_limit_exceeded", "message": "slow down"},
    )
    digest = machine.digest()
    assert digest.refusal_chars == len("No can do")
    assert digest.error == "rate_limit_exceeded: slow down"


def test_items_found_by_item_id_when_output_index_is_missing() -> None:
    machine = ResponsesMachine()
    feed(
        machine,
        {
            "type": "response.output_item.added",
            "output_index": 3,
            "item": {"id": "fc_1", "type": "function_call", "name": "f"},
        },
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "{}"},
        {"type": "response.function_call_arguments.delta", "item_id": "other", "delta": "{"},
    )
    assert machine.state.items[3].arguments.value == "{}"
    assert machine.state.items[4].arguments.value == "{"


def test_hosted_tool_calls_are_counted_by_type() -> None:
    machine = ResponsesMachine()
    feed(
        machine,
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"type": "web_search_call", "status": "completed"},
        },
    )
    assert machine.digest().tool_names == ("web_search_call",)
