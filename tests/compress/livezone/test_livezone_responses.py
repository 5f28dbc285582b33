"""Responses live zone: latest tool output item and latest user message text."""

from __future__ import annotations

import json

from livezone_fakes import big, dumps, truncate

from headroom_twisted.compress.livezone.model import LiveZone, Refusal
from headroom_twisted.compress.livezone.responses import find_live_zone
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.endpoints import Endpoint

REASONING = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAB" + "x" * 300}
CALL = {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": json.dumps({"cmd": big("args")})}


def zone_of(document) -> LiveZone:
    zone = find_live_zone(document)
    assert isinstance(zone, LiveZone)
    return zone


def items():
    return [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "old question"}]},
        {"type": "function_call_output", "call_id": "c0", "output": big("old output")},
        {"role": "user", "content": "what failed?"},
        REASONING,
        CALL,
        {"type": "function_call_output", "call_id": "c1", "output": big("new output")},
        {"type": "compaction", "encrypted_content": "opaque"},
        {"type": "mcp_call", "id": "m", "output": big("mcp")},
        {"type": "image_generation_call", "id": "ig", "result": "QUJD" * 100},
        {
            "type": "computer_call_output",
            "call_id": "cc",
            "output": {"type": "computer_screenshot", "image_url": "data:"},
        },
        {"type": "future_item_output", "payload": big("future")},
        {"type": "brand_new_item", "text": big("unknown")},
    ]


def test_latest_function_call_output_and_latest_user_text():
    zone = zone_of({"model": "gpt-5", "input": items(), "previous_response_id": "resp_1"})
    assert [(b.path, b.kind) for b in zone.blocks] == [
        (("input", 5, "output"), "function_call_output"),
        (("input", 2, "content"), "user_text"),
    ]
    assert zone.query == "what failed?"
    assert zone.model == "gpt-5"


def test_other_output_items_with_string_output_count():
    document = {
        "input": [{"type": "function_call_output", "output": "a"}, {"type": "local_shell_call_output", "output": "b"}]
    }
    assert [(b.path, b.kind) for b in zone_of(document).blocks] == [(("input", 1, "output"), "local_shell_call_output")]


def test_function_call_output_list_keeps_images():
    output = [
        {"type": "input_text", "text": big("t")},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
    ]
    document = {"input": [{"type": "function_call_output", "call_id": "c", "output": output}]}
    assert [b.path for b in zone_of(document).blocks] == [("input", 0, "output", 0, "text")]


def test_user_message_input_text_parts():
    content = [
        {"type": "input_text", "text": "a"},
        {"type": "input_image", "image_url": "x"},
        {"type": "input_text", "text": "b"},
    ]
    zone = zone_of({"input": [{"type": "message", "role": "user", "content": content}]})
    assert [b.path for b in zone.blocks] == [("input", 0, "content", 0, "text"), ("input", 0, "content", 2, "text")]
    assert zone.query == "a\nb"


def test_reasoning_calls_and_unknown_items_byte_identical():
    document = {
        "model": "gpt-5",
        "input": items(),
        "reasoning": {"effort": "high"},
        "include": ["reasoning.encrypted_content"],
    }
    body = dumps(document)
    outcome = compress_request(body, Endpoint.RESPONSES, truncate, mode="live_zone")
    assert outcome.decision == "compressed" and outcome.blocks_rewritten == 1
    for untouched in (REASONING, CALL, *items()[6:]):
        fragment = json.dumps(untouched).encode()
        assert fragment in outcome.body
    rewritten = json.loads(outcome.body)
    document["input"][5]["output"] = truncate(big("new output"), "", None).text
    assert rewritten == document


def test_refusals():
    assert find_live_zone({"model": "m", "input": "just a question"}) == Refusal("no_input_items", "m")
    assert find_live_zone({"previous_response_id": "r"}) == Refusal("no_input_items", None)
    assert find_live_zone(None) == Refusal("not_json_object", None)
