"""The request pipeline: fail open, per-block isolation, decisions and log fields."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from livezone_fakes import (
    MARK,
    Recorder,
    assert_only_literals_changed,
    big,
    dumps,
    explode,
    identity,
    reject_when,
    truncate,
)

from headroom_twisted.compress import plan
from headroom_twisted.compress.blocks.tokens import counter_for
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.endpoints import Endpoint


def chat(*messages, **extra) -> bytes:
    return dumps({"model": "gpt-4o", "messages": list(messages), **extra})


def tool(content):
    return {"role": "tool", "tool_call_id": "c", "content": content}


def user(content):
    return {"role": "user", "content": content}


def literal_span(body: bytes, text: str) -> tuple[int, int]:
    literal = json.dumps(text).encode()
    start = body.index(literal)
    return start, start + len(literal)


def test_compressed_body_differs_only_inside_the_literals():
    body = chat(user(big("question")), tool(big("output")), temperature=1e400, top_p=1.0, seed=0)
    body = body.replace(b"Infinity", b"1e400").replace(b'"seed": 0', b'"seed": -0')
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert (outcome.decision, outcome.reason) == ("compressed", "blocks_rewritten")
    assert outcome.blocks_considered == outcome.blocks_rewritten == 2
    spans = [literal_span(body, big("question")), literal_span(body, big("output"))]
    new_texts = [truncate(big(label), "", None).text for label in ("question", "output")]
    assert_only_literals_changed(body, outcome.body, spans, new_texts)
    assert b"1e400" in outcome.body and b"1.0" in outcome.body and b"-0" in outcome.body


def test_query_and_the_models_encoding_reach_the_compressor():
    recorder = Recorder()
    compress_request(chat(user("what failed?"), tool(big("output"))), Endpoint.CHAT, recorder, mode="live_zone")
    encoding = counter_for("gpt-4o").encoding_name
    assert recorder.calls == [(big("output"), "what failed?", encoding), ("what failed?", "what failed?", encoding)]


def test_compressor_that_raises_keeps_every_block_and_the_body_object():
    body = chat(user(big("q")), tool(big("t")))
    outcome = compress_request(body, Endpoint.CHAT, explode, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("no_change", "compressor_error")
    assert [block.rewrite.reason for block in outcome.blocks] == ["compressor_error", "compressor_error"]
    assert outcome.blocks_considered == 2 and outcome.blocks_rewritten == 0


def test_one_block_rejected_while_another_is_kept():
    body = chat(user(big("keep me whole")), tool(big("tool output")))
    outcome = compress_request(body, Endpoint.CHAT, reject_when("keep me whole"), mode="live_zone")
    assert outcome.decision == "compressed" and outcome.blocks_rewritten == 1
    by_kind = {block.kind: block for block in outcome.blocks}
    assert by_kind["user_text"].rewrite.reason == "rejected_not_smaller" and not by_kind["user_text"].rewritten
    assert by_kind["tool"].rewrite.reason == "compressed" and by_kind["tool"].rewritten
    document = json.loads(outcome.body)
    assert document["messages"][0]["content"] == big("keep me whole")
    assert document["messages"][1]["content"].endswith(MARK)


def test_one_block_raising_while_another_is_kept():
    def flaky(text, query, model, call):
        if "boom" in text:
            raise ValueError("boom")
        return truncate(text, query, model)

    outcome = compress_request(chat(user(big("boom")), tool(big("fine"))), Endpoint.CHAT, flaky, mode="live_zone")
    assert outcome.decision == "compressed"
    assert sorted(block.rewrite.reason for block in outcome.blocks) == ["compressed", "compressor_error"]


@pytest.mark.parametrize(
    ("compressor", "reason"),
    [(identity, "rejected_not_smaller"), (truncate, "below_threshold")],
)
def test_no_change_reasons(compressor, reason):
    body = chat(user("short"), tool("short too" if compressor is truncate else big("t")))
    outcome = compress_request(body, Endpoint.CHAT, compressor, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("no_change", reason)


def test_no_change_reason_prefers_the_most_telling_block_reason():
    outcome = compress_request(chat(user("short"), tool(big("t"))), Endpoint.CHAT, reject_when("t:"), mode="live_zone")
    assert [block.rewrite.reason for block in outcome.blocks] == ["rejected_not_smaller", "below_threshold"]
    assert outcome.reason == "rejected_not_smaller"


@dataclass(frozen=True)
class Odd:
    text: object
    changed: bool = True
    content_type: str = "text"
    strategy: str = "odd"
    reason: str = "compressed"
    tokens_before: int | None = 10
    tokens_after: int | None = 1


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (Odd(text=42), "compressor_error"),
        (Odd(text=None), "compressor_error"),
        (object(), "compressor_error"),
        (Odd(text="bad \ud800 surrogate"), "unencodable_replacement"),
    ],
)
def test_unusable_compressor_results_leave_the_block_alone(result, reason):
    body = chat(tool(big("t")))
    outcome = compress_request(body, Endpoint.CHAT, lambda text, query, model, call: result, mode="live_zone")
    assert outcome.body is body
    assert [block.rewrite.reason for block in outcome.blocks] == [reason]


def test_lone_surrogate_block_is_skipped_and_other_blocks_still_compress():
    body = chat(user(big("q")), tool(big("t") + "\ud800"))
    assert b"\\ud800" in body
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.decision == "compressed"
    by_kind = {block.kind: block.rewrite.reason for block in outcome.blocks}
    assert by_kind == {"tool": "unencodable_text", "user_text": "compressed"}
    assert outcome.body.count(b"\\ud800") == 1
    assert json.loads(outcome.body)["messages"][1]["content"] == big("t") + "\ud800"


def test_lone_surrogate_elsewhere_does_not_stop_compression():
    body = chat({"role": "assistant", "content": "\udfff"}, tool(big("t")))
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.decision == "compressed" and b'"\\udfff"' in outcome.body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
        (b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "too_deep"),
        (b'{"messages": [{"role": "tool", "content": "\xc3\x28"}]}', "not_json"),
        (b"model=gpt-4o&messages=[]", "not_json"),
        (
            b'{"messages": [{"role": "tool", "content": "a"}], "messages": [{"role": "tool", "content": "a"}]}',
            "spans_not_found",
        ),
        (b'{"messages": {}}', "no_messages"),
        (b"[]", "not_json_object"),
    ],
)
def test_passthrough_returns_the_same_object(body, reason):
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", reason)
    assert outcome.body_bytes_before == outcome.body_bytes_after == len(body)


def test_bom_and_surrounding_whitespace_are_kept():
    inner = chat(tool(big("t")))
    body = b"\xef\xbb\xbf \r\n" + inner + b"\n\t "
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.decision == "compressed"
    assert outcome.body.startswith(b"\xef\xbb\xbf \r\n{") and outcome.body.endswith(b"}\n\t ")


def test_unexpected_exception_is_internal_error(monkeypatch):
    def broken_walker(document):
        raise KeyError("walker bug")

    monkeypatch.setitem(plan.WALKERS["live_zone"], Endpoint.CHAT, broken_walker)
    body = chat(tool(big("t")))
    outcome = compress_request(body, Endpoint.CHAT, truncate, mode="live_zone")
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", "internal_error")


def test_log_fields_are_flat_and_complete():
    outcome = compress_request(chat(user("why?"), tool(big("t"))), Endpoint.CHAT, truncate, mode="live_zone")
    fields = outcome.log_fields()
    assert {k: fields[k] for k in ("decision", "reason", "model", "blocks_considered", "blocks_rewritten")} == {
        "decision": "compressed",
        "reason": "blocks_rewritten",
        "model": "gpt-4o",
        "blocks_considered": 2,
        "blocks_rewritten": 1,
    }
    assert fields["frozen_message_count"] is None
    assert fields["bytes_before"] > fields["bytes_after"] == len(outcome.body)
    assert fields["tokens_before"] > fields["tokens_after"]
    assert fields["duration_ms"] >= 0
    assert fields["blocks"][0] == {
        "path": "messages[1].content",
        "kind": "tool",
        "content_type": "text",
        "strategy": "truncate",
        "reason": "compressed",
        "rewritten": True,
        "bytes_before": len(json.dumps(big("t")).encode()),
        "bytes_after": len(json.dumps(truncate(big("t"), "", None).text, ensure_ascii=False).encode()),
        "tokens_before": len(big("t")) // 4,
        "tokens_after": len(truncate(big("t"), "", None).text) // 4,
        "ms": fields["blocks"][0]["ms"],
    }
    json.dumps(fields)


def test_anthropic_outcome_reports_frozen_message_count():
    body = dumps(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": big("q"), "cache_control": {"type": "ephemeral"}}],
                }
            ]
        }
    )
    assert (
        compress_request(body, Endpoint.ANTHROPIC, truncate, mode="live_zone").log_fields()["frozen_message_count"] == 1
    )


def test_lone_surrogate_in_the_query_is_replaced_for_the_compressor():
    recorder = Recorder()
    compress_request(chat(user("why \ud800?"), tool(big("t"))), Endpoint.CHAT, recorder, mode="live_zone")
    assert recorder.calls[0][1] == "why \ufffd?"
