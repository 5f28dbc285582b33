"""Soak: many concurrent SSE streams plus compressed requests through ONE `twistd -n headroom`.

Spawns a paced fake upstream (asyncio, its own process) and one proxy
(compression on, default settings), then:

1. idle connections: opens `--idle-connections` keep-alive client
   connections (each has done one request) and reads the proxy's RSS:
   memory per open connection.
2. the soak: `--streams` SSE streams (OpenAI chat chunks, one event every
   `--interval` seconds for `--duration` seconds each, started over
   `--ramp` seconds) with `--compress-rate` compressible chat requests per
   second (a 60 KB pytest log as the tool output) mixed in. Per stream: the
   largest gap between two reads at the client (the upstream's pacing is
   `--interval`) and the SHA-256 of the body against what the upstream sent.
   Every compressed request must come back 200 with fewer bytes upstream.
3. after: waits for the proxy's open descriptors to return to their
   baseline (the upstream closes idle keep-alive connections after 2 s, as
   servers do) and reads RSS again.

RSS is the proxy's main process; its compression workers are reported apart
(they hold the tokenizer and the content model and do not grow with
connections). Exit status 1 if a check fails; `--json PATH` writes the
figures (tests/e2e/load reads them).

Usage: ``.venv/bin/python bench/soak.py [--streams 500] [--duration 30] [--json out.json]``
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import HOST, Processes, free_port, serve_until_sigterm, twistd_path, wait_until  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"
STATS_PATH = "/__soak/stats"
KEEP_ALIVE_IDLE = 2.0
QUESTION = "Which tests failed and why?"


# --------------------------------------------------------------------------
# What the upstream sends (the client recomputes it to check every byte)


def sse_events(stream_id: int, count: int) -> list[bytes]:
    """`count` OpenAI chat chunks, a final chunk with usage, and `[DONE]`: one SSE event each."""
    events = []
    for index in range(count):
        chunk = {
            "id": f"chatcmpl-soak-{stream_id}",
            "object": "chat.completion.chunk",
            "created": 1741569952,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": f"token {index} of stream {stream_id}. "}}],
        }
        events.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    final = {
        "id": f"chatcmpl-soak-{stream_id}",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": count, "total_tokens": 20 + count},
    }
    events.append(b"data: " + json.dumps(final, separators=(",", ":")).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def compressible_body() -> bytes:
    log = (CORPUS / "pytest_failures.txt").read_text()[:60_000]
    return json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "user", "content": QUESTION},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "run_tests", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": log},
            ],
        }
    ).encode()


# --------------------------------------------------------------------------
# The fake upstream (its own process: `soak.py --serve-upstream PORT`)


class _Counts:
    streams = 0
    requests = 0


class PacedUpstream(asyncio.Protocol):
    """HTTP/1.1 with Content-Length bodies and keep-alive (closed after 2 s idle).

    `?sse=ID&events=N&interval=S` answers a chunked SSE stream paced at S
    seconds; anything else answers JSON with the size and SHA-256 of the body
    it received, after `?delay=S` seconds if given.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport: asyncio.Transport = transport  # type: ignore[assignment]
        self._buffer = b""
        self._busy = False
        self._idle: asyncio.TimerHandle | None = None
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle:
            self._idle.cancel()

    def _arm_idle(self) -> None:
        if self._idle:
            self._idle.cancel()
        self._idle = asyncio.get_running_loop().call_later(KEEP_ALIVE_IDLE, self._idle_close)

    def _idle_close(self) -> None:
        if not self._busy:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next()

    def _next(self) -> None:
        end = self._buffer.find(b"\r\n\r\n")
        if end == -1:
            return
        head = self._buffer[:end].decode("latin-1")
        lines = head.split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if len(self._buffer) < end + 4 + length:
            return
        body = self._buffer[end + 4 : end + 4 + length]
        self._buffer = self._buffer[end + 4 + length :]
        self._busy = True
        target = lines[0].split(" ")[1]
        asyncio.ensure_future(self._answer(target, body))

    async def _answer(self, target: str, body: bytes) -> None:
        parts = urlsplit(target)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        if parts.path == STATS_PATH:
            self._send_json({"streams": _Counts.streams, "requests": _Counts.requests})
        elif "sse" in query:
            _Counts.streams += 1
            await self._stream(int(query["sse"]), int(query.get("events", "10")), float(query.get("interval", "0.5")))
        else:
            _Counts.requests += 1
            if "delay" in query:
                await asyncio.sleep(float(query["delay"]))
            self._send_json({"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        self._busy = False
        self._arm_idle()
        if self._buffer:
            self._next()

    def _send_json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self._transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    async def _stream(self, stream_id: int, count: int, interval: float) -> None:
        self._transport.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        events = sse_events(stream_id, count)
        started = time.monotonic()
        for index, event in enumerate(events):
            if self._transport.is_closing():
                return
            # Paced against the start, so a late wake-up does not push later events back.
            delay = started + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._transport.write(b"%x\r\n%s\r\n" % (len(event), event))
        self._transport.write(b"0\r\n\r\n")


def serve_upstream(port: int) -> None:
    raise_nofile()
    serve_until_sigterm(PacedUpstream, port, backlog=2048)


# --------------------------------------------------------------------------
# Process figures from /proc


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@dataclass
class Snapshot:
    proxy_rss_kib: int
    workers_rss_kib: int
    proxy_fds: int

    @classmethod
    def of(cls, pid: int) -> Snapshot:
        workers = 0
        for child in children(pid):
            try:
                workers += rss_kib(child)
            except OSError:
                continue
        return cls(rss_kib(pid), workers, open_fds(pid))


# --------------------------------------------------------------------------
# Clients


def request_bytes(target: str, body: bytes, keep_alive: bool = False) -> bytes:
    head = [
        f"POST {target} HTTP/1.1",
        f"Host: {HOST}",
        "Content-Type: application/json",
        "Authorization: Bearer sk-soak-0000000000000000",
        f"Content-Length: {len(body)}",
    ]
    if not keep_alive:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def dechunk(data: bytes) -> bytes | None:
    body = bytearray()
    while True:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            return None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return bytes(body)
        body += data[:size]
        data = data[size + 2 :]


def parse_response(raw: bytes) -> tuple[int, bytes | None]:
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    lowered = head.lower()
    if b"transfer-encoding: chunked" in lowered:
        return status, dechunk(rest)
    return status, rest


@dataclass
class StreamResult:
    ok: bool
    max_gap: float
    error: str = ""


async def one_stream(port: int, stream_id: int, events: int, interval: float, start_at: float) -> StreamResult:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    expected = b"".join(sse_events(stream_id, events))
    target = f"/v1/chat/completions?sse={stream_id}&events={events}&interval={interval:g}"
    body = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Count."}]}'
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError as error:
        return StreamResult(False, 0.0, f"connect: {error}")
    writer.write(request_bytes(target, body))
    raw = bytearray()
    arrivals: list[float] = []
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), timeout=events * interval + 30):
            arrivals.append(time.monotonic())
            raw += chunk
    except (TimeoutError, OSError) as error:
        return StreamResult(False, 0.0, f"read: {error!r}")
    finally:
        writer.close()
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:], strict=False)]
    status, received = parse_response(bytes(raw))
    if status != 200 or received is None:
        return StreamResult(False, max(gaps, default=0.0), f"status {status}, complete={received is not None}")
    if hashlib.sha256(received).digest() != hashlib.sha256(expected).digest():
        return StreamResult(False, max(gaps, default=0.0), "body differs")
    return StreamResult(True, max(gaps, default=0.0))


@dataclass
class CompressResult:
    ok: bool
    sent: int
    upstream_bytes: int
    seconds: float
    error: str = ""


async def one_compressed(port: int, body: bytes) -> CompressResult:
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(request_bytes("/v1/chat/completions", body))
        raw = await asyncio.wait_for(reader.read(-1), timeout=60)
        writer.close()
    except (TimeoutError, OSError) as error:
        return CompressResult(False, len(body), 0, time.monotonic() - started, repr(error))
    status, received = parse_response(raw)
    seconds = time.monotonic() - started
    if status != 200 or received is None:
        return CompressResult(False, len(body), 0, seconds, f"status {status}")
    upstream = json.loads(received)["bytes"]
    ok = upstream < len(body)
    return CompressResult(ok, len(body), upstream, seconds, "" if ok else "not compressed")


async def compressed_mix(port: int, rate: float, until: float) -> list[CompressResult]:
    body = compressible_body()
    pending = []
    next_at = time.monotonic()
    while next_at < until and rate > 0:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        pending.append(asyncio.ensure_future(one_compressed(port, body)))
        next_at += 1 / rate
    return list(await asyncio.gather(*pending))


async def sample(pid: int, stop: asyncio.Event, into: list[Snapshot]) -> None:
    while not stop.is_set():
        into.append(Snapshot.of(pid))
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.5)
        except TimeoutError:
            pass


async def idle_connections(port: int, count: int, pid: int) -> tuple[Snapshot, Snapshot]:
    """Open `count` keep-alive connections that each did one request; snapshot while they are open."""
    before = Snapshot.of(pid)
    opened = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        opened.append((reader, writer))
    for reader, _ in opened:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
    await asyncio.sleep(1.0)
    during = Snapshot.of(pid)
    for _, writer in opened:
        writer.close()
    return before, during


async def wait_fds(pid: int, target: int, timeout: float) -> Snapshot:
    deadline = time.monotonic() + timeout
    snapshot = Snapshot.of(pid)
    while snapshot.proxy_fds > target and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        snapshot = Snapshot.of(pid)
    return snapshot


# --------------------------------------------------------------------------
# The run


@dataclass
class SoakReport:
    streams: int
    duration_s: float
    interval_s: float
    events_per_stream: int
    streams_ok: int
    stream_errors: list[str]
    max_gap_s: float
    p99_max_gap_s: float
    compressed_ok: int
    compressed_total: int
    compressed_errors: list[str]
    compressed_p50_s: float
    saving: float
    idle_connections: int
    kib_per_idle_connection: float
    baseline: Snapshot
    peak: Snapshot
    after: Snapshot
    kib_per_stream: float
    wall_s: float
    checks: dict[str, bool] = field(default_factory=dict)


async def soak(args: argparse.Namespace, port: int, pid: int) -> SoakReport:
    started = time.monotonic()
    events = max(1, round(args.duration / args.interval))
    # Warm up what the run will use (a stream, a compressed request), then take the baseline.
    await one_stream(port, 10**6, 2, 0.05, 0)
    await one_compressed(port, compressible_body())
    await asyncio.sleep(KEEP_ALIVE_IDLE + 1)
    baseline = await wait_fds(pid, 0, 0)
    idle_before, idle_during = await idle_connections(port, args.idle_connections, pid)
    await wait_fds(pid, baseline.proxy_fds, 15)

    snapshots: list[Snapshot] = []
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(sample(pid, stop, snapshots))
    t0 = time.monotonic() + 0.5
    ramp = args.ramp
    streams = [
        one_stream(port, stream_id, events, args.interval, t0 + ramp * stream_id / args.streams)
        for stream_id in range(args.streams)
    ]
    mix = compressed_mix(port, args.compress_rate, t0 + ramp + args.duration)
    results = await asyncio.gather(asyncio.gather(*streams), mix)
    stream_results: list[StreamResult] = results[0]
    compressed: list[CompressResult] = results[1]
    stop.set()
    await sampler
    after = await wait_fds(pid, baseline.proxy_fds, KEEP_ALIVE_IDLE + 15)
    await asyncio.sleep(1.0)
    after = Snapshot.of(pid)

    peak = max(snapshots, key=lambda snap: snap.proxy_rss_kib)
    gaps = sorted(result.max_gap for result in stream_results)
    ok_compressed = [result for result in compressed if result.ok]
    report = SoakReport(
        streams=args.streams,
        duration_s=args.duration,
        interval_s=args.interval,
        events_per_stream=events,
        streams_ok=sum(result.ok for result in stream_results),
        stream_errors=sorted({result.error for result in stream_results if not result.ok})[:10],
        max_gap_s=gaps[-1],
        p99_max_gap_s=gaps[min(len(gaps) - 1, round(0.99 * (len(gaps) - 1)))],
        compressed_ok=len(ok_compressed),
        compressed_total=len(compressed),
        compressed_errors=sorted({result.error for result in compressed if not result.ok})[:10],
        compressed_p50_s=statistics.median(result.seconds for result in compressed) if compressed else 0.0,
        saving=1 - sum(r.upstream_bytes for r in ok_compressed) / max(1, sum(r.sent for r in ok_compressed)),
        idle_connections=args.idle_connections,
        kib_per_idle_connection=(idle_during.proxy_rss_kib - idle_before.proxy_rss_kib) / max(1, args.idle_connections),
        baseline=baseline,
        peak=peak,
        after=after,
        kib_per_stream=(peak.proxy_rss_kib - baseline.proxy_rss_kib) / args.streams,
        wall_s=time.monotonic() - started,
    )
    growth = max(0, peak.proxy_rss_kib - baseline.proxy_rss_kib)
    report.checks = {
        "every stream complete and byte-identical": report.streams_ok == args.streams,
        f"no stall (max gap <= interval + {args.stall_slack:g} s)": report.max_gap_s
        <= args.interval + args.stall_slack,
        "every compressed request 200 and smaller upstream": report.compressed_ok == report.compressed_total > 0,
        "open descriptors back to baseline": after.proxy_fds <= baseline.proxy_fds,
        f"RSS back near baseline (within {args.rss_slack_mib} MiB or half the growth)": (
            after.proxy_rss_kib - baseline.proxy_rss_kib <= max(args.rss_slack_mib * 1024, growth // 2)
        ),
    }
    return report


def print_report(report: SoakReport) -> None:
    mib = 1024
    print(
        f"\nSoak: {report.streams} SSE streams x {report.duration_s:g} s "
        f"({report.events_per_stream} events, one per {report.interval_s:g} s) + "
        f"{report.compressed_total} compressed requests, one proxy process, wall {report.wall_s:.0f} s"
    )
    print(f"  streams complete, SHA-256 identical: {report.streams_ok}/{report.streams} {report.stream_errors or ''}")
    print(
        f"  largest gap between reads, per stream: max {report.max_gap_s:.3f} s, p99 {report.p99_max_gap_s:.3f} s "
        f"(upstream pacing {report.interval_s:g} s)"
    )
    print(
        f"  compressed requests: {report.compressed_ok}/{report.compressed_total} ok, "
        f"p50 {report.compressed_p50_s * 1000:.0f} ms, {report.saving:.0%} fewer bytes upstream "
        f"{report.compressed_errors or ''}"
    )
    print(f"{'':2}{'':24}{'proxy RSS MiB':>14}{'workers RSS MiB':>17}{'proxy fds':>11}")
    for name, snap in (("baseline", report.baseline), ("peak (streams open)", report.peak), ("after", report.after)):
        print(f"  {name:<24}{snap.proxy_rss_kib / mib:>14.1f}{snap.workers_rss_kib / mib:>17.1f}{snap.proxy_fds:>11}")
    print(f"  memory per idle keep-alive connection: {report.kib_per_idle_connection:.1f} KiB")
    print(f"  memory per open SSE stream (client + upstream connection): {report.kib_per_stream:.1f} KiB")
    for check, passed in report.checks.items():
        print(f"  [{'ok' if passed else 'FAIL'}] {check}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per stream")
    parser.add_argument("--interval", type=float, default=0.5, help="upstream pacing between events, s")
    parser.add_argument("--ramp", type=float, default=5.0, help="streams start over this many seconds")
    parser.add_argument("--compress-rate", type=float, default=2.0, help="compressible requests per second")
    parser.add_argument("--idle-connections", type=int, default=500)
    parser.add_argument("--stall-slack", type=float, default=1.0, help="allowed gap beyond the pacing, s")
    parser.add_argument("--rss-slack-mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1, help="soak the same proxy this many times")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--serve-upstream", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    raise_nofile()
    with tempfile.TemporaryDirectory(prefix="headroom-soak-") as tmp:
        processes = Processes(Path(tmp))
        try:
            upstream_port, port = free_port(), free_port()
            processes.spawn(
                "upstream", [sys.executable, os.path.abspath(__file__), "--serve-upstream", str(upstream_port)]
            )
            proxy = processes.spawn(
                "proxy",
                [
                    twistd_path(),
                    "-n",
                    "--pidfile=",
                    "headroom",
                    f"--listen=tcp:{port}:interface={HOST}:backlog=1024",
                    f"--openai-upstream=http://{HOST}:{upstream_port}",
                    "--log-level=warning",
                ],
            )
            wait_until(proxy, f"http://{HOST}:{port}/readyz")
            with urllib.request.urlopen(f"http://{HOST}:{upstream_port}{STATS_PATH}", timeout=5):
                pass
            reports: list[SoakReport] = []
            for _ in range(max(1, args.rounds)):
                reports.append(asyncio.run(soak(args, port, proxy.process.pid)))
                if proxy.process.poll() is not None:
                    print(f"proxy exited during the soak:\n{proxy.log_tail()}")
                    return 1
        finally:
            processes.stop_all()
    for report in reports:
        print_report(report)
    steady = steady_state_check(reports)
    if args.json:
        args.json.write_text(json.dumps([asdict(report) for report in reports], indent=2))
    return 0 if all(all(report.checks.values()) for report in reports) and steady else 1


STEADY_SLACK_MIB = 4


def steady_state_check(reports: list[SoakReport]) -> bool:
    """Memory the allocator keeps after the first round is reused, not added to.

    CPython keeps freed memory in its arenas, so RSS after a soak sits a little
    above the cold baseline; a leak shows as RSS that keeps climbing round
    after round.
    """
    if len(reports) < 2:
        return True
    first, last = reports[0].after.proxy_rss_kib, reports[-1].after.proxy_rss_kib
    passed = last - first <= STEADY_SLACK_MIB * 1024
    print(
        f"\n  [{'ok' if passed else 'FAIL'}] RSS steady across {len(reports)} rounds: after round 1 "
        f"{first / 1024:.1f} MiB, after round {len(reports)} {last / 1024:.1f} MiB "
        f"(allowed growth {STEADY_SLACK_MIB} MiB)"
    )
    return passed


if __name__ == "__main__":
    sys.exit(main())
