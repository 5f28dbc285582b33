"""The metrics recorder, the /stats arithmetic and the dashboard renderer, without a reactor."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import orjson
import structlog
from obs_support import SSE_TEXT, SSE_TEXT_USAGE, sample_values
from prometheus_client import generate_latest
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from headroom_twisted.compress.decision import BlockDecision, CompressionDecision
from headroom_twisted.compress.rewrite import Rewrite
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.metrics import ProxyMetrics, endpoint_label, status_class
from headroom_twisted.sse.telemetry import telemetry_for
from headroom_twisted.stats import MAX_LABEL_VALUES, MinuteSeries, SavingsStats
from headroom_twisted.upstream.observer import StreamEnd
from headroom_twisted.web.dashboard import render_dashboard


def block(
    strategy: str, tokens: tuple[int | None, int | None], size: tuple[int, int], rewritten: bool
) -> BlockDecision:
    """A block compressed for this request; its literal shrank from size[0] to size[1] bytes."""
    rewrite = Rewrite(
        literal=b"x" * size[1] if rewritten else None,
        content_type="json",
        strategy=strategy,
        reason="compressed" if rewritten else "below_threshold",
        tokens_before=tokens[0],
        tokens_after=tokens[1],
        ms=1.0,
    )
    return BlockDecision(("messages", 1, "content"), "tool", "compressed", rewrite, size[0])


COMPRESSED = CompressionDecision(
    body=b"",
    decision="compressed",
    reason="blocks_rewritten",
    body_bytes_before=10_000,
    body_bytes_after=4_000,
    mode="stable",
    model="claude-sonnet-4-5",
    blocks=(
        block("json_rows", (2_000, 500), (7_000, 2_000), True),
        block("log_lines", (1_000, 400), (2_500, 1_500), True),
    ),
    duration_ms=12.5,
)
NO_CHANGE = CompressionDecision(
    body=b"",
    decision="no_change",
    reason="below_threshold",
    body_bytes_before=300,
    body_bytes_after=300,
    mode="stable",
    model="gpt-4o",
    blocks=(block("none", (None, None), (40, 40), False),),
    duration_ms=0.2,
)
PASSTHROUGH = CompressionDecision.without_pipeline(b"x" * 50, "passthrough", "not_json")


def test_stats_arithmetic_and_percent_formula() -> None:
    stats = SavingsStats(started=1_000.0)
    for endpoint, decision in (
        ("/v1/messages", COMPRESSED),
        ("/v1/chat/completions", NO_CHANGE),
        ("/v1/responses", PASSTHROUGH),
        ("/v1/messages", COMPRESSED),
    ):
        stats.compression_decided(1_030.0, endpoint, decision)
    snap = stats.snapshot(1_090.0)
    assert snap["uptime_s"] == 90.0
    assert (snap["compressible_requests"], snap["compressed_requests"]) == (4, 2)
    assert (snap["tokens_before"], snap["tokens_after"], snap["tokens_saved"]) == (6_000, 1_800, 4_200)
    assert snap["percent_saved"] == 70.0
    assert (snap["bytes_before"], snap["bytes_after"], snap["bytes_saved"]) == (20_350, 8_350, 12_000)
    assert snap["by_compressor"]["json_rows"] == {
        "blocks": 2,
        "blocks_rewritten": 2,
        "tokens_before": 4_000,
        "tokens_after": 1_000,
        "tokens_saved": 3_000,
        "percent_saved": 75.0,
        "bytes_before": 14_000,
        "bytes_after": 4_000,
        "bytes_saved": 10_000,
    }
    assert snap["by_compressor"]["none"]["tokens_before"] == 0
    assert snap["by_endpoint"]["/v1/messages"]["percent_saved"] == 70.0
    assert snap["by_endpoint"]["/v1/responses"]["compressible_requests"] == 1
    assert snap["by_model"]["unknown"]["compressible_requests"] == 1
    assert snap["decisions"] == {"compressed": 2, "no_change": 1, "passthrough": 1}
    assert snap["recent_minutes"][-2:] == [
        {"minute_start": 1_020, "tokens_sent": 6_000, "tokens_forwarded": 1_800},
        {"minute_start": 1_080, "tokens_sent": 0, "tokens_forwarded": 0},
    ]
    assert len(snap["recent_minutes"]) == 60
    orjson.dumps(snap)


def test_model_labels_are_capped() -> None:
    stats = SavingsStats(started=0.0)
    for i in range(MAX_LABEL_VALUES + 20):
        stats.compression_decided(0.0, "/v1/chat/completions", replace(NO_CHANGE, model=f"model-{i}"))
    by_model = stats.snapshot(0.0)["by_model"]
    assert len(by_model) == MAX_LABEL_VALUES + 1
    assert by_model["other"]["compressible_requests"] == 20


def test_minute_series_keeps_the_last_hour_and_fills_gaps() -> None:
    series = MinuteSeries(minutes=3)
    for minute in range(5):
        series.add(minute * 60 + 1, 10 * minute, minute)
    series.add(4 * 60 + 30, 5, 1)
    assert series.recent(6 * 60) == [
        {"minute_start": 240, "tokens_sent": 45, "tokens_forwarded": 5},
        {"minute_start": 300, "tokens_sent": 0, "tokens_forwarded": 0},
        {"minute_start": 360, "tokens_sent": 0, "tokens_forwarded": 0},
    ]


def test_labels_are_bounded() -> None:
    assert endpoint_label("/v1/chat/completions") == "/v1/chat/completions"
    assert endpoint_label("/v1/files/file-abc123") == "other"
    assert endpoint_label(None) == "invalid"
    assert [status_class(code) for code in (200, 404, 502, None)] == ["2xx", "4xx", "5xx", "client_closed"]


def test_metrics_registries_are_per_service_and_match_stats() -> None:
    clock = Clock()
    clock.advance(120)
    first, second = ProxyMetrics(clock), ProxyMetrics(clock, process_collectors=False)
    first.compression_decided(COMPRESSED, "/v1/messages")
    first.request_finished("anthropic", "/v1/messages", b"POST", 200, 0.02)
    first.request_finished(None, None, b"BREW", None, 0.01)
    text = generate_latest(first.registry).decode()
    assert sample_values(text, "headroom_compression_tokens_before_total", "endpoint", "compressor") == {
        ("/v1/messages", "json_rows"): 2_000,
        ("/v1/messages", "log_lines"): 1_000,
    }
    assert sample_values(text, "headroom_requests_total", "provider", "endpoint", "method", "status_class") == {
        ("anthropic", "/v1/messages", "POST", "2xx"): 1,
        ("none", "invalid", "other", "client_closed"): 1,
    }
    assert "process_cpu_seconds_total" in text
    assert sample_values(generate_latest(second.registry).decode(), "headroom_requests_total") == {}
    assert first.snapshot()["tokens_saved"] == 2_100


def test_thread_pool_is_read_at_scrape_time() -> None:
    metrics = ProxyMetrics(Clock(), process_collectors=False)
    pool = ThreadPool(minthreads=0, maxthreads=1, name="obs-test")
    metrics.watch_thread_pool(pool)
    release, started = threading.Event(), threading.Event()

    def job() -> None:
        started.set()
        release.wait(5)

    pool.start()
    try:
        pool.callInThread(job)
        pool.callInThread(job)
        assert started.wait(5)
        text = generate_latest(metrics.registry).decode()
        assert sample_values(text, "headroom_threadpool_busy_workers") == {(): 1}
        assert sample_values(text, "headroom_threadpool_queue_depth") == {(): 1}
        assert sample_values(text, "headroom_threadpool_max_workers") == {(): 1}
    finally:
        release.set()
        pool.stop()


def test_the_closed_stream_summary_is_counted() -> None:
    metrics = ProxyMetrics(Clock(), process_collectors=False)
    observer = telemetry_for(Endpoint.CHAT, structlog.get_logger(), on_closed=metrics.sse_closed)
    for start in range(0, len(SSE_TEXT), 97):
        observer.chunk(SSE_TEXT[start : start + 97])
    observer.finished(StreamEnd.COMPLETE)
    assert metrics.snapshot()["provider_usage"] == SSE_TEXT_USAGE
    assert metrics.snapshot()["sse_streams"] == {"clean": 1}


def test_dashboard_escapes_names_and_has_no_external_assets() -> None:
    stats = SavingsStats(started=time.time())
    hostile = '<script>alert("x")</script>'
    stats.compression_decided(time.time(), "/v1/messages", replace(COMPRESSED, model=hostile))
    page = render_dashboard(stats.snapshot(time.time()))
    assert hostile not in page and "&lt;script&gt;" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert 'data-stat="tokens_saved" data-value="2100">2,100<' in page
