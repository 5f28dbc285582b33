"""A scripted sequence of requests through a production-wired proxy, then /metrics and /stats.

Sequence: a plain GET, a passthrough (not JSON), a compressed chat request, a
small one (no change), a 413, a 502 after an upstream reset, a 502 for an
unreachable upstream, and an SSE stream. Counters must match exactly, and
/stats must equal the sums over the captured `compression_decision` events.
"""

from __future__ import annotations

import socket
from collections import Counter
from typing import Any

import orjson
import pytest_twisted
import treq
from obs_support import (
    SECRET_KEY,
    SECRET_PROMPT,
    SSE_TEXT_USAGE,
    STREAM_BODY,
    chat_with_tool_output,
    decision_events,
    expected_from_events,
    fetch,
    raw_request,
    sample_values,
    scripted_upstream,
)
from structlog.testing import capture_logs
from tool_outputs import service_rows
from twisted.internet import reactor
from twisted.internet.task import deferLater

from headroom_twisted.metrics import endpoint_label
from headroom_twisted.stats import PERCENT_FORMULA

JSON_HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {SECRET_KEY}"}


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def run_script(proxy_url: str) -> list[dict[str, Any]]:
    """Run the sequence; return the captured log events."""
    with capture_logs() as logs:
        assert (await fetch(proxy_url + "/v1/models"))[0] == 200
        code, _ = await fetch(
            proxy_url + "/v1/chat/completions", "POST", data=b"not json", headers={"Content-Type": "text/plain"}
        )
        assert code == 200
        code, _ = await fetch(
            proxy_url + "/v1/chat/completions", "POST", data=chat_with_tool_output(service_rows()), headers=JSON_HEADERS
        )
        assert code == 200
        code, _ = await fetch(
            proxy_url + "/v1/chat/completions",
            "POST",
            data=chat_with_tool_output("tiny", "claude-x"),
            headers=JSON_HEADERS,
        )
        assert code == 200
        too_large = await raw_request(
            proxy_url,
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 5000000\r\n\r\n",
        )
        assert too_large.startswith(b"HTTP/1.1 413")
        assert (await fetch(proxy_url + "/v1/embeddings", "POST", data=b"{}", headers=JSON_HEADERS))[0] == 502
        assert (await fetch(proxy_url + "/v1/messages/batches"))[0] == 502
        code, streamed = await fetch(proxy_url + "/v1/chat/completions", "POST", data=STREAM_BODY, headers=JSON_HEADERS)
        assert code == 200 and streamed.endswith(b"data: [DONE]\n\n")
    return logs


async def settled_metrics(proxy_url: str) -> str:
    """/metrics once the closed client connections have been noticed (only the scrape's own is open)."""
    for _ in range(40):
        text = (await fetch(proxy_url + "/metrics"))[1].decode()
        if sample_values(text, "headroom_open_connections") == {(): 1.0}:
            return text
        await deferLater(reactor, 0.05, lambda: None)
    return text


@pytest_twisted.ensureDeferred
async def test_scripted_sequence_counters_and_stats(make_proxy, upstream) -> None:
    upstream.handler = scripted_upstream
    proxy = make_proxy(production=True, max_body_bytes="1MiB", anthropic_upstream=closed_port_url())
    logs = await run_script(proxy.url)
    events = decision_events(logs)
    logged = [
        entry
        for entry in logs
        if entry["event"] in ("request_finished", "compression_decision", "upstream_error", "sse_stream_closed")
    ]
    assert len(logged) == 8 + 4 + 2 + 1
    assert all(entry["request_id"] for entry in logged)
    (refused,) = [entry for entry in logs if entry["event"] == "request_finished" and entry["status"] == 413]
    assert (refused["method"], refused["path"], refused["provider"]) == ("POST", "/v1/chat/completions", "openai")
    assert Counter(event["decision"] for event in events) == {"passthrough": 1, "compressed": 1, "no_change": 2}

    text = await settled_metrics(proxy.url)
    labels = ("provider", "endpoint", "method", "status_class")
    assert sample_values(text, "headroom_requests_total", *labels) == {
        ("openai", "/v1/models", "GET", "2xx"): 1,
        ("openai", "/v1/chat/completions", "POST", "2xx"): 4,
        ("openai", "/v1/chat/completions", "POST", "4xx"): 1,
        ("openai", "/v1/embeddings", "POST", "5xx"): 1,
        ("anthropic", "other", "GET", "5xx"): 1,
    }
    durations = sample_values(text, "headroom_request_duration_seconds_count", "provider", "endpoint")
    assert sum(durations.values()) == 8
    assert sample_values(text, "headroom_upstream_errors_total", "kind") == {("reset",): 1, ("connect",): 1}
    decisions = Counter((endpoint_label(e["path"]), e["decision"], e["reason"]) for e in events)
    assert sample_values(text, "headroom_compression_decisions_total", "endpoint", "decision", "reason") == decisions
    expected = expected_from_events(events)
    tokens_before = sample_values(text, "headroom_compression_tokens_before_total", "compressor")
    tokens_after = sample_values(text, "headroom_compression_tokens_after_total", "compressor")
    for compressor, (_, before, after) in expected["by_compressor"].items():
        if before:
            assert tokens_before[(compressor,)] == before and tokens_after[(compressor,)] == after
    assert sum(tokens_before.values()) == expected["tokens_before"]
    assert sum(tokens_after.values()) == expected["tokens_after"]
    assert expected["tokens_after"] < expected["tokens_before"]
    timed = sum("duration_ms" in event for event in events)
    assert sum(sample_values(text, "headroom_compression_duration_seconds_count", "endpoint").values()) == timed
    assert sample_values(text, "headroom_sse_streams_total", "provider", "ended") == {("openai_chat", "clean"): 1}
    assert sample_values(text, "headroom_provider_usage_tokens_total", "provider", "model", "kind") == {
        ("openai_chat", "gpt-4o-2024-08-06", "input"): 1117,
        ("openai_chat", "gpt-4o-2024-08-06", "output"): 9,
        ("openai_chat", "gpt-4o-2024-08-06", "cached"): 1024,
    }
    assert sample_values(text, "headroom_active_streams") == {(): 0}
    assert sample_values(text, "headroom_threadpool_max_workers") == {(): 4}
    assert sample_values(text, "headroom_threadpool_queue_depth") == {(): 0}
    assert sample_values(text, "headroom_threadpool_busy_workers") == {(): 0}

    stats = orjson.loads((await fetch(proxy.url + "/stats"))[1])
    assert stats["percent_formula"] == PERCENT_FORMULA
    assert stats["requests"] == 8
    assert stats["requests_by_status_class"] == {"2xx": 5, "4xx": 1, "5xx": 2}
    assert stats["upstream_errors"] == {"connect": 1, "reset": 1}
    for key in (
        "compressible_requests",
        "compressed_requests",
        "tokens_before",
        "tokens_after",
        "tokens_saved",
        "percent_saved",
        "bytes_before",
        "bytes_after",
        "decisions",
    ):
        assert stats[key] == expected[key], key
    assert {
        name: row["compressible_requests"] for name, row in stats["by_endpoint"].items() if row["compressible_requests"]
    } == expected["by_endpoint"]
    assert stats["by_endpoint"]["/v1/chat/completions"]["requests"] == 5
    assert {
        name: [row["blocks"], row["tokens_before"], row["tokens_after"]] for name, row in stats["by_compressor"].items()
    } == expected["by_compressor"]
    assert {name: row["compressible_requests"] for name, row in stats["by_model"].items()} == expected["by_model"]
    assert sum(row["tokens_saved"] for row in stats["by_model"].values()) == expected["tokens_saved"]
    assert sum(minute["tokens_sent"] for minute in stats["recent_minutes"]) == expected["tokens_before"]
    assert sum(minute["tokens_forwarded"] for minute in stats["recent_minutes"]) == expected["tokens_after"]
    assert stats["sse_streams"] == {"clean": 1}
    assert stats["provider_usage"] == SSE_TEXT_USAGE

    dashboard = (await fetch(proxy.url + "/dashboard"))[1].decode()
    for page in (text, orjson.dumps(stats).decode(), dashboard):
        assert SECRET_KEY not in page and SECRET_PROMPT not in page and "svc-1" not in page


@pytest_twisted.ensureDeferred
async def test_local_endpoints_are_exact_get_paths_never_forwarded(make_proxy, upstream) -> None:
    proxy = make_proxy()
    for path, content_type in (
        ("/metrics", b"text/plain"),
        ("/stats", b"application/json"),
        ("/dashboard", b"text/html"),
    ):
        response = await treq.get(proxy.url + path, persistent=False)
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type")[0].startswith(content_type)
        await treq.content(response)
    assert upstream.requests == []
    assert (await fetch(proxy.url + "/stats", "POST", data=b"{}"))[0] == 200
    assert (await fetch(proxy.url + "/dashboard/x"))[0] == 200
    assert [recorded.uri for recorded in upstream.requests] == [b"/stats", b"/dashboard/x"]
    stats = orjson.loads((await fetch(proxy.url + "/stats"))[1])
    assert stats["requests"] == 2 and stats["compressible_requests"] == 0 and stats["percent_saved"] == 0.0
