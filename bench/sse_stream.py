"""Streaming benchmark: a 2,000-event stream through the proxy vs direct, in one run.

Three processes on loopback, so the client's clock is not shared with the
servers' reactor: a fake upstream (this script with ``--serve-upstream``)
that streams realistic provider events, the proxy as it is deployed
(``twistd -n headroom``, compression on, SSE telemetry on, JSON logs), and
this process as the client on a blocking socket. A second proxy runs with
``--compression off`` to tell the compression stage's share from the relay's.
Each run alternates direct and proxied requests to the same upstream and
measures, on the client:

- time to first byte (request sent -> first response byte),
- total time (request sent -> last byte of the stream),

and checks that the proxied body is byte-identical to the direct one.
Scenarios: each provider's 2,000-event text stream written back to back
("burst": the proxy's throughput), and the chat stream paced one event per
millisecond ("paced": what a token stream looks like, where the proxy should
add nothing but a hop). It also reports the proxy process's CPU per MB
relayed (Linux /proc), and the SSE parser's own CPU per MB from
``bench/sse_parser.py``.

Usage: ``.venv/bin/python bench/sse_stream.py [--runs N] [--paced-runs N] [--events N]``
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sse_parser  # noqa: E402
from processes import free_port  # noqa: E402

BUILDERS: dict[str, Callable[[int, bool], bytes]] = {
    "/v1/chat/completions": sse_parser.openai_chat,
    "/v1/messages": sse_parser.anthropic,
    "/v1/responses": sse_parser.responses,
}
REQUEST_BODY = json.dumps(
    {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Write a long answer."}],
    }
).encode()


def stream_events(path: str, events: int) -> list[bytes]:
    body = BUILDERS[path](events, False)
    return [event + b"\n\n" for event in body.split(b"\n\n") if event]


# -- the fake upstream (child process) -------------------------------------------------


def serve_upstream(events: int) -> None:
    """Stream the provider's events for the request path; `?pace_us=N` spaces them N microseconds apart."""
    from twisted.internet import reactor
    from twisted.web.resource import Resource
    from twisted.web.server import NOT_DONE_YET, Request, Site

    streams = {path: stream_events(path, events) for path in BUILDERS}

    class Streamer(Resource):
        isLeaf = True

        def render_POST(self, request: Request) -> Any:
            request.content.read()
            path = request.path.decode()
            pace = int((request.args.get(b"pace_us") or [b"0"])[0]) / 1e6
            chunks = streams[path]
            request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
            gone: list[object] = []
            request.notifyFinish().addBoth(gone.append)
            if not pace:
                for chunk in chunks:
                    request.write(chunk)
                request.finish()
                return NOT_DONE_YET

            def step(index: int) -> None:
                if gone:
                    return
                if index == len(chunks):
                    request.finish()
                    return
                request.write(chunks[index])
                reactor.callLater(pace, step, index + 1)

            step(0)
            return NOT_DONE_YET

    site = Site(Streamer())
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    print(port.getHost().port, flush=True)
    reactor.run()


# -- the client (this process) ---------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    ttfb: float
    total: float
    body: bytes


def fetch(port: int, target: str) -> Timing:
    """One POST with Connection: close; the stream is read to EOF and de-chunked."""
    request = (
        f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer sk-bench-dummy\r\nContent-Length: {len(REQUEST_BODY)}\r\nConnection: close\r\n\r\n"
    ).encode() + REQUEST_BODY
    parts: list[bytes] = []
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        first = sock.recv(1 << 16)
        ttfb = time.perf_counter() - started
        parts.append(first)
        while data := sock.recv(1 << 16):
            parts.append(data)
    total = time.perf_counter() - started
    head, _, body = b"".join(parts).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{target}: {head[:200]!r}")
    if b"transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    return Timing(ttfb, total, body)


def dechunk(data: bytes) -> bytes:
    out, position = [], 0
    while True:
        line_end = data.index(b"\r\n", position)
        size = int(data[position:line_end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[line_end + 2 : line_end + 2 + size])
        position = line_end + 2 + size + 2


def wait_ready(port: int, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the proxy did not become ready")


def cpu_seconds_of(pid: int) -> float | None:
    """utime + stime of a process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Scenario:
    label: str
    path: str
    pace_us: int
    runs: int


@dataclass
class Target:
    label: str
    port: int
    pid: int | None = None  # a proxy process, whose CPU is measured


def measure(scenario: Scenario, targets: list[Target]) -> list[dict[str, Any]]:
    """Interleaved runs against every target; medians, after one warm-up request each."""
    path = scenario.path + (f"?pace_us={scenario.pace_us}" if scenario.pace_us else "")
    reference = hashlib.sha256(fetch(targets[0].port, path).body).digest()
    for target in targets[1:]:
        fetch(target.port, path)
    timings: dict[str, list[Timing]] = {target.label: [] for target in targets}
    cpu: dict[str, float] = {target.label: 0.0 for target in targets}
    for _ in range(scenario.runs):
        for target in targets:
            before = cpu_seconds_of(target.pid) if target.pid else None
            timing = fetch(target.port, path)
            after = cpu_seconds_of(target.pid) if target.pid else None
            if hashlib.sha256(timing.body).digest() != reference:
                raise RuntimeError(f"{scenario.label}: {target.label} delivered different bytes")
            timings[target.label].append(timing)
            if before is not None and after is not None:
                cpu[target.label] += after - before
    size = len(timings[targets[0].label][0].body)
    return [
        {
            "target": target.label,
            "bytes": size,
            "ttfb": statistics.median(t.ttfb for t in timings[target.label]),
            "total": statistics.median(t.total for t in timings[target.label]),
            "cpu_per_mb": cpu[target.label] / (size * scenario.runs / 1e6) if target.pid else None,
        }
        for target in targets
    ]


def parser_cpu_per_mb(events: int, runs: int) -> dict[str, float]:
    """The telemetry parser alone, fed socket-sized reads (see bench/sse_parser.py)."""
    result = {}
    for path, build in BUILDERS.items():
        body = build(events, False)
        chunks = sse_parser.socket_reads(body)
        seconds = statistics.median(sse_parser.cpu_seconds(path, chunks) for _ in range(runs))
        result[path] = seconds / (len(body) / 1e6)
    return result


def start_upstream(events: int) -> tuple[subprocess.Popen[bytes], int]:
    upstream = subprocess.Popen(
        [sys.executable, __file__, "--serve-upstream", "--events", str(events)], stdout=subprocess.PIPE
    )
    assert upstream.stdout is not None
    return upstream, int(upstream.stdout.readline())


def start_proxy(upstream_port: int, *flags: str) -> tuple[subprocess.Popen[bytes], int]:
    """`twistd -n headroom` as deployed (JSON logs at info, here to /dev/null)."""
    port = free_port()
    upstream_url = f"http://127.0.0.1:{upstream_port}"
    proxy = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("twistd")),
            "-n",
            "--pidfile=",
            "headroom",
            "--listen",
            f"tcp:{port}:interface=127.0.0.1",
            "--openai-upstream",
            upstream_url,
            "--anthropic-upstream",
            upstream_url,
            *flags,
        ],
        stdout=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return proxy, port


def print_table(events: int, scenarios: list[Scenario], results: list[list[dict[str, Any]]]) -> None:
    print(f"{events:,}-event streams; medians; client, fake upstream and each proxy (twistd) are separate processes")
    print(
        f"{'scenario':22} {'KB':>5} {'runs':>4}  {'target':22} {'TTFB ms':>8} {'x direct':>8} "
        f"{'total ms':>9} {'x direct':>8} {'proxy CPU s/MB':>14}"
    )
    for scenario, rows in zip(scenarios, results, strict=True):
        direct = rows[0]
        for number, row in enumerate(rows):
            head = f"{scenario.label:22} {row['bytes'] / 1024:5.0f} {scenario.runs:4d}" if number == 0 else " " * 33
            ratios = (
                (f"{'':>8}", f"{'':>8}")
                if number == 0
                else (f"{row['ttfb'] / direct['ttfb']:8.2f}", f"{row['total'] / direct['total']:8.2f}")
            )
            cpu = f"{row['cpu_per_mb']:14.4f}" if row["cpu_per_mb"] is not None else ""
            print(
                f"{head}  {row['target']:22} {row['ttfb'] * 1000:8.2f} {ratios[0]} "
                f"{row['total'] * 1000:9.1f} {ratios[1]} {cpu}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per burst scenario and target")
    parser.add_argument("--paced-runs", type=int, default=5, help="runs of the paced scenario per target")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.events)
        return

    children: list[subprocess.Popen[bytes]] = []
    try:
        upstream, upstream_port = start_upstream(args.events)
        children.append(upstream)
        proxy, proxy_port = start_proxy(upstream_port)
        children.append(proxy)
        plain, plain_port = start_proxy(upstream_port, "--compression", "off")
        children.append(plain)
        wait_ready(proxy_port)
        wait_ready(plain_port)
        targets = [
            Target("direct", upstream_port),
            Target("proxy", proxy_port, proxy.pid),
            Target("proxy, compression off", plain_port, plain.pid),
        ]
        scenarios = [
            Scenario("openai chat, burst", "/v1/chat/completions", 0, args.runs),
            Scenario("anthropic, burst", "/v1/messages", 0, args.runs),
            Scenario("responses, burst", "/v1/responses", 0, args.runs),
            Scenario("openai chat, 1 ev/ms", "/v1/chat/completions", 1000, args.paced_runs),
        ]
        results = [measure(scenario, targets) for scenario in scenarios]
    finally:
        for child in reversed(children):
            child.terminate()
            child.wait(timeout=10)

    print_table(args.events, scenarios, results)
    print("\nSSE telemetry parser alone (socket-sized reads, bench/sse_parser.py), CPU s per MB of stream:")
    for path, per_mb in parser_cpu_per_mb(args.events, runs=7).items():
        print(f"  {path:22} {per_mb:.4f}  ({1 / per_mb:.0f} MB/s)")


if __name__ == "__main__":
    main()
