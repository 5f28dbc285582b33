"""OpenAI streams end to end: the official `openai` SDK -> proxy -> fake upstream.

The SDK is synchronous, so it runs in a thread (`deferToThread`) while the
reactor keeps serving the proxy and the fake upstream. Each test checks what
the SDK assembled against what the upstream sent, and the one
`sse_stream_closed` log event against the stream's usage and ending.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest_twisted
from sse_e2e_support import (
    CHAT_MODEL,
    PIECES,
    RESPONSES_MODEL,
    StreamPlan,
    TelemetryTap,
    chat_chunk,
    chat_text_events,
    chat_usage_chunk,
    closed_events,
    play,
    ready,
    responses_text_events,
    wait_for,
)
from structlog.testing import capture_logs
from twisted.internet.threads import deferToThread

MESSAGES = [{"role": "user", "content": "Say hello."}]


def sdk(proxy_url: str, request_id: str) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test-dummy",
        base_url=proxy_url + "/v1",
        max_retries=0,
        timeout=10,
        default_headers={"x-request-id": request_id},
    )


@pytest_twisted.ensureDeferred
async def test_chat_stream_with_usage_reaches_the_sdk_and_the_log(make_proxy, upstream) -> None:
    plan = StreamPlan(chat_text_events(PIECES, usage=(1117, 42, 1024)))
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    def call() -> tuple[str, Any, list[str | None]]:
        stream = sdk(proxy.url, "e2e-chat-1").chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text, usage, finishes = [], None, []
        for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                finishes.append(choice.finish_reason)
            usage = chunk.usage or usage
        return "".join(text), usage, finishes

    with capture_logs() as logs:
        text, usage, finishes = await deferToThread(call)

    assert text == "".join(PIECES)
    assert (usage.prompt_tokens, usage.completion_tokens, usage.prompt_tokens_details.cached_tokens) == (1117, 42, 1024)
    assert "stop" in finishes
    assert json.loads(upstream.last.body)["stream_options"] == {"include_usage": True}
    [closed] = closed_events(logs)
    assert closed["request_id"] == "e2e-chat-1"
    assert closed["provider"] == "openai_chat"
    assert closed["model"] == CHAT_MODEL
    assert closed["usage"] == {"input_tokens": 1117, "output_tokens": 42, "cached_tokens": 1024, "reasoning_tokens": 0}
    assert closed["finish_reason"] == "stop"
    assert closed["ended"] == "clean"
    assert closed["events"] == len(plan.writes)
    assert closed["bytes"] == len(plan.body)
    assert closed["text_chars"] == len("".join(PIECES))
    assert not closed["parser_error"]


@pytest_twisted.ensureDeferred
async def test_responses_stream_reaches_the_sdk_and_the_log(make_proxy, upstream) -> None:
    plan = StreamPlan(responses_text_events(PIECES))
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    def call() -> tuple[str, list[str], Any]:
        stream = sdk(proxy.url, "e2e-responses-1").responses.create(model="gpt-4.1", input="Say hello.", stream=True)
        deltas, kinds, completed = [], [], None
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            if event.type == "response.completed":
                completed = event.response
        return "".join(deltas), kinds, completed

    with capture_logs() as logs:
        text, kinds, completed = await deferToThread(call)

    assert text == "".join(PIECES)
    assert completed.output_text == "".join(PIECES)
    assert completed.usage.input_tokens == 1337 and completed.usage.output_tokens == 9
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    [closed] = closed_events(logs)
    assert closed["request_id"] == "e2e-responses-1"
    assert closed["provider"] == "openai_responses"
    assert closed["model"] == RESPONSES_MODEL
    assert closed["usage"] == {"input_tokens": 1337, "output_tokens": 9, "cached_tokens": 1280, "reasoning_tokens": 0}
    assert closed["ended"] == "clean"
    assert closed["events"] == len(plan.writes)
    assert closed["text_chars"] == len("".join(PIECES))


@pytest_twisted.ensureDeferred
async def test_refusal_field_in_response_handled(make_proxy, upstream) -> None:
    refusal = ["I'm sorry,", " I can't help", " with that — désolé."]
    plan = StreamPlan(
        [
            chat_chunk({"role": "assistant", "content": None, "refusal": ""}),
            *(chat_chunk({"refusal": piece}) for piece in refusal),
            chat_chunk({}, "stop"),
            chat_usage_chunk(20, 9, 0),
            b"data: [DONE]\n\n",
        ]
    )
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    def call() -> tuple[str, str]:
        stream = sdk(proxy.url, "e2e-refusal").chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        refused, content = [], []
        for chunk in stream:
            for choice in chunk.choices:
                refused.append(choice.delta.refusal or "")
                content.append(choice.delta.content or "")
        return "".join(refused), "".join(content)

    with capture_logs() as logs:
        refused, content = await deferToThread(call)
        # The client may read [DONE] before the proxy has seen the upstream's body end.
        await wait_for(lambda: bool(closed_events(logs)))

    assert refused == "".join(refusal)
    assert content == ""
    [closed] = closed_events(logs)
    assert closed["refusal_chars"] == len("".join(refusal))
    assert closed["text_chars"] == 0
    assert closed["finish_reason"] == "stop"
    assert closed["ended"] == "clean"
    assert closed["usage"]["output_tokens"] == 9


@pytest_twisted.ensureDeferred
async def test_streaming_tool_call_argument_accumulation(make_proxy, upstream, monkeypatch) -> None:
    fragments = ['{"location": "Pa', "ris, Fran", 'ce", "unit": "celsius"}']
    opening = {
        "index": 0,
        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    plan = StreamPlan(
        [
            chat_chunk({"role": "assistant", "content": None, "tool_calls": [opening]}),
            *(chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}) for part in fragments),
            chat_chunk({}, "tool_calls"),
            chat_usage_chunk(82, 17, 0),
            b"data: [DONE]\n\n",
        ]
    )
    upstream.handler = play(plan)
    tap = TelemetryTap(monkeypatch)
    proxy = make_proxy(production=True)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]

    def call() -> Any:
        with sdk(proxy.url, "e2e-tools").chat.completions.stream(
            model="gpt-4o-mini", messages=MESSAGES, tools=tools, stream_options={"include_usage": True}
        ) as stream:
            return stream.get_final_completion()

    with capture_logs() as logs:
        completion = await deferToThread(call)

    [assembled] = completion.choices[0].message.tool_calls
    assert assembled.function.name == "get_weather"
    assert assembled.function.arguments == "".join(fragments)
    assert completion.choices[0].finish_reason == "tool_calls"
    call_state = tap.only.state.choices[0].tool_calls[0]
    assert call_state.id == "call_DdmO9pD3xa9XTPNJ32zg2hcA"
    assert call_state.name == "get_weather"
    assert call_state.arguments.value == assembled.function.arguments
    assert json.loads(call_state.arguments.value) == {"location": "Paris, France", "unit": "celsius"}
    [closed] = closed_events(logs)
    assert closed["tool_calls"] == 1 and closed["tool_names"] == ["get_weather"]
    assert closed["invalid_tool_json"] == 0
    assert closed["finish_reason"] == "tool_calls"
    assert closed["ended"] == "clean"


@pytest_twisted.ensureDeferred
async def test_upstream_cut_mid_stream_is_an_error_for_the_sdk_and_truncated_in_the_log(make_proxy, upstream) -> None:
    plan = StreamPlan(chat_text_events(PIECES), abort_after=4)
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    def call() -> tuple[str, Exception | None]:
        stream = sdk(proxy.url, "e2e-cut").chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        text: list[str] = []
        try:
            for chunk in stream:
                text.extend(choice.delta.content or "" for choice in chunk.choices)
        except Exception as error:
            return "".join(text), error
        return "".join(text), None

    with capture_logs() as logs:
        text, error = await deferToThread(call)

    assert isinstance(error, openai.APIConnectionError), f"a cut stream ended for the client with {error!r}"
    assert text == "".join(PIECES[:3])
    [closed] = closed_events(logs)
    assert closed["ended"] == "truncated"
    assert closed["events"] == 4
    assert closed["usage"] == {}
    assert any(entry["event"] == "upstream_body_truncated" for entry in logs)


@pytest_twisted.ensureDeferred
async def test_client_leaving_mid_stream_is_client_disconnected_in_the_log(make_proxy, upstream) -> None:
    pieces = [f" word{number}" for number in range(60)]
    plan = StreamPlan(chat_text_events(pieces), delay=0.03)
    upstream.handler = play(plan)
    proxy = await ready(make_proxy(production=True))

    def call() -> int:
        stream = sdk(proxy.url, "e2e-leave").chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        read = 0
        for _ in stream:
            read += 1
            if read == 3:
                break
        stream.close()
        return read

    with capture_logs() as logs:
        read = await deferToThread(call)
        await plan.closed
        await wait_for(lambda: bool(closed_events(logs)))

    assert read == 3
    assert len(plan.sent) < len(plan.writes), "the upstream kept streaming to a client that left"
    [closed] = closed_events(logs)
    assert closed["request_id"] == "e2e-leave"
    assert closed["ended"] == "client_disconnected"
    finished = [entry for entry in logs if entry["event"] == "request_finished"]
    assert [entry["client_disconnected"] for entry in finished] == [True]
