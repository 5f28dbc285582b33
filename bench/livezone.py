"""Live-zone compression end to end: added latency and tokens saved, proxy vs direct.

Spawns a fake upstream (a small asyncio HTTP/1.1 server in its own process
that answers every POST with a short JSON and keeps the last body it got,
readable at ``GET /__bench/last``) and a real proxy (``twistd -n headroom``,
default settings: compression live_zone, 4 pool threads), then, in one run:

1. Added latency by size: a tool output of 10 KB, 100 KB and 1 MB of each
   content type (json, log, search, diff), cut from a real corpus sample
   (records, lines or whole files repeated until the size is reached), sent
   as a Chat Completions tool message. Direct and proxied requests alternate
   on two keep-alive connections; the table gives the medians, the added
   median, and the tokens of the tool output before and as the upstream got it.
2. The realistic corpus (bench/corpus/cases.json) sent as a Chat tool
   message, an Anthropic tool_result and a Responses function_call_output:
   tokens before/after per case and endpoint, and whether every fact listed
   for the case is still in what the upstream received. One extra row sends
   the Anthropic corpus the way Claude Code does (cache_control on the newest
   user message), which freezes the whole conversation.

Tokens are counted with the proxy's own counter for the request's model
(bpe-openai: o200k_base for current OpenAI models, cl100k_base as the estimate for others).

Usage: ``.venv/bin/python bench/livezone.py [--rounds N]``
Everything it starts is stopped before it exits. Exit status 1 if a fact
was lost or an endpoint saved less than 60% of the corpus tokens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import HOST, Processes, free_port, serve_until_sigterm, wait_until  # noqa: E402

LAST_PATH = "/__bench/last"
CORPUS = Path(__file__).resolve().parent / "corpus"
SIZES = {"10KB": 10_000, "100KB": 100_000, "1MB": 1_000_000}
SAMPLES = {
    "json": "dpkg_packages_json.txt",
    "log": "pytest_failures.txt",
    "search": "grep_deprecationwarning.txt",
    "diff": "git_diff_requests_tests.txt",
}
QUERIES = {
    "json": "Which versions of openssl, libssl3 and zlib1g are installed?",
    "log": "Which tests failed and why?",
    "search": "Where does twisted/python/deprecate.py emit DeprecationWarning?",
    "diff": "How did the requests test-suite change?",
}
TARGET_SAVING = 0.60
UPSTREAM_ANSWER = (
    b'{"id":"bench","object":"chat.completion",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}]}'
)


# --------------------------------------------------------------------------
# The fake upstream (its own process: `livezone.py --serve-upstream PORT`)


class _Upstream(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies and keep-alive; remembers the last POST body."""

    last_body = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) != -1:
            head = bytes(self._buffer[:end]).lower()
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self._buffer) < total:
                return
            body = bytes(self._buffer[end + 4 : total])
            del self._buffer[:total]
            if head.startswith(b"get " + LAST_PATH.encode()):
                self._send(_Upstream.last_body)
            else:
                _Upstream.last_body = body
                self._send(UPSTREAM_ANSWER)

    def _send(self, body: bytes) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        self._transport.write(head + body)  # type: ignore[attr-defined]


def serve_upstream(port: int) -> None:
    serve_until_sigterm(_Upstream, port)


@dataclass(frozen=True)
class Ports:
    upstream: int
    proxy: int


def start(
    processes: Processes,
    threads: int | None = None,
    switch_interval: float | None = None,
    options: tuple[str, ...] = ("--compression", "live_zone"),
) -> Ports:
    """The fake upstream and `twistd -n headroom` pointed at it, both ready.

    `switch_interval` (seconds) runs twistd under `sys.setswitchinterval`,
    to see how much GIL hand-over delay costs the reactor thread; `options`
    are further twistd flags (this benchmark measures live-zone mode).
    """
    upstream = free_port()
    fake = processes.spawn(
        "upstream", [sys.executable, str(Path(__file__).resolve()), "--serve-upstream", str(upstream)]
    )
    wait_until(fake, f"http://{HOST}:{upstream}{LAST_PATH}")
    proxy = free_port()
    launcher = [sys.executable, "-c", TWISTD_WITH_SWITCH_INTERVAL, str(switch_interval or sys.getswitchinterval())]
    argv = [
        *launcher,
        "-n",
        "--pidfile=",
        "headroom",
        "--listen",
        f"tcp:{proxy}:interface={HOST}",
        "--openai-upstream",
        f"http://{HOST}:{upstream}",
        "--anthropic-upstream",
        f"http://{HOST}:{upstream}",
        *options,
    ]
    if threads is not None:
        argv += ["--threads", str(threads)]
    wait_until(processes.spawn("proxy", argv), f"http://{HOST}:{proxy}/readyz")
    return Ports(upstream, proxy)


TWISTD_WITH_SWITCH_INTERVAL = (
    "import sys; from twisted.scripts.twistd import run; "
    "sys.setswitchinterval(float(sys.argv.pop(1))); sys.argv[0] = 'twistd'; run()"
)


def last_upstream_body(ports: Ports) -> bytes:
    with urllib.request.urlopen(f"http://{HOST}:{ports.upstream}{LAST_PATH}", timeout=10) as response:
        body: bytes = response.read()
        return body


# --------------------------------------------------------------------------
# A blocking keep-alive client


class Client:
    """One keep-alive connection: send a request, read the whole response, time it."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._sock = socket.create_connection((HOST, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json") -> float:
        """Round trip in ms; raises unless the status is 200."""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self._port}\r\nContent-Type: {content_type}\r\n"
            f"Authorization: Bearer sk-bench-dummy\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        self._sock.sendall(head + body)
        status = self._read_response()
        elapsed = (time.perf_counter() - started) * 1000.0
        if status != 200:
            raise RuntimeError(f"{method} {path}: status {status}")
        return elapsed

    def _read_response(self) -> int:
        while (end := self._buffer.find(b"\r\n\r\n")) == -1:
            self._recv()
        head = self._buffer[:end].lower()
        self._buffer = self._buffer[end + 4 :]
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match is None:
            raise RuntimeError("response without Content-Length")
        length = int(match.group(1))
        while len(self._buffer) < length:
            self._recv()
        self._buffer = self._buffer[length:]
        return int(head.split(b" ", 2)[1])

    def _recv(self) -> None:
        data = self._sock.recv(1 << 20)
        if not data:
            raise ConnectionError("connection closed")
        self._buffer += data


# --------------------------------------------------------------------------
# Request bodies for the three endpoints


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    model: str
    build: Callable[[str, str], dict[str, Any]]
    tool_text: Callable[[dict[str, Any]], str]


def chat_request(text: str, query: str) -> dict[str, Any]:
    return {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a coding agent."},
            {"role": "user", "content": query},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "run", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": text},
        ],
    }


def anthropic_request(text: str, query: str, marked: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": "toolu_1", "content": text}
    if marked:
        result["cache_control"] = {"type": "ephemeral"}
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": query},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "run", "input": {}}]},
            {"role": "user", "content": [result]},
        ],
    }


def responses_request(text: str, query: str) -> dict[str, Any]:
    return {
        "model": "gpt-4.1",
        "input": [
            {"role": "user", "content": query},
            {"type": "function_call", "call_id": "call_1", "name": "run", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": text},
        ],
    }


ENDPOINTS = [
    Endpoint("chat tool", "/v1/chat/completions", "gpt-4o", chat_request, lambda d: d["messages"][3]["content"]),
    Endpoint(
        "anthropic tool_result",
        "/v1/messages",
        "claude-sonnet-4-6",
        anthropic_request,
        lambda d: d["messages"][2]["content"][0]["content"],
    ),
    Endpoint("responses fn_output", "/v1/responses", "gpt-4.1", responses_request, lambda d: d["input"][2]["output"]),
]
CLAUDE_CODE = Endpoint(
    "anthropic, newest msg marked",
    "/v1/messages",
    "claude-sonnet-4-6",
    lambda text, query: anthropic_request(text, query, marked=True),
    lambda d: d["messages"][2]["content"][0]["content"],
)


# --------------------------------------------------------------------------
# Sized samples


def units(kind: str, text: str) -> tuple[list[Any], Callable[[list[Any]], str]]:
    """Split a sample into repeatable units and return a function that joins some back."""
    if kind == "json":
        return json.loads(text), lambda records: json.dumps(records, indent=2)
    if kind == "diff":
        files = re.split(r"(?m)^(?=diff )", text)
        return [f for f in files if f], lambda chunks: "".join(chunks)
    return text.splitlines(keepends=True), lambda lines: "".join(lines)


def sized(kind: str, size: int) -> str:
    """The kind's sample, its units repeated (or cut) until it is about `size` bytes."""
    pieces, join = units(kind, (CORPUS / SAMPLES[kind]).read_text())
    chosen: list[Any] = []
    total = 0
    while total < size:
        piece = pieces[len(chosen) % len(pieces)]
        total += len(json.dumps(piece)) if kind == "json" else len(piece.encode())
        chosen.append(piece)
    text = join(chosen)
    while len(text.encode()) > size * 1.02 and len(chosen) > 1:
        chosen.pop()
        text = join(chosen)
    return text


# --------------------------------------------------------------------------
# Measurements


def tokens(model: str, text: str) -> int:
    from headroom_twisted.compress.blocks.tokens import counter_for

    return counter_for(model).count(text)


def saving(before: int, after: int) -> str:
    return f"{100.0 * (before - after) / before:5.1f}%" if before else "    -"


def latency_by_size(ports: Ports, rounds: dict[str, int]) -> None:
    print("\n1. Added latency, Chat Completions tool message (median ms; tokens of the tool output)")
    print(
        f"{'type':7} {'size':>6} {'bytes':>9} {'direct':>8} {'proxy':>8} {'added':>8} "
        f"{'tok before':>10} {'tok after':>9} {'saved':>6}"
    )
    direct, proxy = Client(ports.upstream), Client(ports.proxy)
    try:
        for kind in SAMPLES:
            for label, size in SIZES.items():
                text = sized(kind, size)
                body = json.dumps(chat_request(text, QUERIES[kind])).encode()
                proxy.request("POST", "/v1/chat/completions", body)  # warm this shape once
                direct_ms, proxy_ms = [], []
                for index in range(rounds[label]):
                    order = [(direct, direct_ms), (proxy, proxy_ms)]
                    for client, samples in order if index % 2 else reversed(order):
                        samples.append(client.request("POST", "/v1/chat/completions", body))
                proxy.request("POST", "/v1/chat/completions", body)
                received = ENDPOINTS[0].tool_text(json.loads(last_upstream_body(ports)))
                before, after = tokens("gpt-4o", text), tokens("gpt-4o", received)
                d, p = statistics.median(direct_ms), statistics.median(proxy_ms)
                print(
                    f"{kind:7} {label:>6} {len(text.encode()):>9,} {d:>8.2f} {p:>8.2f} {p - d:>8.2f} "
                    f"{before:>10,} {after:>9,} {saving(before, after):>6}",
                    flush=True,
                )
    finally:
        direct.close()
        proxy.close()


@dataclass
class Totals:
    before: int = 0
    after: int = 0
    facts: int = 0
    kept: int = 0
    added_ms: list[float] = field(default_factory=list)


def corpus_by_endpoint(ports: Ports, rounds: int) -> list[str]:
    cases = json.loads((CORPUS / "cases.json").read_text())
    print("\n2. Realistic corpus per endpoint (tokens of the tool output as the upstream got it)")
    print(f"{'endpoint':30} {'case':26} {'tok before':>10} {'tok after':>9} {'saved':>6} {'facts':>7} {'added ms':>8}")
    failures: list[str] = []
    summary: list[tuple[str, Totals]] = []
    direct, proxy = Client(ports.upstream), Client(ports.proxy)
    try:
        for endpoint in [*ENDPOINTS, CLAUDE_CODE]:
            totals = Totals()
            for case in cases:
                text = (CORPUS / case["file"]).read_text()
                body = json.dumps(endpoint.build(text, case["query"])).encode()
                direct_ms, proxy_ms = [], []
                for _ in range(rounds):
                    direct_ms.append(direct.request("POST", endpoint.path, body))
                    proxy_ms.append(proxy.request("POST", endpoint.path, body))
                received = endpoint.tool_text(json.loads(last_upstream_body(ports)))
                before, after = tokens(endpoint.model, text), tokens(endpoint.model, received)
                lost = [fact for fact in case["facts"] if fact not in received]
                if lost:
                    failures.append(f"{endpoint.name} / {case['name']}: lost {lost}")
                added = statistics.median(proxy_ms) - statistics.median(direct_ms)
                totals.before += before
                totals.after += after
                totals.facts += len(case["facts"])
                totals.kept += len(case["facts"]) - len(lost)
                totals.added_ms.append(added)
                print(
                    f"{endpoint.name:30} {case['name']:26} {before:>10,} {after:>9,} {saving(before, after):>6} "
                    f"{len(case['facts']) - len(lost):>3}/{len(case['facts']):<3} {added:>8.2f}",
                    flush=True,
                )
            summary.append((endpoint.name, totals))
    finally:
        direct.close()
        proxy.close()
    print(f"\n{'endpoint':30} {'tok before':>10} {'tok after':>9} {'saved':>6} {'facts':>9} {'median added ms':>15}")
    for name, totals in summary:
        print(
            f"{name:30} {totals.before:>10,} {totals.after:>9,} {saving(totals.before, totals.after):>6} "
            f"{totals.kept:>4}/{totals.facts:<4} {statistics.median(totals.added_ms):>15.2f}"
        )
        if name != CLAUDE_CODE.name and totals.after > (1 - TARGET_SAVING) * totals.before:
            failures.append(f"{name}: saved less than {TARGET_SAVING:.0%}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=0, help="rounds per size (default: 21/11/5 for 10KB/100KB/1MB)")
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    rounds = {"10KB": 21, "100KB": 11, "1MB": 5} if not args.rounds else dict.fromkeys(SIZES, args.rounds)
    with tempfile.TemporaryDirectory(prefix="headroom-bench-") as workdir:
        processes = Processes(Path(workdir))
        try:
            ports = start(processes)
            latency_by_size(ports, rounds)
            failures = corpus_by_endpoint(ports, rounds=3)
        finally:
            processes.stop_all()
    for failure in failures:
        print("FAIL", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
