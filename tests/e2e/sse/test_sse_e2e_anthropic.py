"""Anthropic Messages streams end to end: the official `anthropic` SDK's `messages.stream` -> proxy -> fake upstream."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import pytest_twisted
from sse_e2e_support import CLAUDE_MODEL, PIECES, StreamPlan, anthropic_text_events, closed_events, play, sse
from structlog.testing import capture_logs
from twisted.internet.threads import deferToThread

MESSAGES = [{"role": "user", "content": "Say hello."}]


def sdk(proxy_url: str, request_id: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-ant-test-dummy",
        base_url=proxy_url,
        max_retries=0,
        timeout=10,
        default_headers={"x-request-id": request_id},
    )


@pytest_twisted.ensureDeferred
async def test_messages_stream_reaches_the_sdk_and_the_log(make_proxy, upstream) -> None:
    plan = StreamPlan(anthropic_text_events(PIECES))
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    def call() -> tuple[str, Any]:
        with sdk(proxy.url, "e2e-claude-1").messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES
        ) as stream:
            text = "".join(stream.text_stream)
            return text, stream.get_final_message()

    with capture_logs() as logs:
        text, final = await deferToThread(call)

    assert text == "".join(PIECES)
    assert final.content[0].text == "".join(PIECES)
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (25, 15)
    assert upstream.last.uri == b"/v1/messages"
    [closed] = closed_events(logs)
    assert closed["request_id"] == "e2e-claude-1"
    assert closed["provider"] == "anthropic"
    assert closed["model"] == CLAUDE_MODEL
    # input_tokens is the whole prompt: uncached + cache reads + cache writes.
    assert closed["usage"] == {
        "input_tokens": 25 + 2048 + 7,
        "output_tokens": 15,
        "cached_tokens": 2048,
        "cache_creation_tokens": 7,
    }
    assert closed["finish_reason"] == "end_turn"
    assert closed["ended"] == "clean"
    assert closed["events"] == len(plan.writes)
    assert closed["text_chars"] == len("".join(PIECES))


def stream_until_error(url: str, key: str) -> tuple[str, Exception | None]:
    """`messages.stream` through the proxy: the text received, and the error that ended it if any."""
    text: list[str] = []
    try:
        with sdk(url, key).messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES) as stream:
            text.extend(stream.text_stream)
    except Exception as error:
        return "".join(text), error
    return "".join(text), None


@pytest_twisted.ensureDeferred
async def test_messages_stream_cut_by_upstream_is_an_error_for_the_sdk(make_proxy, upstream) -> None:
    plan = StreamPlan(anthropic_text_events(PIECES), abort_after=5)
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    with capture_logs() as logs:
        text, error = await deferToThread(stream_until_error, proxy.url, "e2e-claude-cut")

    # The SDK lets the transport's own error through mid-stream (it wraps it only before the response).
    assert isinstance(error, (anthropic.APIConnectionError, httpx2.RemoteProtocolError)), repr(error)
    assert text == "".join(PIECES[:2])
    [closed] = closed_events(logs)
    assert closed["ended"] == "truncated"
    assert closed["finish_reason"] is None
    assert closed["usage"]["input_tokens"] == 25 + 2048 + 7


@pytest_twisted.ensureDeferred
async def test_error_event_mid_stream_reaches_the_sdk_and_the_log(make_proxy, upstream) -> None:
    overloaded = sse({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, "error")
    plan = StreamPlan([*anthropic_text_events(PIECES)[:4], overloaded])
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    with capture_logs() as logs:
        text, error = await deferToThread(stream_until_error, proxy.url, "e2e-claude-error")

    assert isinstance(error, anthropic.APIStatusError), repr(error)
    assert "Overloaded" in str(error)
    assert text == PIECES[0]
    [closed] = closed_events(logs)
    assert closed["ended"] == "error_event"
    assert closed["error"] == "overloaded_error: Overloaded"
