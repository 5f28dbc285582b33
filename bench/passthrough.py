"""Passthrough overhead: small POSTs through `twistd -n headroom` vs straight to the upstream.

Spawns a fake upstream (a tiny asyncio HTTP/1.1 server in its own process
that answers every POST with a small chat-completion JSON, keep-alive) and
two real proxies (`twistd -n headroom`, compression on with default
settings, and compression off), then measures, in one run:

1. latency on ONE keep-alive connection per target: the three targets are
   hit in turn, one request each, rotating the order, so background load on
   a shared machine falls on all of them alike. Added p50/p99 is the
   proxy's percentile minus the direct one; the p50 is also given as the
   median over rounds.
2. requests/second at 32 concurrent connections with `wrk` (a small Lua
   script sets the POST body), or with a Python load generator when wrk is
   absent. Runs alternate direct / proxy / proxy and the median is taken.

The request body is a small chat completion (well under the 512-byte block
threshold), so it measures the proxy path, not a compressor. The upstream
also counts the connections it accepted from the proxies (the ones whose
requests carry X-Forwarded-For), to show that the pool reuses them.

Usage: ``.venv/bin/python bench/passthrough.py [--requests N] [--duration S] [--rounds R]``
Everything it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import HOST, Processes, Spawned, free_port, serve_until_sigterm, twistd_path, wait_until  # noqa: E402

PATH = "/v1/chat/completions"
STATS_PATH = "/__bench/stats"
CONCURRENCY = 32

REQUEST_BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a terse assistant."},
            {"role": "user", "content": "Say hello in one word."},
        ],
        "max_tokens": 8,
        "temperature": 0,
    },
    separators=(",", ":"),
).encode()
REQUEST_HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "Bearer sk-bench-0000000000000000",
    "User-Agent": "headroom-bench/1",
    "Accept": "application/json",
}
RESPONSE_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello."},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 24, "completion_tokens": 2, "total_tokens": 26},
    },
    separators=(",", ":"),
).encode()


# --------------------------------------------------------------------------
# The fake upstream (runs in its own process: `passthrough.py --serve-upstream PORT`)


class _UpstreamStats:
    connections = 0
    proxied_connections = 0
    requests = 0
    proxied_requests = 0


class _FakeUpstream(asyncio.Protocol):
    """Minimal HTTP/1.1: Content-Length request bodies, keep-alive, a fixed JSON answer."""

    _response = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/json\r\n"
        b"x-request-id: req_fake_upstream\r\n"
        b"Content-Length: %d\r\n\r\n" % len(RESPONSE_BODY)
    ) + RESPONSE_BODY

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._buffer = b""
        self._proxied = False
        _UpstreamStats.connections += 1

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end == -1:
                return
            head = self._buffer[:end].lower()
            match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
            length = int(match.group(1)) if match else 0
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        if head.startswith(b"get " + STATS_PATH.encode()):
            body = json.dumps(vars_of_stats()).encode()
            self._transport.write(  # type: ignore[attr-defined]
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            return
        _UpstreamStats.requests += 1
        if b"\r\nx-forwarded-for:" in head:
            _UpstreamStats.proxied_requests += 1
            if not self._proxied:
                self._proxied = True
                _UpstreamStats.proxied_connections += 1
        self._transport.write(self._response)  # type: ignore[attr-defined]


def vars_of_stats() -> dict[str, int]:
    return {
        "connections": _UpstreamStats.connections,
        "proxied_connections": _UpstreamStats.proxied_connections,
        "requests": _UpstreamStats.requests,
        "proxied_requests": _UpstreamStats.proxied_requests,
    }


def serve_upstream(port: int) -> None:
    serve_until_sigterm(_FakeUpstream, port)


def start_proxy(processes: Processes, name: str, upstream_port: int, compression: str) -> tuple[Spawned, int]:
    port = free_port()
    argv = [
        twistd_path(),
        "-n",
        "--pidfile=",
        "headroom",
        "--listen",
        f"tcp:{port}:interface={HOST}",
        "--openai-upstream",
        f"http://{HOST}:{upstream_port}",
        "--log-level",
        "warning",
    ]
    if compression != "live_zone":
        argv += ["--compression", compression]
    return processes.spawn(name, argv), port


def upstream_stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://{HOST}:{port}{STATS_PATH}", timeout=5) as response:
        stats: dict[str, int] = json.loads(response.read())
        return stats


# --------------------------------------------------------------------------
# Latency on one keep-alive connection


def raw_request(port: int) -> bytes:
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {HOST}:{port}", f"Content-Length: {len(REQUEST_BODY)}"]
    lines += [f"{name}: {value}" for name, value in REQUEST_HEADERS.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + REQUEST_BODY


class KeepAliveClient:
    """One blocking keep-alive connection that sends a request and reads one response."""

    def __init__(self, port: int) -> None:
        self._sock = socket.create_connection((HOST, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._request = raw_request(port)
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def timed_request(self) -> int:
        """Send one request, read the whole response; return the round trip in ns."""
        started = time.perf_counter_ns()
        self._sock.sendall(self._request)
        status = self._read_response()
        elapsed = time.perf_counter_ns() - started
        if status != 200:
            raise RuntimeError(f"unexpected status {status}")
        return elapsed

    def _read_response(self) -> int:
        while (end := self._buffer.find(b"\r\n\r\n")) == -1:
            self._recv()
        head = self._buffer[:end].lower()
        self._buffer = self._buffer[end + 4 :]
        status = int(head.split(b" ", 2)[1])
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match:
            length = int(match.group(1))
            while len(self._buffer) < length:
                self._recv()
            self._buffer = self._buffer[length:]
        elif b"\r\ntransfer-encoding: chunked" in head:
            while (last := self._buffer.find(b"\r\n0\r\n\r\n")) == -1 and not self._buffer.startswith(b"0\r\n\r\n"):
                self._recv()
            self._buffer = b"" if last == -1 else self._buffer[last + 7 :]
        else:
            raise RuntimeError("response without a length")
        return status

    def _recv(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        self._buffer += data


def percentile(sorted_values: list[float], fraction: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class LatencyResult:
    samples_ms: list[float]
    round_p50s: list[float]

    @property
    def p50(self) -> float:
        return percentile(sorted(self.samples_ms), 0.50)

    @property
    def p99(self) -> float:
        return percentile(sorted(self.samples_ms), 0.99)


def measure_latency(targets: dict[str, int], per_target: int, rounds: int, warmup: int) -> dict[str, LatencyResult]:
    clients = {name: KeepAliveClient(port) for name, port in targets.items()}
    names = list(targets)
    try:
        for _ in range(warmup):
            for name in names:
                clients[name].timed_request()
        results = {name: LatencyResult([], []) for name in names}
        per_round = max(1, per_target // rounds)
        for _ in range(rounds):
            round_samples: dict[str, list[float]] = {name: [] for name in names}
            for i in range(per_round):
                shift = i % len(names)
                for name in names[shift:] + names[:shift]:
                    round_samples[name].append(clients[name].timed_request() / 1e6)
            for name in names:
                results[name].samples_ms.extend(round_samples[name])
                results[name].round_p50s.append(statistics.median(round_samples[name]))
        return results
    finally:
        for client in clients.values():
            client.close()


# --------------------------------------------------------------------------
# Throughput at 32 connections


@dataclass
class LoadRun:
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int


WRK_LUA = """\
wrk.method = "POST"
wrk.body = {body}
{headers}
"""


def write_wrk_script(workdir: Path) -> Path:
    headers = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in REQUEST_HEADERS.items())
    path = workdir / "post.lua"
    path.write_text(WRK_LUA.format(body=json.dumps(REQUEST_BODY.decode()), headers=headers))
    return path


def _wrk_ms(text: str) -> float:
    number = float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]
    if text.endswith("us"):
        return number / 1000
    if text.endswith("ms"):
        return number
    if text.endswith("m"):
        return number * 60000
    return number * 1000  # seconds


def run_wrk(wrk: str, script: Path, port: int, duration: float, threads: int) -> LoadRun:
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{CONCURRENCY}",
        f"-d{duration:g}s",
        "--latency",
        "-s",
        str(script),
        f"http://{HOST}:{port}{PATH}",
    ]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.M)
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out):
        errors += int(non_2xx.group(1))
    if socket_errors := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(n) for n in socket_errors.groups())
    return LoadRun(rps, _wrk_ms(p50.group(1)) if p50 else None, _wrk_ms(p99.group(1)) if p99 else None, errors)


def run_python_load(port: int, duration: float) -> LoadRun:
    """The fallback when wrk is absent: 32 asyncio connections, each one request at a time."""
    request = raw_request(port)
    latencies: list[float] = []
    errors = 0

    async def connection(deadline: float) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while (started := time.perf_counter()) < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
                match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                await reader.readexactly(int(match.group(1)) if match else 0)
                latencies.append((time.perf_counter() - started) * 1000)
        finally:
            writer.close()

    async def main() -> float:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(connection(deadline) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    latencies.sort()
    return LoadRun(len(latencies) / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors)


def measure_throughput(
    targets: dict[str, int], duration: float, rounds: int, wrk: str | None, workdir: Path, threads: int
) -> dict[str, list[LoadRun]]:
    script = write_wrk_script(workdir) if wrk else None
    names = list(targets)
    runs: dict[str, list[LoadRun]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            port = targets[name]
            if wrk and script:
                runs[name].append(run_wrk(wrk, script, port, duration, threads))
            else:
                runs[name].append(run_python_load(port, duration))
    return runs


# --------------------------------------------------------------------------
# Report


def stats_delta(before: dict[str, int], after: dict[str, int]) -> tuple[int, int]:
    return (
        after["proxied_connections"] - before["proxied_connections"],
        after["proxied_requests"] - before["proxied_requests"],
    )


def report(
    latency: dict[str, LatencyResult],
    throughput: dict[str, list[LoadRun]],
    load_tool: str,
    pool_use: list[tuple[str, int, int]],
) -> Iterator[str]:
    direct = latency["direct"]
    yield ""
    yield f"Latency, one keep-alive connection each, interleaved ({len(direct.samples_ms)} requests per target)"
    yield (
        f"{'target':<22}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'added p99':>11}{'p50 ratio':>11}"
        f"{'added p50 by round (median, min-max)':>40}"
    )
    for name, result in latency.items():
        if name == "direct":
            yield f"{name:<22}{result.p50:>9.3f}{result.p99:>9.3f}{'':>11}{'':>11}{'':>11}"
            continue
        added_rounds = sorted(p - d for p, d in zip(result.round_p50s, direct.round_p50s, strict=True))
        spread = f"{statistics.median(added_rounds):.3f} ({added_rounds[0]:.3f}-{added_rounds[-1]:.3f})"
        yield (
            f"{name:<22}{result.p50:>9.3f}{result.p99:>9.3f}{result.p50 - direct.p50:>11.3f}"
            f"{result.p99 - direct.p99:>11.3f}{result.p50 / direct.p50:>11.2f}{spread:>40}"
        )
    direct_rps = statistics.median(run.rps for run in throughput["direct"])
    rounds = len(throughput["direct"])
    yield ""
    yield f"Throughput, {CONCURRENCY} connections, {load_tool}, median of {rounds} interleaved runs"
    yield f"{'target':<22}{'req/s':>9}{'runs (req/s)':>30}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs direct':>11}"
    for name, runs in throughput.items():
        rps = statistics.median(run.rps for run in runs)
        each = " ".join(f"{run.rps:.0f}" for run in runs)
        p50 = statistics.median(run.p50_ms for run in runs if run.p50_ms is not None)
        p99 = statistics.median(run.p99_ms for run in runs if run.p99_ms is not None)
        errors = sum(run.errors for run in runs)
        yield f"{name:<22}{rps:>9.0f}{each:>30}{p50:>9.2f}{p99:>9.2f}{errors:>8}{rps / direct_rps:>11.3f}"
    yield ""
    yield "Upstream connections opened by the proxies (pool reuse)"
    for phase, connections, requests in pool_use:
        yield f"  {phase:<36}{connections:>6} connections for {requests} proxied requests"
    yield "  (wrk stops with requests in flight; the proxy drops those upstream connections,"
    yield "  so each load run may reopen up to 32 per proxy)"
    yield ""
    yield "Targets: added p50 <= 0.5 ms, >= 1000 req/s through the proxy."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="latency samples per target (default 3000)")
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds (default 5)")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run (default 5)")
    parser.add_argument("--load-rounds", type=int, default=3, help="load runs per target (default 3)")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: 2 cores are shared)")
    parser.add_argument("--python-load", action="store_true", help="use the Python load generator even if wrk exists")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return

    wrk = None if args.python_load else shutil.which("wrk")
    with tempfile.TemporaryDirectory(prefix="headroom-bench-") as tmp:
        processes = Processes(Path(tmp))
        try:
            upstream_port = free_port()
            upstream = processes.spawn(
                "upstream", [sys.executable, os.path.abspath(__file__), "--serve-upstream", str(upstream_port)]
            )
            proxy_on, on_port = start_proxy(processes, "proxy-compression-on", upstream_port, "live_zone")
            proxy_off, off_port = start_proxy(processes, "proxy-compression-off", upstream_port, "off")
            wait_until(upstream, f"http://{HOST}:{upstream_port}{STATS_PATH}")
            for proxy, port in ((proxy_on, on_port), (proxy_off, off_port)):
                wait_until(proxy, f"http://{HOST}:{port}/readyz")
            targets = {"direct": upstream_port, "proxy compression on": on_port, "proxy compression off": off_port}
            print(
                f"upstream :{upstream_port}, proxies :{on_port} (compression on), :{off_port} (off); "
                f"body {len(REQUEST_BODY)} B -> {len(RESPONSE_BODY)} B",
                flush=True,
            )

            pool_use: list[tuple[str, int, int]] = []
            before = upstream_stats(upstream_port)
            print(f"latency: {args.requests} requests per target ...", flush=True)
            latency = measure_latency(targets, args.requests, args.rounds, warmup=200)
            after = upstream_stats(upstream_port)
            pool_use.append(("latency (2 proxies, 1 client conn each)", *stats_delta(before, after)))

            tool = "wrk" if wrk else "Python load generator"
            print(f"throughput: {tool}, {args.load_rounds} x {args.duration:g} s per target ...", flush=True)
            before = after
            throughput = measure_throughput(targets, args.duration, args.load_rounds, wrk, Path(tmp), args.wrk_threads)
            after = upstream_stats(upstream_port)
            pool_use.append((f"load (2 proxies, {CONCURRENCY} client conns)", *stats_delta(before, after)))
            for line in report(latency, throughput, tool, pool_use):
                print(line)
            for spawned in processes.spawned:
                if spawned.process.poll() is not None:
                    print(f"warning: {spawned.name} exited during the run:\n{spawned.log_tail()}")
        finally:
            processes.stop_all()


if __name__ == "__main__":
    main()
