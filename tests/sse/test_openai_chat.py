"""Chat Completions chunks accumulated into ChatStreamState."""

from __future__ import annotations

import orjson

from headroom_twisted.sse.framing import SSEEvent
from headroom_twisted.sse.openai_chat import OpenAIChatMachine
from headroom_twisted.sse.state import Usage

from .streams import fixture, run


def machine_for(name: str) -> OpenAIChatMachine:
    observer, _ = run("/v1/chat/completions", [fixture(name)])
    assert isinstance(observer.machine, OpenAIChatMachine)
    return observer.machine


def test_text_stream() -> None:
    machine = machine_for("openai_chat_text")
    state = machine.state
    assert state.id == "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
    assert state.model == "gpt-4o-2024-08-06"
    assert state.system_fingerprint == "fp_eb9dce56a8"
    choice = state.choices[0]
    assert choice.role == "assistant"
    assert choice.content_chars == machine.digest().text_chars == len("Héllo wörld 🌍! 日本語も。")
    assert choice.finish_reason == "stop"
    assert state.usage == Usage(input_tokens=1117, output_tokens=9, cached_tokens=1024, reasoning_tokens=0)
    assert state.done


def test_tool_calls_accumulated_per_index() -> None:
    machine = machine_for("openai_chat_tool_calls")
    calls = machine.state.choices[0].tool_calls
    assert [(c.index, c.id, c.type, c.name) for c in calls.values()] == [
        (0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "function", "get_weather"),
        (1, "call_9Zx1kq0QyTtLwPbbnmWlTgaC", "function", "get_time"),
    ]
    assert orjson.loads(calls[0].arguments.value) == {"location": "Paris, France"}
    assert orjson.loads(calls[1].arguments.value) == {"tz": "Europe/Paris"}
    digest = machine.digest()
    assert digest.tool_names == ("get_weather", "get_time")
    assert digest.finish_reason == "tool_calls"
    assert digest.invalid_tool_json == 0


def test_refusal() -> None:
    machine = machine_for("openai_chat_refusal")
    assert machine.digest().refusal_chars == len("I'm sorry, I can't help with that.")
    assert machine.digest().text_chars == 0


def test_error_chunk_mid_stream() -> None:
    digest = machine_for("openai_chat_error").digest()
    assert digest.error == "server_error: The server had an error while processing your request. Sorry about that!"
    assert digest.text_chars == len("Partial answer")
    assert not digest.terminal


def test_truncated_stream_counts_what_arrived() -> None:
    machine = machine_for("openai_chat_truncated")
    assert machine.digest().text_chars == len("The first part")
    assert not machine.state.done


def feed(machine: OpenAIChatMachine, *payloads: object) -> None:
    for payload in payloads:
        machine.on_event(SSEEvent("message", orjson.dumps(payload).decode()))


def test_multiple_choices_and_invalid_finished_arguments() -> None:
    machine = OpenAIChatMachine()
    feed(
        machine,
        {"choices": [{"index": 1, "delta": {"content": "b"}}, {"index": 0, "delta": {"content": "a"}}]},
        {
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": "{"}}]}}
            ]
        },
        {"choices": [{"index": 0, "finish_reason": "tool_calls"}, {"index": 1, "finish_reason": "length"}]},
    )
    digest = machine.digest()
    assert digest.text_chars == 2
    assert digest.finish_reason == "tool_calls"
    assert digest.invalid_tool_json == 1


def test_reasoning_content_from_compatible_servers_counts_as_thinking() -> None:
    machine = OpenAIChatMachine()
    feed(machine, {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]})
    assert machine.digest().thinking_chars == 3


def test_wrongly_typed_fields_are_ignored() -> None:
    machine = OpenAIChatMachine()
    feed(
        machine,
        {"id": 5, "model": None, "choices": {"not": "a list"}, "usage": [1]},
        {"choices": [None, {"index": "x", "delta": {"content": 3, "tool_calls": [None, {"function": "f"}]}}]},
        [1, 2],
    )
    machine.on_event(SSEEvent("message", "not json"))
    digest = machine.digest()
    assert digest.model is None
    assert digest.bad_payloads == 2
    assert digest.tool_names == ("",)
