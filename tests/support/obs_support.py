"""Helpers for the observability tests: request bodies, a scripted upstream, metric readers."""

from __future__ import annotations

import socket
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import treq
from http_fakes import Recorded, json_ok
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.threads import deferToThreadPool
from twisted.web.server import NOT_DONE_YET, Request

from headroom_twisted.metrics import endpoint_label

SSE_TEXT = (Path(__file__).resolve().parent.parent / "fixtures" / "sse" / "openai_chat_text.sse").read_bytes()
SSE_TEXT_USAGE = {
    "openai_chat/gpt-4o-2024-08-06": {
        "responses": 1,
        "input_tokens": 1117,
        "uncached_input_tokens": 93,
        "cached_tokens": 1024,
        "cache_creation_tokens": 0,
        "output_tokens": 9,
    }
}
"""`/stats` provider_usage after SSE_TEXT streamed once."""
# A non-streamed Anthropic reply whose usage has cache reads and writes (the bill's three figures).
ANTHROPIC_JSON = {
    "id": "msg_1",
    "type": "message",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "ok"}],
    "usage": {
        "input_tokens": 100,
        "cache_read_input_tokens": 9000,
        "cache_creation_input_tokens": 900,
        "output_tokens": 20,
        "cache_creation": {"ephemeral_5m_input_tokens": 900},
    },
}

SECRET_KEY = "sk-obs-SECRET-KEY-0123456789"
SECRET_PROMPT = "OBS-SECRET-PROMPT-which-services-have-errors"


def chat_with_tool_output(output: str, model: str = "gpt-4o") -> bytes:
    return orjson.dumps(
        {
            "model": model,
            "messages": [
                {"role": "user", "content": SECRET_PROMPT},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "health", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": output},
            ],
        }
    )


STREAM_BODY = orjson.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]})


def scripted_upstream(request: Request, recorded: Recorded) -> Any:
    """Resets `/v1/embeddings`, streams SSE for `"stream": true` bodies, else a small JSON answer."""
    if recorded.uri.startswith(b"/v1/embeddings"):
        request.transport.abortConnection()
        return NOT_DONE_YET
    if b'"stream":true' in recorded.body:
        request.setHeader(b"content-type", b"text/event-stream")
        return SSE_TEXT
    return json_ok(request, recorded)


async def fetch(url: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    response = await treq.request(method, url, persistent=False, **kwargs)
    return response.code, await treq.content(response)


def _raw_exchange(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


async def raw_request(url: str, head: bytes) -> bytes:
    """Send raw bytes, read until the proxy closes (off the reactor thread)."""
    port = int(url.rsplit(":", 1)[1])
    result: bytes = await deferToThreadPool(reactor, reactor.getThreadPool(), _raw_exchange, port, head)
    return result


def sample_values(text: str, sample: str, *labels: str) -> dict[tuple[str, ...], float]:
    """Every sample named `sample`, keyed by the values of `labels` in order."""
    values: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == sample:
                values[tuple(found.labels[name] for name in labels)] = found.value
    return values


def decision_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == "compression_decision"]


def expected_from_events(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What /stats must say, computed independently from the captured log events."""
    before = sum(event.get("tokens_before") or 0 for event in events)
    after = sum(event.get("tokens_after") or 0 for event in events)
    by_compressor: dict[str, list[int]] = {}
    for event in events:
        for block in event.get("blocks", ()):
            tally = by_compressor.setdefault(block["strategy"], [0, 0, 0])
            tally[0] += 1
            tally[1] += block["tokens_before"] or 0
            tally[2] += block["tokens_after"] or 0
    return {
        "compressible_requests": len(events),
        "compressed_requests": sum(event["decision"] == "compressed" for event in events),
        "tokens_before": before,
        "tokens_after": after,
        "tokens_saved": before - after,
        "percent_saved": round(100.0 * (before - after) / before, 2) if before else 0.0,
        "bytes_before": sum(event.get("bytes_before") or 0 for event in events),
        "bytes_after": sum(event.get("bytes_after") or 0 for event in events),
        "decisions": dict(Counter(event["decision"] for event in events)),
        "by_endpoint": Counter(endpoint_label(event["path"]) for event in events),
        "by_compressor": by_compressor,
        "by_model": Counter(event.get("model") or "unknown" for event in events),
    }
