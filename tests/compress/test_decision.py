"""The decision records: `compression_decision` keeps the fields (names, values, order) it had as a dict."""

from __future__ import annotations

from headroom_twisted.compress.blocks.result import BlockResult
from headroom_twisted.compress.decision import BlockDecision, BlockSource, CompressionDecision
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.compress.rewrite import Rewrite, RewriteReason
from headroom_twisted.compress.spans import JsonPath
from headroom_twisted.compress.version import COMPRESSOR_VERSION
from headroom_twisted.endpoints import Endpoint


def block(
    path: JsonPath,
    source: BlockSource,
    literal: bytes | None,
    reason: RewriteReason,
    tokens: tuple[int | None, int | None],
    literal_bytes: int,
) -> BlockDecision:
    strategy = "none" if literal is None else "log_lines"
    rewrite = Rewrite(literal, "log", strategy, reason, tokens[0], tokens[1], 2.34567)
    return BlockDecision(path, "tool", source, rewrite, literal_bytes)


FRESH = block(("messages", 1, "content"), "compressed", b'"short"', "compressed", (1200, 40), 5000)
FRESH_KEPT = block(("messages", 3, "content", 0, "text"), "compressed", None, "below_threshold", (None, None), 300)
REMEMBERED = block(("messages", 5, "content"), "memo", b'"tiny"', "compressed", (900, 100), 4000)


def pipeline_decision(*blocks: BlockDecision) -> CompressionDecision:
    rewritten = any(b.rewritten for b in blocks)
    return CompressionDecision(
        body=b"{}",
        decision="compressed" if rewritten else "no_change",
        reason="blocks_rewritten" if rewritten else "below_threshold",
        body_bytes_before=20_000,
        body_bytes_after=9_000,
        mode="stable",
        model="gpt-4o",
        blocks=blocks,
        frozen_message_count=None,
        duration_ms=12.34567,
    )


def assert_same_event(fields: dict, expected: dict) -> None:
    """Equal, and in the same order: the JSON log line reads the same."""
    assert list(fields.items()) == list(expected.items())


def test_compressed_with_a_remembered_block() -> None:
    assert_same_event(
        pipeline_decision(FRESH, FRESH_KEPT, REMEMBERED).log_fields(),
        {
            "mode": "stable",
            "decision": "compressed",
            "reason": "blocks_rewritten",
            "model": "gpt-4o",
            "compressor_version": COMPRESSOR_VERSION,
            "blocks_considered": 3,
            "blocks_rewritten": 2,
            "blocks_from_memo": 1,
            "blocks_compressed": 2,
            "frozen_message_count": None,
            "bytes_before": 20_000,
            "bytes_after": 9_000,
            "tokens_before": 2_100,
            "tokens_after": 140,
            "tokens_saved_memo": 800,
            "duration_ms": 12.346,
            "blocks": [
                {
                    "path": "messages[1].content",
                    "kind": "tool",
                    "content_type": "log",
                    "strategy": "log_lines",
                    "reason": "compressed",
                    "rewritten": True,
                    "bytes_before": 5000,
                    "bytes_after": 7,
                    "tokens_before": 1200,
                    "tokens_after": 40,
                    "ms": 2.346,
                },
                {
                    "path": "messages[3].content[0].text",
                    "kind": "tool",
                    "content_type": "log",
                    "strategy": "none",
                    "reason": "below_threshold",
                    "rewritten": False,
                    "bytes_before": 300,
                    "bytes_after": 300,
                    "tokens_before": None,
                    "tokens_after": None,
                    "ms": 2.346,
                },
            ],
        },
    )


def test_every_block_remembered_lists_none() -> None:
    fields = pipeline_decision(REMEMBERED).log_fields()
    assert (fields["blocks_considered"], fields["blocks_from_memo"], fields["blocks_compressed"]) == (1, 1, 0)
    assert (fields["tokens_before"], fields["tokens_after"], fields["tokens_saved_memo"]) == (900, 100, 800)
    assert fields["blocks"] == []


def never_called(text: str, query: str, encoding: str, call: object = None) -> BlockResult:
    raise AssertionError("a body that is not JSON has no block to compress")


def test_passthrough_from_the_pipeline() -> None:
    body = b"not json at all"
    fields = compress_request(body, Endpoint.CHAT, never_called, mode="live_zone").log_fields()
    assert_same_event(
        fields,
        {
            "mode": "live_zone",
            "decision": "passthrough",
            "reason": "not_json",
            "model": None,
            "compressor_version": COMPRESSOR_VERSION,
            "blocks_considered": 0,
            "blocks_rewritten": 0,
            "blocks_from_memo": 0,
            "blocks_compressed": 0,
            "frozen_message_count": None,
            "bytes_before": len(body),
            "bytes_after": len(body),
            "tokens_before": None,
            "tokens_after": None,
            "tokens_saved_memo": 0,
            "duration_ms": fields["duration_ms"],
            "blocks": [],
        },
    )


def test_decisions_the_stage_makes_without_the_pipeline() -> None:
    refused = CompressionDecision.without_pipeline(b"x" * 50, "passthrough", "not_json")
    assert_same_event(
        refused.log_fields(), {"decision": "passthrough", "reason": "not_json", "bytes_before": 50, "bytes_after": 50}
    )
    small = CompressionDecision.without_pipeline(b"x" * 100, "no_change", "below_threshold")
    assert_same_event(
        small.log_fields(),
        {
            "decision": "no_change",
            "reason": "below_threshold",
            "blocks_considered": 0,
            "blocks_rewritten": 0,
            "bytes_before": 100,
            "bytes_after": 100,
        },
    )
    failed = CompressionDecision.failed_open(b"{}", "RuntimeError: boom")
    assert failed.body == b"{}"
    assert_same_event(
        failed.log_fields(), {"decision": "passthrough", "reason": "internal_error", "error": "RuntimeError: boom"}
    )


def test_sizes_say_what_they_count() -> None:
    assert (FRESH.literal_bytes_before, FRESH.literal_bytes_after) == (5000, len(b'"short"'))
    assert (FRESH_KEPT.literal_bytes_before, FRESH_KEPT.literal_bytes_after) == (300, 300)
    decision = pipeline_decision(FRESH, REMEMBERED)
    assert (decision.body_bytes_before, decision.body_bytes_after) == (20_000, 9_000)
    assert decision.fresh_blocks == (FRESH,)
