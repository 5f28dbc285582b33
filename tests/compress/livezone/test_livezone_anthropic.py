"""Anthropic Messages live zone: frozen prefix by cache_control, then the latest user turn."""

from __future__ import annotations

import json

from livezone_fakes import big, dumps, truncate

from headroom_twisted.compress.livezone.anthropic import find_live_zone
from headroom_twisted.compress.livezone.model import LiveZone, Refusal
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.endpoints import Endpoint

EPHEMERAL = {"type": "ephemeral"}
SIGNATURE = "EqQBCkYIARgCIkB" + "s1G/+=" * 20


def user(*blocks):
    return {"role": "user", "content": list(blocks)}


def text(value, **extra):
    return {"type": "text", "text": value, **extra}


def tool_result(tool_use_id, content, **extra):
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content, **extra}


def assistant_calls(*ids):
    return {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": big("thinking"), "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": "opaque" + SIGNATURE},
            *({"type": "tool_use", "id": i, "name": "bash", "input": {"command": big("cmd")}} for i in ids),
        ],
    }


def request(messages, **extra):
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": messages, **extra}


def zone_of(document) -> LiveZone:
    zone = find_live_zone(document)
    assert isinstance(zone, LiveZone)
    return zone


def test_cache_control_at_message_3_freezes_messages_0_to_3():
    messages = [
        user(text("q0")),
        assistant_calls("a"),
        user(tool_result("a", big("r2"))),
        {"role": "assistant", "content": [text("ok", cache_control=EPHEMERAL)]},
        user(text(big("question 4"))),
        assistant_calls("b"),
        user(tool_result("b", big("r6"))),
    ]
    zone = zone_of(request(messages))
    assert zone.frozen_message_count == 4
    assert [(b.path, b.kind) for b in zone.blocks] == [(("messages", 6, "content", 0, "content"), "tool_result")]
    assert zone.query == big("question 4")


def test_latest_user_inside_the_frozen_prefix_leaves_no_live_zone():
    messages = [user(text("q")), assistant_calls("a"), user(tool_result("a", big("r"), cache_control=EPHEMERAL))]
    zone = zone_of(request(messages))
    assert zone.blocks == () and zone.frozen_message_count == 3


def test_markers_in_system_and_tools_do_not_freeze_messages():
    document = request(
        [user(text(big("q")))],
        system=[{"type": "text", "text": big("sys"), "cache_control": EPHEMERAL}],
        tools=[
            {"name": "bash", "description": big("tool"), "input_schema": {"type": "object"}, "cache_control": EPHEMERAL}
        ],
    )
    zone = zone_of(document)
    assert zone.frozen_message_count == 0
    assert [b.path for b in zone.blocks] == [("messages", 0, "content", 0, "text")]
    outcome = compress_request(dumps(document), Endpoint.ANTHROPIC, truncate, mode="live_zone")
    rewritten = json.loads(outcome.body)
    assert rewritten["system"] == document["system"] and rewritten["tools"] == document["tools"]
    assert outcome.log_fields()["frozen_message_count"] == 0


def test_marker_inside_a_tool_result_freezes_its_message():
    nested = user(tool_result("a", [text("x", cache_control=EPHEMERAL)]))
    assert zone_of(request([user(text("q")), assistant_calls("a"), nested])).frozen_message_count == 3


def test_several_tool_results_and_text_blocks_are_separate_blocks():
    messages = [
        user(text("q")),
        assistant_calls("a", "b", "c"),
        user(
            tool_result("a", big("ra")),
            tool_result(
                "b",
                [text(big("rb0")), {"type": "image", "source": {"type": "base64", "data": "AAAA"}}, text(big("rb2"))],
            ),
            tool_result("c", big("rc"), is_error=True),
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "QUJD" * 50}},
            {"type": "document", "source": {"type": "text", "data": big("doc")}},
            {"type": "search_result", "source": "s", "title": "t", "content": [text(big("sr"))]},
            {"type": "some_future_block", "text": big("future")},
            text("and a question"),
        ),
    ]
    zone = zone_of(request(messages))
    assert [(b.path, b.kind) for b in zone.blocks] == [
        (("messages", 2, "content", 0, "content"), "tool_result"),
        (("messages", 2, "content", 1, "content", 0, "text"), "tool_result"),
        (("messages", 2, "content", 1, "content", 2, "text"), "tool_result"),
        (("messages", 2, "content", 2, "content"), "tool_result"),
        (("messages", 2, "content", 7, "text"), "user_text"),
    ]
    assert zone.query == "and a question"


def test_query_comes_from_the_latest_user_message_with_human_text():
    messages = [user(text("the question")), assistant_calls("a"), user(tool_result("a", big("r")))]
    assert zone_of(request(messages)).query == "the question"
    messages[0] = {"role": "user", "content": "plain string question"}
    assert zone_of(request(messages)).query == "plain string question"


def test_string_content_user_message():
    zone = zone_of(request([{"role": "user", "content": big("q")}]))
    assert [(b.path, b.kind) for b in zone.blocks] == [(("messages", 0, "content"), "user_text")]


def test_thinking_tool_use_and_signatures_byte_identical():
    messages = [user(text("q")), assistant_calls("a"), user(tool_result("a", big("r")))]
    document = request(messages, thinking={"type": "enabled", "budget_tokens": 2048})
    body = dumps(document)
    outcome = compress_request(body, Endpoint.ANTHROPIC, truncate, mode="live_zone")
    assert outcome.decision == "compressed" and outcome.blocks_rewritten == 1
    assistant_bytes = json.dumps(messages[1]).encode()
    assert assistant_bytes in body and assistant_bytes in outcome.body
    assert outcome.body.count(SIGNATURE.encode()) == body.count(SIGNATURE.encode()) == 2
    rewritten = json.loads(outcome.body)
    assert rewritten["messages"][1] == messages[1]


def test_claude_code_marks_the_newest_user_message_so_nothing_is_compressed():
    """Claude Code puts cache_control on the last block of the newest user turn.

    The whole conversation is then frozen and its large tool_result is
    forwarded as sent. This documents the rule as specified (issue 6); it
    is not a bug of the walker.
    """
    messages = [
        user(text("why does the build fail?")),
        assistant_calls("a"),
        user(tool_result("a", "ERROR line\n" * 5000, cache_control=EPHEMERAL)),
    ]
    body = dumps(request(messages, system=[{"type": "text", "text": "sys", "cache_control": EPHEMERAL}]))
    outcome = compress_request(body, Endpoint.ANTHROPIC, truncate, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("no_change", "no_live_zone")
    assert outcome.frozen_message_count == 3 and outcome.blocks_considered == 0


def test_refusals():
    assert find_live_zone({"model": "m"}) == Refusal("no_messages", "m")
    assert find_live_zone("x") == Refusal("not_json_object", None)
