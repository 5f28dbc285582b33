"""Helpers for the end-to-end stream tests: provider streams, an upstream that
plays them (paced, split anywhere, or cut off), a raw body reader that records
arrival times, and the log and telemetry taps.

Streams are built here from the public API references rather than read from
the unit-test fixtures, so each test states the text, tool arguments and usage
it expects next to the stream that carries them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from http_fakes import RunningProxy
from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http_headers import Headers
from twisted.web.server import NOT_DONE_YET, Request

from headroom_twisted import wiring
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.sse.telemetry import SSETelemetry

CHAT_PATH = "/v1/chat/completions"
MESSAGES_PATH = "/v1/messages"
RESPONSES_PATH = "/v1/responses"

CHAT_MODEL = "gpt-4o-mini-2024-07-18"
CLAUDE_MODEL = "claude-sonnet-4-6"
RESPONSES_MODEL = "gpt-4.1-2025-04-14"

# Multi-byte characters on purpose: a write split inside one must still arrive intact.
PIECES = ["Hello", ", wor", "ld — ", "ünï", "cødé ", "✓ 🌍", " done."]


def sse(payload: object, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return sse(
        {
            "id": "chatcmpl-e2e1",
            "object": "chat.completion.chunk",
            "created": 1741570000,
            "model": CHAT_MODEL,
            "system_fingerprint": "fp_0ba0d124f1",
            "choices": [choice],
            **extra,
        }
    )


def chat_usage_chunk(prompt: int, completion: int, cached: int) -> bytes:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    return sse(
        {
            "id": "chatcmpl-e2e1",
            "object": "chat.completion.chunk",
            "created": 1741570000,
            "model": CHAT_MODEL,
            "choices": [],
            "usage": usage,
        }
    )


def chat_text_events(pieces: list[str], usage: tuple[int, int, int] = (1117, 42, 1024)) -> list[bytes]:
    """A Chat Completions answer with `stream_options.include_usage`: text, stop, usage, [DONE]."""
    return [
        chat_chunk({"role": "assistant", "content": "", "refusal": None}),
        *(chat_chunk({"content": piece}) for piece in pieces),
        chat_chunk({}, "stop"),
        chat_usage_chunk(*usage),
        b"data: [DONE]\n\n",
    ]


def anthropic_text_events(pieces: list[str]) -> list[bytes]:
    """A Messages stream: message_start (prompt usage), one text block, message_delta, message_stop."""
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_01E2EXFDUDYJgAACzvnptvVo",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": CLAUDE_MODEL,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 25,
                "cache_creation_input_tokens": 7,
                "cache_read_input_tokens": 2048,
                "output_tokens": 1,
            },
        },
    }
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    deltas = [
        sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            "content_block_delta",
        )
        for piece in pieces
    ]
    return [
        sse(start, "message_start"),
        sse(block, "content_block_start"),
        b'event: ping\ndata: {"type": "ping"}\n\n',
        *deltas,
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
            "message_delta",
        ),
        sse({"type": "message_stop"}, "message_stop"),
    ]


def responses_text_events(pieces: list[str]) -> list[bytes]:
    """A Responses stream: created, in_progress, one message with output_text deltas, completed."""
    text = "".join(pieces)
    base = {
        "id": "resp_e2e67c9fdcecf488190bdd9a0409de3a1ec",
        "object": "response",
        "created_at": 1741290958,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": RESPONSES_MODEL,
        "output": [],
        "usage": None,
    }
    item_id = "msg_e2e67c9fdcf37fc8190ba82116e33fb28"
    part = {"type": "output_text", "text": "", "annotations": []}
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    done_part = {**part, "text": text}
    done_item = {**item, "status": "completed", "content": [done_part]}
    usage = {
        "input_tokens": 1337,
        "input_tokens_details": {"cached_tokens": 1280},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1346,
    }
    numbered: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": base}),
        ("response.in_progress", {"response": base}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part}),
        *(
            ("response.output_text.delta", {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece})
            for piece in pieces
        ),
        ("response.output_text.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "text": text}),
        ("response.content_part.done", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": done_part}),
        ("response.output_item.done", {"output_index": 0, "item": done_item}),
        ("response.completed", {"response": {**base, "status": "completed", "output": [done_item], "usage": usage}}),
    ]
    return [
        sse({"type": kind, "sequence_number": number, **fields}, kind) for number, (kind, fields) in enumerate(numbered)
    ]


@dataclass
class StreamPlan:
    """What the fake upstream sends: `writes` in order, `delay` seconds apart, then finish or abort.

    `sent` and `sent_at` record what actually went out, and when.
    """

    writes: list[bytes]
    delay: float = 0.0
    abort_after: int | None = None
    sent: list[bytes] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)
    closed: Deferred[None] = field(default_factory=Deferred)

    @property
    def body(self) -> bytes:
        return b"".join(self.writes)


def play(plan: StreamPlan) -> Callable[[Request, Any], Any]:
    """A fake-upstream handler that writes the plan's chunks as separate writes.

    Each next write is scheduled only after the previous one went out, so the
    gaps between writes are at least `delay` even when the reactor is busy.
    A client that leaves stops the writing; `plan.closed` fires either way.
    """

    def handler(request: Request, recorded: Any) -> Any:
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-cache")
        request.setHeader(b"x-request-id", b"req_upstream_sse")
        gone = {"flag": False}

        def on_finish(result: object) -> None:
            gone["flag"] = True
            if not plan.closed.called:
                plan.closed.callback(None)

        request.notifyFinish().addBoth(on_finish)

        def step(index: int) -> None:
            if gone["flag"]:
                return
            if plan.abort_after is not None and index >= plan.abort_after:
                request.channel.transport.abortConnection()
                return
            if index >= len(plan.writes):
                request.finish()
                return
            request.write(plan.writes[index])
            plan.sent.append(plan.writes[index])
            plan.sent_at.append(time.monotonic())
            reactor.callLater(plan.delay, step, index + 1)

        step(0)
        return NOT_DONE_YET

    return handler


class ArrivalRecorder(Protocol):
    """A response body protocol that keeps every chunk with its monotonic arrival time."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, bytes]] = []
        self.reason: Failure | None = None
        self.done: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.arrivals.append((time.monotonic(), data))

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        self.reason = reason
        self.done.callback(None)

    @property
    def body(self) -> bytes:
        return b"".join(data for _, data in self.arrivals)

    def event_arrival_times(self) -> list[float]:
        """When each complete SSE event (ended by a blank line) had fully arrived."""
        times, seen = [], b""
        for at, data in self.arrivals:
            before = seen.count(b"\n\n")
            seen += data
            times.extend([at] * (seen.count(b"\n\n") - before))
        return times


def clean_end(reason: Failure) -> bool:
    """The body ended with its framing complete (a `PotentialDataLoss` or a `ResponseFailed` is not that)."""
    return reason.check(ResponseDone) is not None


async def raw_post(url: str, body: bytes) -> tuple[Any, ArrivalRecorder, Failure]:
    """POST with a bare Agent (no decoding, no buffering) and record the body as it arrives."""
    agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
    response = await agent.request(
        b"POST", url.encode(), Headers({b"content-type": [b"application/json"]}), _Body(body)
    )
    recorder = ArrivalRecorder()
    response.deliverBody(recorder)
    await recorder.done
    assert recorder.reason is not None
    return response, recorder, recorder.reason


class _Body:
    """The smallest IBodyProducer: one write of known length."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


def closed_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry.get("event") == "sse_stream_closed"]


async def wait_for(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await deferLater(reactor, 0.01, lambda: None)


async def ready(proxy: RunningProxy) -> RunningProxy:
    """Wait for warm-up (Magika, tokenizers), so its thread does not steal the GIL mid-test."""
    await wait_for(lambda: proxy.service.readiness()["tokenizer_and_detector"], timeout=60)
    return proxy


class TelemetryTap:
    """Records every telemetry observer the proxy creates, for state the log line does not carry."""

    def __init__(self, monkeypatch: Any) -> None:
        self.observers: list[SSETelemetry] = []
        original = wiring.telemetry_for

        def recording(endpoint: Endpoint | None, log: Any, on_closed: Any = None) -> SSETelemetry:
            observer = original(endpoint, log, on_closed)
            self.observers.append(observer)
            return observer

        monkeypatch.setattr(wiring, "telemetry_for", recording)

    @property
    def only(self) -> SSETelemetry:
        assert len(self.observers) == 1, self.observers
        return self.observers[0]
