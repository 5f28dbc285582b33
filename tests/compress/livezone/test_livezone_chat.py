"""Chat Completions live zone: latest tool content and latest user text."""

from __future__ import annotations

import json

from livezone_fakes import assert_only_literals_changed, big, dumps, truncate

from headroom_twisted.compress.livezone.chat import find_live_zone
from headroom_twisted.compress.livezone.model import Block, LiveZone, Refusal
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.endpoints import Endpoint

TOOLS = [{"type": "function", "function": {"name": "grep", "description": big("d"), "parameters": {"type": "object"}}}]


def conversation():
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": big("system")},
            {"role": "user", "content": big("old question")},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": big("old output")},
            {"role": "user", "content": "which rows fail?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c2", "type": "function", "function": {"name": "grep", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "c2", "content": big("new output")},
        ],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "grep"}},
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_latest_tool_and_latest_user_only():
    zone = find_live_zone(conversation())
    assert zone == LiveZone(
        (
            Block(("messages", 6, "content"), "tool", big("new output")),
            Block(("messages", 4, "content"), "user_text", "which rows fail?"),
        ),
        "which rows fail?",
        "gpt-4o",
    )


def test_array_content_text_parts_only():
    document = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 200}},
                    {"type": "text", "text": "second"},
                ],
            },
            {"role": "tool", "content": [{"type": "text", "text": "out"}, {"type": "text", "text": 3}]},
        ]
    }
    zone = find_live_zone(document)
    assert isinstance(zone, LiveZone)
    assert [(b.path, b.kind) for b in zone.blocks] == [
        (("messages", 1, "content", 0, "text"), "tool"),
        (("messages", 0, "content", 0, "text"), "user_text"),
        (("messages", 0, "content", 2, "text"), "user_text"),
    ]
    assert zone.query == "first\nsecond"
    assert zone.model is None


def test_refusals():
    assert find_live_zone({"model": "m", "n": 2, "messages": []}) == Refusal("n_greater_than_one", "m")
    assert find_live_zone({"model": "m"}) == Refusal("no_messages", "m")
    assert find_live_zone({"messages": {"0": {}}}) == Refusal("no_messages", None)
    assert find_live_zone([1]) == Refusal("not_json_object", None)
    assert isinstance(find_live_zone({"n": 1, "messages": []}), LiveZone)


def test_n_greater_than_one_passthrough_is_the_same_object():
    body = dumps({**conversation(), "n": 3})
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", "n_greater_than_one")


def test_tools_tool_choice_and_stream_options_are_byte_identical():
    document = conversation()
    body = dumps(document, indent=2)
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.decision == "compressed" and outcome.blocks_rewritten == 1
    for key in ("tools", "tool_choice", "stream_options"):
        fragment = json.dumps({key: document[key]}, indent=2)[1:-1].strip().encode()
        assert body.count(fragment) == 1 and outcome.body.count(fragment) == 1
    rewritten = json.loads(outcome.body)
    document["messages"][6]["content"] = truncate(big("new output"), "", None).text
    assert rewritten == document


def test_image_part_untouched_and_prefix_suffix_identical():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "QUJD" * 100}}
    document = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [{"type": "text", "text": big("q")}, image]}],
    }
    body = dumps(document)
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.decision == "compressed"
    literal = json.dumps(big("q")).encode()
    start = body.index(literal)
    new_text = truncate(big("q"), "", None).text
    assert_only_literals_changed(body, outcome.body, [(start, start + len(literal))], [new_text])
    assert json.loads(outcome.body)["messages"][0]["content"][1] == image
