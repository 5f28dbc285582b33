"""Helpers for the end-to-end live-zone tests: bodies, byte checks, upstream answers, SDK calls.

Every body is written by hand as bytes (odd whitespace, key order, number
spellings, escapes) so that "identical outside the replaced literals" means
something; the tool outputs inside them are realistic and big enough to be
compressed by the real compressors.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from http_fakes import Recorded, RunningProxy, http_client
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.web.server import Request

from headroom_twisted.compress.decision import CompressionDecision
from headroom_twisted.compress.pipeline import compress_request
from headroom_twisted.compress.rewrite import BlockCompressor
from headroom_twisted.compression_service import CompressionService
from headroom_twisted.config import build_config
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.wiring import assemble

SSE_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sse"
CORPUS = Path(__file__).resolve().parents[2] / "bench" / "corpus"
JSON = {b"content-type": [b"application/json"], b"authorization": [b"Bearer sk-test-dummy"]}
ERROR_IDS = [7, 257, 507, 757, 1007, 1257]  # the rows of service_rows() with status "error"
STRING_LITERAL = re.compile(rb'"(?:[^"\\]|\\.)*+"', re.DOTALL)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def lit(text: str) -> bytes:
    """A JSON string literal as a client would write it (non-ASCII escaped)."""
    return json.dumps(text).encode("ascii")


def corpus(name: str) -> str:
    return (CORPUS / name).read_text()


def diff_without_context(files: int = 30) -> str:
    """A diff with nothing to trim: the diff compressor cannot make it smaller."""
    return "".join(f"--- a/f{i}.py\n+++ b/f{i}.py\n@@ -1,1 +1,1 @@\n-x = {i}\n+x = {i + 1}\n" for i in range(files))


def gaps(original: bytes, literals: list[bytes]) -> list[bytes]:
    """The bytes between (and around) the given literals, which must occur once each, in order."""
    pieces, cursor = [], 0
    for literal in literals:
        assert original.count(literal) == 1, "each target literal must occur exactly once"
        start = original.index(literal)
        assert start >= cursor
        pieces.append(original[cursor:start])
        cursor = start + len(literal)
    pieces.append(original[cursor:])
    return pieces


def replaced_texts(original: bytes, forwarded: bytes, literals: list[bytes]) -> list[str]:
    """Check every byte outside `literals` is identical (SHA-256 per gap); return the new texts.

    The forwarded body must be gap0, a JSON string literal, gap1, ... in the
    same order; the decoded strings that took the literals' places are returned.
    """
    pieces = gaps(original, literals)
    texts, cursor = [], 0
    for index, gap in enumerate(pieces):
        assert sha256(forwarded[cursor : cursor + len(gap)]) == sha256(gap), f"gap {index} changed"
        cursor += len(gap)
        if index == len(literals):
            break
        match = STRING_LITERAL.match(forwarded, cursor)
        assert match is not None, f"no JSON string literal where literal {index} was"
        texts.append(json.loads(match.group()))
        cursor = match.end()
    assert cursor == len(forwarded)
    return texts


def decisions(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == "compression_decision"]


async def post(proxy: RunningProxy, path: str, body: bytes, headers: dict[bytes, list[bytes]] | None = None) -> bytes:
    response = await http_client().post(proxy.url + path, data=body, headers=headers or JSON)
    content: bytes = await treq.content(response)
    assert response.code == 200, content
    return content


def sse_fixture(name: str) -> bytes:
    return (SSE_FIXTURES / f"{name}.sse").read_bytes()


def answer(payload: dict[str, Any] | None = None, stream: bytes | None = None) -> Callable[[Request, Recorded], bytes]:
    """An upstream handler that answers JSON, or an SSE stream when the request asks for one."""

    def handler(request: Request, recorded: Recorded) -> bytes:
        wants_stream = stream is not None and json.loads(recorded.body).get("stream") is True
        request.setHeader(b"content-type", b"text/event-stream" if wants_stream else b"application/json")
        return stream if wants_stream else json.dumps(payload or {"ok": True}).encode()

    return handler


CHAT_COMPLETION = {
    "id": "chatcmpl-e2e",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "db-7 and db-257 timed out."}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 500, "completion_tokens": 9, "total_tokens": 509},
}

ANTHROPIC_MESSAGE = {
    "id": "msg_e2e",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Two tests failed."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 400, "output_tokens": 5},
}

RESPONSE_OBJECT = {
    "id": "resp_e2e",
    "object": "response",
    "created_at": 1741290958,
    "status": "completed",
    "model": "gpt-4.1",
    "output": [
        {
            "id": "msg_e2e",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "callLater is at base.py:946.", "annotations": []}],
        }
    ],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
    "usage": {"input_tokens": 300, "output_tokens": 8, "total_tokens": 308},
}


def in_thread(call: Callable[[], Any]) -> Deferred[Any]:
    """Run a synchronous SDK call off the reactor thread."""
    return deferToThread(call)


def start_proxy_with(upstream_url: str, compressor: BlockCompressor, **options: str) -> RunningProxy:
    """A proxy whose compression stage uses `compressor` instead of the real one."""
    flags = {
        "openai-upstream": upstream_url,
        "anthropic-upstream": upstream_url,
        "compression": "live_zone",
        **{name.replace("_", "-"): value for name, value in options.items()},
    }
    config = build_config(flags, ["tcp:0:interface=127.0.0.1"], {})

    def job(body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> CompressionDecision:
        return compress_request(body, endpoint, compressor, mode=config.compression)

    service = assemble(config, reactor, CompressionService(reactor, job, threads=config.threads))
    service.startService()
    return RunningProxy(service=service, url=f"http://127.0.0.1:{service.ports[0].getHost().port}")


def stop_all(proxies: list[RunningProxy]) -> None:
    for proxy in proxies:
        pytest_twisted.blockon(proxy.stop())
