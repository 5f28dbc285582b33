"""Chat Completions through the real proxy: compression end to end, in both modes where both apply.

A fake upstream on loopback records the exact bytes it receives; the proxy
runs the production compression stage (real detectors, compressors and
tokenizers) on its thread pool.
"""

from __future__ import annotations

import gzip
import json

import openai
import pytest
import pytest_twisted
from e2e_support import (
    CHAT_COMPLETION,
    ERROR_IDS,
    JSON,
    answer,
    decisions,
    diff_without_context,
    in_thread,
    lit,
    post,
    replaced_texts,
    sha256,
    sse_fixture,
)
from structlog.testing import capture_logs
from tool_outputs import service_rows

PATH = "/v1/chat/completions"
QUESTION = "Which services failed, and why?"
TOOLS = (
    b'[ {"type":"function", "function":{"name":"lookup","description":"Look up caf\\u00e9 services",'
    b'"strict" : true,"parameters":{"type":"object","properties":{"q":{"type":"string","maxLength":1.0e2}},'
    b'"required":["q"],"additionalProperties":false}}} ]'
)


def chat_body(
    tool_text: str, user_text: str = QUESTION, *, tool_choice: bytes = b'"auto"', extra: bytes = b""
) -> bytes:
    """A chat request with exotic formatting everywhere outside the two live-zone literals."""
    return (
        b'{ "model" : "gpt-4o",\n  "temperature":1.0, "seed": -0, "x_vendor": {"big": 1e400, "dup":1, "dup":2},\n'
        b' "messages": [\n  {"role":"system","content":"You are terse \\u2713 \\/"},\n'
        b'  {"role":"tool","tool_call_id":"call_0","content":"an older tool output stays frozen"},\n'
        b'  {"role":"user","content":' + lit(user_text) + b"},\n"
        b'  {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",'
        b'"function":{"name":"lookup","arguments":"{\\"q\\":\\"all\\"}"}}]},\n'
        b'  {"role":"tool","tool_call_id":"call_1","content":' + lit(tool_text) + b"}\n ],\n"
        b' "tools": ' + TOOLS + b', "tool_choice": ' + tool_choice + extra + b" }"
    )


@pytest_twisted.ensureDeferred
async def test_passthrough_no_compression_byte_equal(either_mode, upstream) -> None:
    body = chat_body('{"status": "ok", "rows": 3}')
    with capture_logs() as logs:
        await post(either_mode, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    assert upstream.last.header(b"content-length") == [str(len(body)).encode()]
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("no_change", "below_threshold")


@pytest_twisted.ensureDeferred
async def test_tool_message_compressed(either_mode, upstream) -> None:
    rows = service_rows(1500)
    body = chat_body(rows)
    with capture_logs() as logs:
        await post(either_mode, PATH, body)
    forwarded = upstream.last.body
    assert len(forwarded) <= 0.6 * len(body), (len(forwarded), len(body))
    assert upstream.last.header(b"content-length") == [str(len(forwarded)).encode()]
    [new_tool_text] = replaced_texts(body, forwarded, [lit(rows)])
    for row_id in ERROR_IDS:
        assert f"timeout contacting db-{row_id}" in new_tool_text
    assert "omitted" in new_tool_text
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("compressed", "blocks_rewritten")
    assert json.loads(forwarded)["messages"][1]["content"] == "an older tool output stays frozen"


@pytest_twisted.ensureDeferred
async def test_n_greater_than_one_passthrough(either_mode, upstream) -> None:
    body = chat_body(service_rows(1500), extra=b', "n" : 2')
    with capture_logs() as logs:
        await post(either_mode, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"], event["model"]) == ("passthrough", "n_greater_than_one", "gpt-4o")


@pytest_twisted.ensureDeferred
async def test_stream_options_include_usage_preserved(either_mode, upstream) -> None:
    stream = sse_fixture("openai_chat_text")
    upstream.handler = answer(CHAT_COMPLETION, stream)
    stream_options = b', "stream" :true, "stream_options":{ "include_usage" : true }'
    rows = service_rows(1500)
    body = chat_body(rows, extra=stream_options)
    received = await post(either_mode, PATH, body)
    forwarded = upstream.last.body
    replaced_texts(body, forwarded, [lit(rows)])
    assert forwarded.endswith(stream_options + b" }")
    assert json.loads(forwarded)["stream_options"] == {"include_usage": True}
    assert sha256(received) == sha256(stream)
    assert b'"usage":{"prompt_tokens":1117' in received


@pytest.mark.parametrize(
    "tool_choice",
    [b'"auto"', b'"none"', b'"required"', b'{"type" : "function", "function": {"name":"lookup"}}'],
)
@pytest_twisted.ensureDeferred
async def test_tool_choice_change_passthrough_no_mutation(either_mode, upstream, tool_choice: bytes) -> None:
    rows = service_rows(300)
    body = chat_body(rows, tool_choice=tool_choice)
    await post(either_mode, PATH, body)
    forwarded = upstream.last.body
    assert len(forwarded) < len(body)
    replaced_texts(body, forwarded, [lit(rows)])
    tail = b' "tools": ' + TOOLS + b', "tool_choice": ' + tool_choice + b" }"
    assert sha256(forwarded[-len(tail) :]) == sha256(tail)
    assert forwarded.count(TOOLS) == 1


@pytest_twisted.ensureDeferred
async def test_mode_off_forwards_byte_identical(make_proxy, upstream) -> None:
    proxy = make_proxy(production=True, compression="off")
    body = chat_body(service_rows(1500))
    with capture_logs() as logs:
        await post(proxy, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("passthrough", "mode_off")


BIG = chat_body(service_rows(1500))
PASSTHROUGHS = {
    "text_plain": (BIG, {b"content-type": [b"text/plain"]}, "not_json"),
    "broken_json": (BIG[:-3], JSON, "not_json"),
    "json_array": (b"[" + BIG + b"]", JSON, "not_json_object"),
    "no_messages": (BIG.replace(b'"messages"', b'"messagez"'), JSON, "no_messages"),
    "gzip": (gzip.compress(BIG), {**JSON, b"content-encoding": [b"gzip"]}, "content_encoded"),
}


@pytest.mark.parametrize("case", sorted(PASSTHROUGHS))
@pytest_twisted.ensureDeferred
async def test_passthrough_reasons_byte_identical(either_mode, upstream, case: str) -> None:
    body, headers, reason = PASSTHROUGHS[case]
    with capture_logs() as logs:
        await post(either_mode, PATH, body, headers)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("passthrough", reason)


@pytest_twisted.ensureDeferred
async def test_body_over_the_compression_limit_passes_through(make_proxy, upstream) -> None:
    proxy = make_proxy(production=True, compression_max_body_bytes="64KiB")
    body = chat_body(service_rows(1500))
    with capture_logs() as logs:
        await post(proxy, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("passthrough", "too_large")


@pytest_twisted.ensureDeferred
async def test_array_content_image_part_untouched(either_mode, upstream) -> None:
    rows = service_rows(1500)
    image = (
        b'{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo'
        + b"A" * 4000
        + b'=","detail":"low"}}'
    )
    tool_content = b'[ {"type":"text","text":' + lit(rows) + b"}, " + image + b" ]"
    body = chat_body("placeholder").replace(lit("placeholder"), tool_content)
    await post(either_mode, PATH, body)
    forwarded = upstream.last.body
    [new_text] = replaced_texts(body, forwarded, [lit(rows)])
    assert len(new_text) < len(rows) / 2
    assert forwarded.count(image) == 1


@pytest_twisted.ensureDeferred
async def test_token_gate_rejects_one_block_and_keeps_another(live, upstream) -> None:
    rows = service_rows(1500)
    user_text = diff_without_context()
    body = chat_body(rows, user_text=user_text)
    with capture_logs() as logs:
        await post(live, PATH, body)
    forwarded = upstream.last.body
    new_user, new_tool = replaced_texts(body, forwarded, [lit(user_text), lit(rows)])
    assert new_user == user_text
    assert len(new_tool) < len(rows) / 2
    [event] = decisions(logs)
    assert (event["decision"], event["blocks_considered"], event["blocks_rewritten"]) == ("compressed", 2, 1)
    by_kind = {block["kind"]: block for block in event["blocks"]}
    assert by_kind["user_text"]["reason"] == "rejected_not_smaller" and not by_kind["user_text"]["rewritten"]
    assert by_kind["user_text"]["tokens_before"] == by_kind["user_text"]["tokens_after"]
    assert by_kind["tool"]["rewritten"] and by_kind["tool"]["strategy"] == "json_rows"


def raising(text: str, query: str, model: str | None):
    raise RuntimeError("compressor bug")


@pytest_twisted.ensureDeferred
async def test_compressor_that_raises_forwards_original_bytes(proxy_with, upstream) -> None:
    proxy = proxy_with(raising)
    body = chat_body(service_rows(1500), user_text="x" * 2000)
    with capture_logs() as logs:
        await post(proxy, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"]) == ("no_change", "compressor_error")
    assert [block["reason"] for block in event["blocks"]] == ["compressor_error", "compressor_error"]


@pytest_twisted.ensureDeferred
async def test_compression_decision_fields(live, upstream) -> None:
    rows = service_rows(1500)
    body = chat_body(rows)
    headers = {**JSON, b"x-request-id": [b"req-e2e-fields"]}
    with capture_logs() as logs:
        await post(live, PATH, body, headers)
        await post(live, PATH, body, {**headers, b"content-type": [b"text/plain"]})
    compressed, refused = decisions(logs)
    assert compressed["request_id"] == refused["request_id"] == "req-e2e-fields"
    assert compressed["path"] == refused["path"] == PATH
    assert compressed["model"] == "gpt-4o"
    assert (compressed["decision"], compressed["reason"]) == ("compressed", "blocks_rewritten")
    assert (refused["decision"], refused["reason"]) == ("passthrough", "not_json")
    assert compressed["blocks_considered"] == 2 and compressed["blocks_rewritten"] == 1
    assert compressed["bytes_before"] == len(body) == refused["bytes_before"]
    assert compressed["bytes_after"] == len(upstream.requests[0].body)
    assert compressed["tokens_after"] < compressed["tokens_before"]
    assert compressed["duration_ms"] > 0
    tool, user = compressed["blocks"]
    assert tool == {
        **tool,
        "path": "messages[4].content",
        "kind": "tool",
        "content_type": "json",
        "strategy": "json_rows",
        "reason": "compressed",
        "rewritten": True,
        "bytes_before": len(lit(rows)),
    }
    assert tool["bytes_after"] < tool["bytes_before"] and tool["tokens_after"] < tool["tokens_before"]
    assert (user["kind"], user["reason"], user["rewritten"]) == ("user_text", "below_threshold", False)
    assert all(isinstance(block["ms"], float) for block in (tool, user))


@pytest_twisted.ensureDeferred
async def test_openai_sdk_big_tool_output_compressed(either_mode, upstream) -> None:
    upstream.handler = answer(CHAT_COMPLETION, sse_fixture("openai_chat_text"))
    client = openai.OpenAI(api_key="sk-test-dummy", base_url=either_mode.url + "/v1", max_retries=0)
    rows = service_rows(1500)
    messages = [
        {"role": "user", "content": QUESTION},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": rows},
    ]
    completion = await in_thread(lambda: client.chat.completions.create(model="gpt-4o", messages=messages))
    assert completion.choices[0].message.content == "db-7 and db-257 timed out."
    sent = json.loads(upstream.last.body)
    assert len(upstream.last.body) < len(rows) / 2
    assert all(f"db-{row_id}" in sent["messages"][2]["content"] for row_id in ERROR_IDS)

    def streamed() -> tuple[str, int]:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[-1].usage.prompt_tokens

    text, prompt_tokens = await in_thread(streamed)
    assert text.startswith("Héllo") and prompt_tokens == 1117
    assert json.loads(upstream.last.body)["stream_options"] == {"include_usage": True}
    assert len(upstream.last.body) < len(rows) / 2
