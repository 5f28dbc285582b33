"""OpenAI Responses through the real proxy: tool outputs, opaque items, SDK (issue 6)."""

from __future__ import annotations

import json

import openai
import pytest_twisted
from e2e_support import (
    RESPONSE_OBJECT,
    answer,
    corpus,
    decisions,
    in_thread,
    lit,
    post,
    replaced_texts,
    sha256,
    sse_fixture,
)
from structlog.testing import capture_logs

PATH = "/v1/responses"
QUESTION = "Where is callLater defined in the reactor base class (twisted/internet/base.py)?"
ENCRYPTED = b"gAAAAABo" + b"Zm9vYmFy" * 600 + b"=="
REASONING = b'{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"' + ENCRYPTED + b'"}'
FUNCTION_CALL = (
    b'{"type":"function_call","id":"fc_1","call_id":"call_1","name":"grep",'
    b'"arguments":"{\\"pattern\\":\\"callLater\\",\\"path\\":\\"twisted\\"}","status":"completed"}'
)


def body_of(*items: bytes, extra: bytes = b"") -> bytes:
    return (
        b'{"model":"gpt-4.1", "store" : false, "previous_response_id":"resp_prev",'
        b' "include":["reasoning.encrypted_content"], "max_output_tokens": 1.0e3,\n "input": [\n  '
        + b",\n  ".join(items)
        + b'\n ], "tools":[{"type":"function","name":"grep","parameters":{"type":"object"}}]'
        + extra
        + b" }"
    )


def user_message(text: str = QUESTION) -> bytes:
    return b'{"type":"message","role":"user","content":[{"type":"input_text","text":' + lit(text) + b"}]}"


def function_output(output: str, call: bytes = b"call_1") -> bytes:
    return b'{"type":"function_call_output","call_id":"' + call + b'","output":' + lit(output) + b"}"


@pytest_twisted.ensureDeferred
async def test_function_call_output_compressed(live, upstream) -> None:
    older, grep = corpus("grep_deprecationwarning.txt"), corpus("grep_calllater.txt")
    body = body_of(
        user_message(), FUNCTION_CALL, function_output(older, b"call_0"), FUNCTION_CALL, function_output(grep)
    )
    with capture_logs() as logs:
        await post(live, PATH, body)
    forwarded = upstream.last.body
    [new] = replaced_texts(body, forwarded, [lit(grep)])
    assert "twisted/internet/base.py" in new and "def callLater" in new
    assert len(forwarded) < len(body) - len(grep) / 2
    [event] = decisions(logs)
    assert (event["decision"], event["model"], event["path"]) == ("compressed", "gpt-4.1", PATH)
    assert [(b["kind"], b["content_type"], b["rewritten"]) for b in event["blocks"]] == [
        ("function_call_output", "search", True),
        ("user_text", "text", False),
    ]
    assert event["frozen_message_count"] is None


@pytest_twisted.ensureDeferred
async def test_reasoning_encrypted_content_and_unknown_items_untouched(live, upstream) -> None:
    grep = corpus("grep_calllater.txt")
    unknown = b'{"type":"widget_state","id":"ws_1","payload":' + lit(corpus("dpkg_packages_json.txt")) + b"}"
    computer = (
        b'{"type":"computer_call_output","call_id":"cc_1","output":{"type":"computer_screenshot",'
        b'"image_url":"data:image/png;base64,' + b"C" * 3000 + b'"}}'
    )
    body = body_of(user_message(), REASONING, unknown, computer, FUNCTION_CALL, function_output(grep))
    await post(live, PATH, body)
    forwarded = upstream.last.body
    replaced_texts(body, forwarded, [lit(grep)])
    for item in (REASONING, unknown, computer, FUNCTION_CALL):
        assert forwarded.count(item) == 1


@pytest_twisted.ensureDeferred
async def test_only_unknown_and_opaque_items_forward_byte_identical(live, upstream) -> None:
    unknown = b'{"type":"widget_state","payload":' + lit(corpus("dpkg_packages_json.txt")) + b"}"
    body = body_of(user_message(), REASONING, unknown)
    with capture_logs() as logs:
        await post(live, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("no_change", "below_threshold")


@pytest_twisted.ensureDeferred
async def test_string_input_passes_through(live, upstream) -> None:
    body = b'{"model":"gpt-4.1","input":' + lit(corpus("pytest_failures.txt")) + b"}"
    with capture_logs() as logs:
        await post(live, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert event["decision"] == "passthrough"


@pytest_twisted.ensureDeferred
async def test_responses_sdk_create_streamed_and_not(live, upstream) -> None:
    upstream.handler = answer(RESPONSE_OBJECT, sse_fixture("responses_text"))
    client = openai.OpenAI(api_key="sk-test-dummy", base_url=live.url + "/v1", max_retries=0)
    grep = corpus("grep_calllater.txt")
    items = [
        {"role": "user", "content": QUESTION},
        {"type": "function_call", "call_id": "call_1", "name": "grep", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": grep},
    ]
    response = await in_thread(lambda: client.responses.create(model="gpt-4.1", input=items))
    assert response.output_text == "callLater is at base.py:946."
    sent = json.loads(upstream.last.body)["input"][2]["output"]
    assert len(sent) < len(grep) / 2 and "def callLater" in sent

    def streamed() -> str:
        events = list(client.responses.create(model="gpt-4.1", input=items, stream=True))
        return events[-1].response.output_text

    with capture_logs() as logs:
        text = await in_thread(streamed)
    assert text == "Hi there — ünïcødé ✓"
    assert json.loads(upstream.last.body)["stream"] is True
    assert len(json.loads(upstream.last.body)["input"][2]["output"]) < len(grep) / 2
    [event] = decisions(logs)
    assert (event["decision"], event["blocks_rewritten"]) == ("compressed", 1)
