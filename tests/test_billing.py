"""The bill: provider-reported usage read from JSON responses, and the billing section it feeds in /stats."""

from __future__ import annotations

import json

import pytest
import structlog
from obs_support import ANTHROPIC_JSON
from structlog.testing import capture_logs
from twisted.internet.task import Clock

from headroom_twisted.compress.decision import BlockDecision, BlockSource, CompressionDecision
from headroom_twisted.compress.rewrite import Rewrite
from headroom_twisted.endpoints import endpoint_for_path, path_of
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.sse.json_usage import MAX_JSON_BYTES, json_usage_for
from headroom_twisted.sse.state import Usage
from headroom_twisted.sse.summary import ResponseUsage
from headroom_twisted.stats import SavingsStats
from headroom_twisted.upstream.observer import StreamEnd

CHAT_JSON = {
    "model": "gpt-5",
    "choices": [],
    "usage": {"prompt_tokens": 5000, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4096}},
}
RESPONSES_JSON = {
    "model": "gpt-5",
    "output": [],
    "usage": {"input_tokens": 3000, "output_tokens": 5, "input_tokens_details": {"cached_tokens": 2048}},
}


def read(path: str, document: dict, chunks: int = 3, end: StreamEnd = StreamEnd.COMPLETE) -> list[ResponseUsage]:
    reports: list[ResponseUsage] = []
    observer = json_usage_for(endpoint_for_path(path_of(path.encode())), structlog.get_logger(), reports.append)
    data = json.dumps(document).encode()
    step = len(data) // chunks + 1
    for start in range(0, len(data), step):
        observer.chunk(data[start : start + step])
    observer.finished(end)
    observer.finished(end)
    return reports


@pytest.mark.parametrize(
    ("path", "document", "expected"),
    [
        (
            "/v1/messages",
            ANTHROPIC_JSON,
            ("anthropic", "claude-sonnet-4-6", {"input_tokens": 10000, "output_tokens": 20, "cached_tokens": 9000}),
        ),
        ("/v1/chat/completions", CHAT_JSON, ("openai_chat", "gpt-5", {"input_tokens": 5000, "cached_tokens": 4096})),
        ("/v1/responses?x=1", RESPONSES_JSON, ("openai_responses", "gpt-5", {"input_tokens": 3000})),
    ],
)
def test_json_responses_report_usage_once(path, document, expected) -> None:
    [report] = read(path, document)
    assert (report.provider, report.model) == expected[:2]
    assert expected[2].items() <= report.usage.as_dict().items()


def test_incomplete_oversized_or_unrelated_bodies_report_nothing() -> None:
    assert read("/v1/messages", ANTHROPIC_JSON, end=StreamEnd.TRUNCATED) == []
    assert read("/v1/messages", {**ANTHROPIC_JSON, "pad": "x" * MAX_JSON_BYTES}) == []
    assert read("/v1/messages", {"type": "error"}) == []
    assert json_usage_for(endpoint_for_path(b"/v1/models"), structlog.get_logger(), print) is None
    assert json_usage_for(endpoint_for_path(b"/v1/messages/count_tokens"), structlog.get_logger(), print) is None


def compressed(memo: tuple[int, int], fresh: tuple[int, int]) -> CompressionDecision:
    """A request with one block whose rewrite was remembered and one compressed now, both rewritten."""

    def block(source: BlockSource, tokens: tuple[int, int]) -> BlockDecision:
        rewrite = Rewrite(b'"short"', "log", "log_lines", "compressed", tokens[0], tokens[1], 1.0)
        return BlockDecision(("messages", 1, "content"), "tool", source, rewrite, 5000)

    return CompressionDecision(
        body=b"{}",
        decision="compressed",
        reason="blocks_rewritten",
        body_bytes_before=12_000,
        body_bytes_after=2_000,
        mode="stable",
        model="claude",
        blocks=(block("memo", memo), block("compressed", fresh)),
        duration_ms=1.0,
    )


def test_billing_sets_provider_cache_figures_next_to_the_saving() -> None:
    stats = SavingsStats(started=0.0)
    stats.usage_reported(
        ResponseUsage("anthropic", "claude", Usage(input_tokens=10000, cached_tokens=9000, cache_creation_tokens=900))
    )
    stats.compression_decided(60.0, "/v1/messages", compressed(memo=(2000, 500), fresh=(1000, 500)))
    bill = stats.snapshot(61.0)["billing"]["by_provider"]["anthropic"]
    assert (bill["uncached_input_tokens"], bill["cache_read_tokens"], bill["cache_write_tokens"]) == (100, 9000, 900)
    assert bill["billed_input_units"] == 100 + 0.1 * 9000 + 1.25 * 900
    assert (bill["tokens_saved_first"], bill["tokens_saved_repeated"]) == (500, 1500)
    assert bill["estimated_saved_units"] == 1.25 * 500 + 0.1 * 1500
    saved, billed = bill["estimated_saved_units"], bill["billed_input_units"]
    assert bill["estimated_percent_saved"] == round(100 * saved / (billed + saved), 2)
    assert "cache read costs 0.1" in stats.snapshot(61.0)["billing"]["rule"]


def test_metrics_count_json_usage_like_stream_usage() -> None:
    metrics = ProxyMetrics(Clock())
    with capture_logs() as logs:
        for path, document in (("/v1/messages", ANTHROPIC_JSON), ("/v1/chat/completions", CHAT_JSON)):
            observer = json_usage_for(
                endpoint_for_path(path_of(path.encode())), structlog.get_logger(), metrics.usage_reported
            )
            observer.chunk(json.dumps(document).encode())
            observer.finished(StreamEnd.COMPLETE)
    usage = metrics.stats.snapshot(1.0)["provider_usage"]
    assert usage["anthropic/claude-sonnet-4-6"]["cache_creation_tokens"] == 900
    assert usage["openai_chat/gpt-5"]["cached_tokens"] == 4096
    assert [event["event"] for event in logs] == ["response_usage", "response_usage"]
