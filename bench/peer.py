"""headroom vs direct vs an established peer (LiteLLM proxy) on the same fake upstream.

The peer is installed apart from the project, never in pyproject:
``python3 -m venv /tmp/peer-venv && /tmp/peer-venv/bin/pip install 'litellm[proxy]'``.
It runs as an OpenAI-compatible passthrough (one model routed to
bench/passthrough.py's fake upstream, one uvicorn worker, no master key,
the bundled cost map). Measured in one run, with the same client code as
bench/passthrough.py: latency on one keep-alive connection per target
(interleaved), req/s at 32 connections (wrk), and memory: RSS after warm-up
and per idle keep-alive connection (`--idle-connections` opened at once).

Usage: ``.venv/bin/python bench/peer.py [--peer-venv /tmp/peer-venv]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from passthrough import PATH, measure_latency, measure_throughput, start_proxy  # noqa: E402
from processes import HOST, Processes, free_port, wait_until  # noqa: E402
from soak import children, raise_nofile, rss_kib  # noqa: E402

LITELLM_CONFIG = """\
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://{host}:{port}/v1
      api_key: sk-fake
"""


def tree_rss_kib(pid: int) -> int:
    total = rss_kib(pid)
    for child in children(pid):
        try:
            total += tree_rss_kib(child)
        except OSError:
            continue
    return total


def kib_per_idle_connection(port: int, pid: int, count: int, path: str) -> float:
    before = rss_kib(pid)
    opened = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=30)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        opened.append(sock)
    for sock in opened:
        sock.recv(65536)
    time.sleep(1.0)
    during = rss_kib(pid)
    for sock in opened:
        sock.close()
    return (during - before) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-venv", type=Path, default=Path("/tmp/peer-venv"))
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--load-rounds", type=int, default=3)
    parser.add_argument("--idle-connections", type=int, default=200)
    args = parser.parse_args()
    litellm = args.peer_venv / "bin" / "litellm"
    if not litellm.exists():
        print(f"peer not installed at {litellm}: see the module docstring")
        return 1
    raise_nofile()
    passthrough_py = Path(__file__).resolve().parent / "passthrough.py"
    wrk = shutil.which("wrk")
    with tempfile.TemporaryDirectory(prefix="headroom-peer-") as tmp:
        processes = Processes(Path(tmp))
        try:
            upstream_port = free_port()
            upstream = processes.spawn(
                "upstream", [sys.executable, str(passthrough_py), "--serve-upstream", str(upstream_port)]
            )
            headroom, headroom_port = start_proxy(processes, "headroom", upstream_port, "live_zone")
            peer_port = free_port()
            config = Path(tmp) / "litellm.yaml"
            config.write_text(LITELLM_CONFIG.format(host=HOST, port=upstream_port))
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            os.environ["LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY"] = "true"
            peer = processes.spawn(
                "litellm",
                [str(litellm), "--config", str(config), "--host", HOST, "--port", str(peer_port), "--num_workers", "1"],
            )
            wait_until(upstream, f"http://{HOST}:{upstream_port}/__bench/stats")
            wait_until(headroom, f"http://{HOST}:{headroom_port}/readyz")
            wait_until(peer, f"http://{HOST}:{peer_port}/health/liveliness", timeout=120)
            targets = {"direct": upstream_port, "headroom": headroom_port, "litellm proxy": peer_port}
            print(f"latency: {args.requests} requests per target; targets {targets}", flush=True)
            latency = measure_latency(targets, args.requests, 5, warmup=100)
            print(f"throughput: wrk, {args.load_rounds} x {args.duration:g} s per target", flush=True)
            throughput = measure_throughput(targets, args.duration, args.load_rounds, wrk, Path(tmp), 1)
            memory = {}
            for name, spawned, port, health in (
                ("headroom", headroom, headroom_port, "/healthz"),
                ("litellm proxy", peer, peer_port, "/health/liveliness"),
            ):
                pid = spawned.process.pid
                main_rss = rss_kib(pid)
                all_rss = tree_rss_kib(pid)
                memory[name] = (main_rss, all_rss, kib_per_idle_connection(port, pid, args.idle_connections, health))
        finally:
            processes.stop_all()
    direct = latency["direct"]
    print()
    print(f"Latency, one keep-alive connection per target, interleaved, {len(direct.samples_ms)} requests each")
    print(f"{'target':<16}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'added p99':>11}")
    for name, result in latency.items():
        added = "" if name == "direct" else f"{result.p50 - direct.p50:>11.3f}{result.p99 - direct.p99:>11.3f}"
        print(f"{name:<16}{result.p50:>9.3f}{result.p99:>9.3f}{added}")
    print()
    print(f"Throughput, 32 connections, {'wrk' if wrk else 'Python load generator'}, median of {args.load_rounds}")
    print(f"{'target':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, runs in throughput.items():
        rps = statistics.median(run.rps for run in runs)
        p50 = statistics.median(run.p50_ms or 0.0 for run in runs)
        p99 = statistics.median(run.p99_ms or 0.0 for run in runs)
        print(f"{name:<16}{rps:>9.0f}{p50:>9.2f}{p99:>9.2f}{sum(run.errors for run in runs):>8}")
    print()
    print("Memory after the run (RSS, MiB) and per idle keep-alive connection (KiB)")
    print(f"{'target':<16}{'main process':>14}{'with children':>15}{'per idle conn':>15}")
    for name, (main_rss, all_rss, per_conn) in memory.items():
        print(f"{name:<16}{main_rss / 1024:>14.1f}{all_rss / 1024:>15.1f}{per_conn:>15.1f}")
    print("(headroom's children are its compression workers; path requested:", PATH + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
