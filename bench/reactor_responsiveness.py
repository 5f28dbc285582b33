"""Reactor responsiveness: small requests while big bodies compress on the pool.

Starts the fake upstream and `twistd -n headroom` of bench/livezone.py
(default settings: 4 pool threads), then measures a fifth client's small
requests, one at a time on a keep-alive connection, first on an idle proxy
and then while 4 clients keep sending 1 MB tool outputs (json, log, search
and diff, one type each) for compression. Two kinds of small request are
timed, interleaved:

- passthrough: a small ``POST /v1/embeddings`` (not a compressible path, so
  it never touches the compression pool): this is what the reactor thread
  alone costs under load.
- small chat: a small ``POST /v1/chat/completions`` (compressible path, body
  far below the block threshold): the gate sends it to the pool, so it also
  waits for a free worker.

Usage: ``.venv/bin/python bench/reactor_responsiveness.py [--probes N] [--threads T]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

from livezone import (
    QUERIES,
    SAMPLES,
    Client,
    Ports,
    Processes,
    chat_request,
    sized,
    start,
)

TARGET_P99_MS = 20.0
SMALL_CHAT = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello in one word."}], "max_tokens": 8}
).encode()
SMALL_EMBEDDING = json.dumps({"model": "text-embedding-3-small", "input": "hello"}).encode()
PROBES = {"passthrough": ("/v1/embeddings", SMALL_EMBEDDING), "small chat": ("/v1/chat/completions", SMALL_CHAT)}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def probe(ports: Ports, count: int, pause_s: float = 0.005) -> dict[str, list[float]]:
    """`count` requests of each probe kind, interleaved, one at a time."""
    client = Client(ports.proxy)
    samples: dict[str, list[float]] = {name: [] for name in PROBES}
    try:
        for _ in range(count):
            for name, (path, body) in PROBES.items():
                samples[name].append(client.request("POST", path, body))
                time.sleep(pause_s)
    finally:
        client.close()
    return samples


class Load:
    """Clients that each keep one 1 MB tool output request in flight until stopped."""

    def __init__(self, ports: Ports, kinds: list[str]) -> None:
        self._bodies = [json.dumps(chat_request(sized(kind, 1_000_000), QUERIES[kind])).encode() for kind in kinds]
        self._ports = ports
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(body,), daemon=True) for body in self._bodies]
        self.latencies_ms: list[float] = []

    def __enter__(self) -> Self:
        for thread in self._threads:
            thread.start()
        time.sleep(1.0)  # let every client get a request into the pool
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _run(self, body: bytes) -> None:
        client = Client(self._ports.proxy)
        try:
            while not self._stop.is_set():
                self.latencies_ms.append(client.request("POST", "/v1/chat/completions", body))
        finally:
            client.close()


def row(label: str, values: list[float]) -> str:
    return (
        f"{label:34} {len(values):>5} {statistics.median(values):>8.2f} {percentile(values, 0.99):>8.2f} "
        f"{max(values):>8.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=300, help="requests of each kind per phase")
    parser.add_argument("--threads", type=int, default=None, help="proxy --threads (default: the proxy's default)")
    parser.add_argument("--switch-interval", type=float, default=None, help="sys.setswitchinterval for the proxy, s")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="headroom-bench-") as workdir:
        processes = Processes(Path(workdir))
        try:
            ports = start(processes, threads=args.threads, switch_interval=args.switch_interval)
            probe(ports, 20)  # warm up connections and code paths
            idle = probe(ports, args.probes)
            with Load(ports, list(SAMPLES)) as load:
                loaded = probe(ports, args.probes)
            big = load.latencies_ms
        finally:
            processes.stop_all()
    print(
        f"\nSmall requests on a fifth connection (ms); load = 4 clients x 1 MB tool outputs "
        f"({', '.join(SAMPLES)}), proxy threads = {args.threads or 'default (4)'}, "
        f"GIL switch interval = {(args.switch_interval or sys.getswitchinterval()) * 1000:g} ms"
    )
    print(f"{'':34} {'n':>5} {'p50':>8} {'p99':>8} {'max':>8}")
    for name in PROBES:
        print(row(f"{name}, idle proxy", idle[name]))
        print(row(f"{name}, under compression load", loaded[name]))
    print(row("the 1 MB requests themselves", big))
    p99 = percentile(loaded["passthrough"], 0.99)
    verdict = "meets" if p99 < TARGET_P99_MS else "MISSES"
    print(f"\npassthrough p99 under load {p99:.2f} ms {verdict} the {TARGET_P99_MS:g} ms target")
    return 0 if p99 < TARGET_P99_MS else 1


if __name__ == "__main__":
    sys.exit(main())
