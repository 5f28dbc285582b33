"""The observer: routing by path, one sse_stream_closed, never raising, chunking-blind."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headroom_twisted.endpoints import Endpoint
from headroom_twisted.sse.anthropic import AnthropicMachine
from headroom_twisted.sse.openai_chat import OpenAIChatMachine
from headroom_twisted.sse.responses import ResponsesMachine
from headroom_twisted.sse.state import Digest
from headroom_twisted.sse.summary import StreamSummary
from headroom_twisted.sse.telemetry import GenericMachine, SSETelemetry, machine_for, telemetry_for
from headroom_twisted.upstream.observer import BodyObserver, StreamEnd

from .streams import capturing_log, closed_events, fixture, fixture_names, parser_errors, path_for, run, split_at

EXPECTED: dict[str, dict[str, Any]] = {
    "openai_chat_text": dict(
        provider="openai_chat",
        model="gpt-4o-2024-08-06",
        ended="clean",
        finish_reason="stop",
        events=7,
        usage={"input_tokens": 1117, "output_tokens": 9, "cached_tokens": 1024, "reasoning_tokens": 0},
        tool_calls=0,
        tool_names=[],
        text_chars=20,
        comments=1,
    ),
    "openai_chat_tool_calls": dict(
        ended="clean",
        finish_reason="tool_calls",
        tool_calls=2,
        tool_names=["get_weather", "get_time"],
        usage={"input_tokens": 82, "output_tokens": 41, "cached_tokens": 0, "reasoning_tokens": 0},
    ),
    "openai_chat_refusal": dict(ended="clean", refusal_chars=34, usage={}),
    "openai_chat_error": dict(ended="error_event", finish_reason=None, events=3),
    "openai_chat_truncated": dict(ended="truncated", events=3, text_chars=14),
    "anthropic_text": dict(
        provider="anthropic",
        model="claude-sonnet-4-5-20250929",
        ended="clean",
        finish_reason="end_turn",
        events=8,
        usage={"input_tokens": 2073, "output_tokens": 15, "cached_tokens": 2048, "cache_creation_tokens": 0},
    ),
    "anthropic_tool_use": dict(
        ended="clean", finish_reason="tool_use", tool_calls=1, tool_names=["get_weather"], events=16
    ),
    "anthropic_thinking": dict(ended="clean", thinking_chars=83, text_chars=17),
    "anthropic_citations": dict(ended="clean", text_chars=18),
    "anthropic_error": dict(ended="error_event", error="overloaded_error: Overloaded"),
    "anthropic_truncated": dict(ended="truncated", events=3, tool_names=["write_file"], invalid_tool_json=0),
    "responses_text": dict(
        provider="openai_responses",
        ended="clean",
        finish_reason="completed",
        text_chars=20,
        usage={"input_tokens": 1337, "output_tokens": 9, "cached_tokens": 1280, "reasoning_tokens": 0},
    ),
    "responses_function_call": dict(ended="clean", tool_calls=1, tool_names=["get_weather"], thinking_chars=22),
    "responses_unprefixed": dict(ended="clean", text_chars=15, usage={"input_tokens": 11, "output_tokens": 4}),
    "responses_failed": dict(ended="error_event", finish_reason="failed"),
    "responses_truncated": dict(ended="truncated", finish_reason=None, tool_names=["search_docs"]),
}


def test_every_fixture_has_expectations() -> None:
    assert sorted(EXPECTED) == fixture_names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_logs_one_closed_event_with_expected_fields(name: str) -> None:
    body = fixture(name)
    observer, sink = run(path_for(name), [body])
    [closed] = closed_events(sink)
    assert closed["request_id"] == "req-test"
    assert closed["bytes"] == len(body)
    assert closed["parser_error"] is False and not parser_errors(sink)
    assert {key: closed[key] for key in EXPECTED[name]} == EXPECTED[name]
    assert closed == {"event": "sse_stream_closed", "request_id": "req-test", **observer.summary().log_fields()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_split_at_every_byte_gives_the_same_final_state(name: str) -> None:
    body = fixture(name)
    whole, _ = run(path_for(name), [body])
    for cut in range(1, len(body)):
        split, _ = run(path_for(name), [body[:cut], body[cut:]])
        assert split.state == whole.state, cut
        assert split.summary() == whole.summary(), cut


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(sorted(EXPECTED)), crlf=st.booleans(), data=st.data())
def test_any_chunking_gives_the_same_summary(name: str, crlf: bool, data: st.DataObject) -> None:
    body = fixture(name)
    wire = body.replace(b"\n", b"\r\n") if crlf else body
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=60))
    split, _ = run(path_for(name), split_at(wire, cuts))
    whole, _ = run(path_for(name), [body])
    assert split.state == whole.state
    assert split.summary().log_fields() | {"bytes": 0} == whole.summary().log_fields() | {"bytes": 0}


def test_routing_by_path() -> None:
    assert isinstance(machine_for(Endpoint.CHAT), OpenAIChatMachine)
    assert isinstance(machine_for(Endpoint.ANTHROPIC), AnthropicMachine)
    assert isinstance(machine_for(Endpoint.RESPONSES), ResponsesMachine)
    assert isinstance(machine_for(None), GenericMachine)


def test_result_is_a_body_observer() -> None:
    log, _ = capturing_log()
    observer: BodyObserver = telemetry_for(Endpoint.ANTHROPIC, log)
    assert isinstance(observer, SSETelemetry)


def test_generic_stream_counts_events_and_trusts_the_transport() -> None:
    body = b"data: a\n\n: ping\n\nevent: x\ndata: b\n\n"
    for end, ended in (
        (StreamEnd.COMPLETE, "clean"),
        (StreamEnd.TRUNCATED, "truncated"),
        (StreamEnd.CLIENT_DISCONNECTED, "client_disconnected"),
    ):
        observer, sink = run("/v2/whatever", [body], end)
        [closed] = closed_events(sink)
        assert (closed["provider"], closed["events"], closed["comments"], closed["ended"]) == ("generic", 2, 1, ended)
        assert observer.state is None


def test_ended_by_transport_for_a_provider_stream() -> None:
    cut = fixture("anthropic_truncated")
    assert closed_events(run("/v1/messages", [cut], StreamEnd.COMPLETE)[1])[0]["ended"] == "truncated"
    assert closed_events(run("/v1/messages", [cut], StreamEnd.TRUNCATED)[1])[0]["ended"] == "truncated"
    assert (
        closed_events(run("/v1/messages", [cut], StreamEnd.CLIENT_DISCONNECTED)[1])[0]["ended"] == "client_disconnected"
    )
    whole = fixture("anthropic_text")
    assert closed_events(run("/v1/messages", [whole], StreamEnd.CLIENT_DISCONNECTED)[1])[0]["ended"] == "clean"
    error = fixture("anthropic_error")
    assert closed_events(run("/v1/messages", [error], StreamEnd.COMPLETE)[1])[0]["ended"] == "error_event"


def test_summary_before_finish_is_open() -> None:
    log, _ = capturing_log()
    observer = telemetry_for(Endpoint.CHAT, log)
    observer.chunk(fixture("openai_chat_text"))
    assert observer.summary().ended == "open"
    assert observer.summary().digest.model == "gpt-4o-2024-08-06"


def test_finished_twice_logs_once() -> None:
    log, sink = capturing_log()
    observer = telemetry_for(Endpoint.ANTHROPIC, log)
    observer.finished(StreamEnd.COMPLETE)
    observer.finished(StreamEnd.TRUNCATED)
    assert len(closed_events(sink)) == 1


def test_oversized_event_is_counted_in_the_log() -> None:
    log, sink = capturing_log()
    observer = SSETelemetry(OpenAIChatMachine(), log, max_event_bytes=100)
    observer.chunk(b"data: " + b"x" * 500)
    observer.chunk(b"\n\ndata: [DONE]\n\n")
    observer.finished(StreamEnd.COMPLETE)
    [closed] = closed_events(sink)
    assert (closed["oversized_events"], closed["ended"]) == (1, "clean")


class ExplodingMachine:
    provider = "exploding"

    def __init__(self) -> None:
        self.calls = 0

    def on_event(self, event: object) -> None:
        self.calls += 1
        raise RuntimeError("parser bug")

    def digest(self) -> object:
        raise RuntimeError("still broken")


def test_parser_bug_is_logged_once_and_parsing_stops() -> None:
    log, sink = capturing_log()
    machine = ExplodingMachine()
    observer = SSETelemetry(machine, log)  # type: ignore[arg-type]
    observer.chunk(b"data: 1\n\n")
    observer.chunk(b"data: 2\n\n")
    observer.finished(StreamEnd.COMPLETE)
    assert machine.calls == 1
    [error] = parser_errors(sink)
    assert error["request_id"] == "req-test" and error["exc_info"] is True
    [closed] = closed_events(sink)
    assert closed["parser_error"] is True and closed["bytes"] == 18


def test_a_failing_logger_does_not_raise() -> None:
    class Broken:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("no logging today")

    observer = SSETelemetry(ExplodingMachine(), Broken())  # type: ignore[arg-type]
    observer.chunk(b"data: 1\n\n")
    observer.finished(StreamEnd.COMPLETE)


class CountingMachine(GenericMachine):
    def __init__(self) -> None:
        self.digests = 0

    def digest(self) -> Digest:
        self.digests += 1
        return super().digest()


def test_the_logged_summary_is_built_once_and_handed_to_on_closed() -> None:
    log, sink = capturing_log()
    machine = CountingMachine()
    summaries: list[StreamSummary] = []
    observer = SSETelemetry(machine, log, on_closed=summaries.append)
    observer.chunk(b"data: a\n\n")
    observer.finished(StreamEnd.TRUNCATED)
    observer.finished(StreamEnd.COMPLETE)
    [summary] = summaries
    [closed] = closed_events(sink)
    assert machine.digests == 1
    assert (summary.ended, summary.events) == ("truncated", 1)
    assert closed == {"event": "sse_stream_closed", "request_id": "req-test", **summary.log_fields()}


def test_a_summary_that_cannot_be_built_is_handed_to_nobody() -> None:
    log, sink = capturing_log()
    summaries: list[StreamSummary] = []
    observer = SSETelemetry(ExplodingMachine(), log, on_closed=summaries.append)  # type: ignore[arg-type]
    observer.finished(StreamEnd.COMPLETE)
    [closed] = closed_events(sink)
    assert closed["parser_error"] is True and closed["ended"] == "unknown"
    assert summaries == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
_TYPES = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "response.created",
    "response.completed",
    "response.failed",
    "response.incomplete",
    "response.output_item.added",
    "response.output_item.done",
    "response.content_part.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.refusal.delta",
    "response.refusal.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.reasoning_summary_text.delta",
    "output_text.delta",
]
_KEYS = [
    "message",
    "content_block",
    "delta",
    "usage",
    "index",
    "response",
    "item",
    "part",
    "output_index",
    "content_index",
    "item_id",
    "error",
    "choices",
    "id",
    "model",
    "text",
    "arguments",
    "refusal",
]


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/responses"]),
    payloads=st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(_TYPES)}, optional={k: _JSON for k in _KEYS}) | _JSON,
        max_size=8,
    ),
)
def test_arbitrary_payload_shapes_are_no_parser_bug(path: str, payloads: list[Any]) -> None:
    body = b"".join(b"data: " + orjson.dumps(p) + b"\n\n" for p in payloads)
    _, sink = run(path, [body])
    assert not parser_errors(sink)
    assert len(closed_events(sink)) == 1


@settings(max_examples=200, deadline=None)
@given(
    path=st.sampled_from(["/v1/chat/completions", "/v1/messages", "/v1/responses", "/other"]),
    chunks=st.lists(
        st.binary(max_size=64) | st.sampled_from([b"data: {", b"}\n\n", b"\r\n", b"data: [DONE]\n\n"]), max_size=20
    ),
    end=st.sampled_from(list(StreamEnd)),
)
def test_arbitrary_bytes_never_raise(path: str, chunks: list[bytes], end: StreamEnd) -> None:
    _, sink = run(path, chunks, end)
    assert not parser_errors(sink)
    assert len(closed_events(sink)) == 1
