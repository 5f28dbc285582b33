"""Parser cost benchmark: CPU seconds the SSE telemetry spends per MB of stream.

Builds realistic streams for each provider (a 2,000-delta text answer, and a
tool call whose arguments arrive in 2,000 fragments), cuts them the way a
socket would (random 64 B - 2 KiB reads, and one read per event), and feeds
them through `telemetry_for` exactly as the byte path does. Reports the
median of several runs of `time.process_time()` per MB, which is what the
side branch adds to the proxy's CPU for every streamed megabyte.

Usage: ``.venv/bin/python bench/sse_parser.py [--runs N] [--events N]``
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Iterable

import orjson
import structlog
from structlog.testing import CapturingLogger

from headroom_twisted.endpoints import endpoint_for_path
from headroom_twisted.sse.telemetry import telemetry_for
from headroom_twisted.upstream.observer import StreamEnd

WORDS = "the proxy streams each upstream chunk to the client and hands a copy to the parser, café 🌍".split()


def _sse(payload: object, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


def _tokens(count: int) -> list[str]:
    rng = random.Random(7)
    return [" " + rng.choice(WORDS) for _ in range(count)]


def openai_chat(count: int, tool: bool) -> bytes:
    base = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_eb9dce56a8",
    }

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _sse({**base, "choices": [choice]})

    out = [chunk({"role": "assistant", "content": ""})]
    for token in _tokens(count):
        if tool:
            out.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": token.replace(" ", "x")}}]}))
        else:
            out.append(chunk({"content": token}))
    out.append(chunk({}, "tool_calls" if tool else "stop"))
    usage = {"prompt_tokens": 1117, "completion_tokens": count, "prompt_tokens_details": {"cached_tokens": 1024}}
    out.append(_sse({**base, "choices": [], "usage": usage}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def anthropic(count: int, tool: bool) -> bytes:
    start = {
        "type": "message_start",
        "message": {
            "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude-sonnet-4-5-20250929",
            "usage": {"input_tokens": 25, "cache_read_input_tokens": 2048, "output_tokens": 1},
        },
    }
    block = (
        {"type": "tool_use", "id": "toolu_01", "name": "write_file", "input": {}}
        if tool
        else {"type": "text", "text": ""}
    )
    out = [
        _sse(start, "message_start"),
        _sse({"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"),
    ]
    if tool:
        out.append(
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '{"content": "'},
                },
                "content_block_delta",
            )
        )
    for token in _tokens(count):
        delta = {"type": "input_json_delta", "partial_json": token} if tool else {"type": "text_delta", "text": token}
        out.append(_sse({"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"))
    if tool:
        out.append(
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "input_json_delta", "partial_json": '"}'},
                },
                "content_block_delta",
            )
        )
    out.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    out.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": count},
            },
            "message_delta",
        )
    )
    out.append(_sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out)


def responses(count: int, tool: bool) -> bytes:
    response: dict[str, object] = {
        "id": "resp_67c9fdcecf488190bdd9a0409de3a1ec",
        "object": "response",
        "status": "in_progress",
        "model": "gpt-4.1-2025-04-14",
        "output": [],
        "usage": None,
    }
    item = (
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": "call_1",
            "name": "write_file",
        }
        if tool
        else {"id": "msg_1", "type": "message", "status": "in_progress", "content": []}
    )
    kind = "response.function_call_arguments.delta" if tool else "response.output_text.delta"
    out = [
        _sse({"type": "response.created", "sequence_number": 0, "response": response}, "response.created"),
        _sse(
            {"type": "response.output_item.added", "sequence_number": 1, "output_index": 0, "item": item},
            "response.output_item.added",
        ),
    ]
    for number, token in enumerate(_tokens(count), start=2):
        out.append(
            _sse(
                {
                    "type": kind,
                    "sequence_number": number,
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": token,
                },
                kind,
            )
        )
    usage = {
        "input_tokens": 1337,
        "input_tokens_details": {"cached_tokens": 1280},
        "output_tokens": count,
        "output_tokens_details": {"reasoning_tokens": 0},
    }
    done = {**response, "status": "completed", "usage": usage}
    out.append(
        _sse({"type": "response.completed", "sequence_number": count + 2, "response": done}, "response.completed")
    )
    return b"".join(out)


STREAMS: dict[str, tuple[str, Callable[[int, bool], bytes]]] = {
    "openai_chat": ("/v1/chat/completions", openai_chat),
    "anthropic": ("/v1/messages", anthropic),
    "responses": ("/v1/responses", responses),
}


def socket_reads(body: bytes) -> list[bytes]:
    rng = random.Random(11)
    chunks, start = [], 0
    while start < len(body):
        size = rng.randint(64, 2048)
        chunks.append(body[start : start + size])
        start += size
    return chunks


def event_reads(body: bytes) -> list[bytes]:
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


def cpu_seconds(path: str, chunks: Iterable[bytes]) -> float:
    log = structlog.wrap_logger(
        CapturingLogger(), processors=[], wrapper_class=structlog.make_filtering_bound_logger(0)
    ).bind(request_id="bench")
    began = time.process_time()
    observer = telemetry_for(endpoint_for_path(path.encode()), log)
    for chunk in chunks:
        observer.chunk(chunk)
    observer.finished(StreamEnd.COMPLETE)
    elapsed = time.process_time() - began
    summary = observer.summary()
    assert summary.ended == "clean" and not summary.parser_error, summary
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    print(f"{'stream':24} {'reads':7} {'MB':>6} {'events':>7} {'median CPU s/MB':>16} {'MB/s':>7}")
    overall: list[float] = []
    for name, (path, build) in STREAMS.items():
        for tool in (False, True):
            body = build(args.events, tool)
            megabytes = len(body) / 1e6
            for reads_name, reads in (("socket", socket_reads), ("event", event_reads)):
                chunks = reads(body)
                assert b"".join(chunks) == body
                runs = [cpu_seconds(path, chunks) for _ in range(args.runs)]
                per_mb = statistics.median(runs) / megabytes
                overall.append(per_mb)
                label = f"{name}{' tool' if tool else ' text'}"
                print(
                    f"{label:24} {reads_name:7} {megabytes:6.2f} {body.count(b'data:'):7d} {per_mb:16.4f} "
                    f"{1 / per_mb:7.1f}"
                )
    print(f"median over all streams: {statistics.median(overall):.4f} CPU s per MB of stream")


if __name__ == "__main__":
    main()
