"""Anthropic Messages through the real proxy: frozen prefix, block kinds, SDK (issue 6)."""

from __future__ import annotations

import json

import anthropic
import pytest_twisted
from e2e_support import (
    ANTHROPIC_MESSAGE,
    ERROR_IDS,
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
from tool_outputs import service_rows

PATH = "/v1/messages"
QUESTION = "Which tests failed and why?"
SYSTEM = b'[ {"type":"text","text":"You run builds \\u2713","cache_control":{"type":"ephemeral"}} ]'
TOOLS = (
    b'[{"name":"run","description":"Run a shell command","input_schema":{"type":"object",'
    b'"properties":{"cmd":{"type":"string"}},"required":["cmd"]},"cache_control":{"type":"ephemeral","ttl":"1h"}}]'
)
SIGNATURE = b"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds" + b"x" * 200 + b"=="
REDACTED = b"EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpP" + b"y" * 200
IMAGE = b'{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo' + b"B" * 3000 + b'"}}'


def body_of(*messages: bytes) -> bytes:
    return (
        b'{"model":"claude-sonnet-4-6", "max_tokens" : 1024, "temperature": 1.0, "x_vendor": 1e400,\n'
        b' "system": '
        + SYSTEM
        + b',\n "tools": '
        + TOOLS
        + b',\n "messages": [\n  '
        + b",\n  ".join(messages)
        + b"\n ] }"
    )


def user_text(text: str = QUESTION) -> bytes:
    return b'{"role":"user","content":' + lit(text) + b"}"


def assistant_tool_use(call: str, marker: bool = False) -> bytes:
    cache = b', "cache_control": {"type":"ephemeral"}' if marker else b""
    return (
        b'{"role":"assistant","content":[{"type":"tool_use","id":"toolu_' + call.encode() + b'","name":"run",'
        b'"input":{"cmd":"pytest -q","timeout":1.50E+2}' + cache + b"}]}"
    )


def tool_result(call: str, content: bytes, marker: bool = False) -> bytes:
    cache = b',"cache_control":{"type":"ephemeral"}' if marker else b""
    return b'{"type":"tool_result","tool_use_id":"toolu_' + call.encode() + b'","content":' + content + cache + b"}"


def user_blocks(*blocks: bytes) -> bytes:
    return b'{"role":"user","content":[' + b", ".join(blocks) + b"]}"


@pytest_twisted.ensureDeferred
async def test_cache_control_at_message_3_freezes_messages_0_to_3(live, upstream) -> None:
    old_log, new_log = corpus("trial_failures.txt"), corpus("pytest_failures.txt")
    body = body_of(
        user_text("Run the tests, then tell me " + QUESTION + " " + "context " * 200),
        assistant_tool_use("1"),
        user_blocks(tool_result("1", lit(old_log))),
        assistant_tool_use("2", marker=True),
        user_blocks(tool_result("2", lit(new_log))),
    )
    with capture_logs() as logs:
        await post(live, PATH, body)
    [new] = replaced_texts(body, upstream.last.body, [lit(new_log)])
    assert len(new) < len(new_log) / 2 and "test_quote_space" in new
    [event] = decisions(logs)
    assert (event["decision"], event["frozen_message_count"], event["blocks_considered"]) == ("compressed", 4, 1)


@pytest_twisted.ensureDeferred
async def test_marker_on_the_newest_user_message_freezes_everything(live, upstream) -> None:
    """Claude Code's shape: the newest user message carries cache_control, so nothing is compressed."""
    body = body_of(
        user_text(),
        assistant_tool_use("1"),
        user_blocks(tool_result("1", lit(corpus("pytest_failures.txt")), marker=True)),
    )
    with capture_logs() as logs:
        await post(live, PATH, body)
    assert sha256(upstream.last.body) == sha256(body)
    [event] = decisions(logs)
    assert (event["decision"], event["reason"], event["frozen_message_count"]) == ("no_change", "no_live_zone", 3)


@pytest_twisted.ensureDeferred
async def test_markers_in_system_and_tools_do_not_freeze_messages(live, upstream) -> None:
    log = corpus("pytest_failures.txt")
    body = body_of(user_text(), assistant_tool_use("1"), user_blocks(tool_result("1", lit(log))))
    with capture_logs() as logs:
        await post(live, PATH, body)
    forwarded = upstream.last.body
    replaced_texts(body, forwarded, [lit(log)])
    assert forwarded.count(SYSTEM) == 1 and forwarded.count(TOOLS) == 1
    [event] = decisions(logs)
    assert (event["decision"], event["frozen_message_count"]) == ("compressed", 0)


@pytest_twisted.ensureDeferred
async def test_thinking_and_redacted_thinking_signatures_untouched(live, upstream) -> None:
    log = corpus("pytest_failures.txt")
    assistant = (
        b'{"role":"assistant","content":[{"type":"thinking","thinking":'
        + lit("Let me run pytest. " * 60)
        + b',"signature":"'
        + SIGNATURE
        + b'"}, {"type":"redacted_thinking","data":"'
        + REDACTED
        + b'"}, '
        b'{"type":"tool_use","id":"toolu_1","name":"run","input":{"cmd":"pytest"}}]}'
    )
    body = body_of(user_text(), assistant, user_blocks(tool_result("1", lit(log))))
    await post(live, PATH, body)
    forwarded = upstream.last.body
    replaced_texts(body, forwarded, [lit(log)])
    assert forwarded.count(assistant) == 1
    assert forwarded.count(SIGNATURE) == 1 and forwarded.count(REDACTED) == 1


@pytest_twisted.ensureDeferred
async def test_several_tool_results_are_separate_blocks(live, upstream) -> None:
    log, grep, rows = corpus("pytest_failures.txt"), corpus("grep_calllater.txt"), service_rows(1500)
    body = body_of(
        user_text(),
        assistant_tool_use("1"),
        user_blocks(
            tool_result("1", lit(log)),
            tool_result("2", lit(grep)),
            tool_result("3", lit(rows)),
            b'{"type":"text","text":' + lit(QUESTION) + b"}",
        ),
    )
    with capture_logs() as logs:
        await post(live, PATH, body)
    new_log, new_grep, new_rows = replaced_texts(body, upstream.last.body, [lit(log), lit(grep), lit(rows)])
    assert "test_json_roundtrip" in new_log and len(new_log) < len(log) / 2
    assert "twisted/internet/base.py" in new_grep and len(new_grep) < len(grep) / 2
    assert all(f"db-{row_id}" in new_rows for row_id in ERROR_IDS)
    [event] = decisions(logs)
    assert (event["blocks_considered"], event["blocks_rewritten"]) == (4, 3)
    assert [block["content_type"] for block in event["blocks"]] == ["log", "search", "json", "text"]
    assert [block["kind"] for block in event["blocks"]] == ["tool_result"] * 3 + ["user_text"]


@pytest_twisted.ensureDeferred
async def test_tool_result_with_text_blocks_and_image(live, upstream) -> None:
    log, rows = corpus("pytest_failures.txt"), service_rows(1500)
    content = b'[{"type":"text","text":' + lit(log) + b"}, " + IMAGE + b', {"type":"text","text":' + lit(rows) + b"}]"
    body = body_of(user_text(), assistant_tool_use("1"), user_blocks(tool_result("1", content), IMAGE))
    with capture_logs() as logs:
        await post(live, PATH, body)
    forwarded = upstream.last.body
    new_log, new_rows = replaced_texts(body, forwarded, [lit(log), lit(rows)])
    assert len(new_log) < len(log) and len(new_rows) < len(rows)
    assert forwarded.count(IMAGE) == 2
    [event] = decisions(logs)
    assert [block["path"] for block in event["blocks"]] == [
        "messages[2].content[0].content[0].text",
        "messages[2].content[0].content[2].text",
    ]


@pytest_twisted.ensureDeferred
async def test_anthropic_sdk_create_and_stream(live, upstream) -> None:
    upstream.handler = answer(ANTHROPIC_MESSAGE, sse_fixture("anthropic_text"))
    client = anthropic.Anthropic(api_key="sk-ant-dummy", base_url=live.url, max_retries=0)
    log = corpus("pytest_failures.txt")
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "run", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": log}]},
    ]
    message = await in_thread(
        lambda: client.messages.create(model="claude-sonnet-4-6", max_tokens=256, messages=messages)
    )
    assert message.content[0].text == "Two tests failed."
    sent = json.loads(upstream.last.body)["messages"][2]["content"][0]["content"]
    assert len(sent) < len(log) / 2 and "test_quote_space" in sent

    def streamed() -> str:
        with client.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=messages) as stream:
            return stream.get_final_text()

    with capture_logs() as logs:
        text = await in_thread(streamed)
    assert text == "Bonjour, ça va ? 👋"
    assert json.loads(upstream.last.body)["stream"] is True
    assert len(upstream.last.body) < len(log) / 2
    [event] = decisions(logs)
    assert event["path"] == PATH and event["model"] == "claude-sonnet-4-6"
    assert (event["decision"], event["frozen_message_count"], event["blocks_rewritten"]) == ("compressed", 0, 1)
    assert {"request_id", "reason", "blocks_considered", "duration_ms", "blocks"} <= event.keys()
