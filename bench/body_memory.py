"""Memory under large uploads: peak RSS of the proxy and /healthz latency meanwhile.

Starts the fake upstream of bench/livezone.py and ``twistd -n headroom``
(default settings), then sends ``--uploads`` request bodies of ``--size``
bytes at once, each on its own connection, to a path that is not compressed
(``/v1/files``), while a probe client times ``GET /healthz`` every 10 ms.
Reports the proxy main process's peak RSS (VmHWM) over its baseline, the
statuses the uploads got, and the probe's p50 and maximum.

With ``--bursts N`` it sends N such bursts, ``--idle`` seconds apart, and
reports the idle RSS (VmRSS) before the first and after each: a daemon that
keeps finished bodies grows burst after burst (1.1, 1.9, ... 3.7 GB once);
the target is every idle figure within 100 MiB of the first. Exit status 1
if it is missed.

Usage: ``.venv/bin/python bench/body_memory.py [--uploads 6] [--size 90000000] [--budget 1GiB] [--bursts 6]``
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livezone import Client, start  # noqa: E402
from processes import HOST, Processes  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


IDLE_MARGIN_MIB = 100


def upload(port: int, size: int, statuses: list[str]) -> None:
    sock = socket.create_connection((HOST, port))
    head = (
        "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode())
        chunk = b"x" * (1 << 20)
        sent = 0
        while sent < size:
            sock.sendall(chunk[: min(len(chunk), size - sent)])
            sent += min(len(chunk), size - sent)
        statuses.append(sock.recv(64).split(b"\r\n", 1)[0].decode())
    except OSError as error:  # a refused upload is closed by the proxy mid-send
        reply = b""
        try:
            reply = sock.recv(64)
        except OSError:
            pass
        statuses.append(reply.split(b"\r\n", 1)[0].decode() or f"closed ({type(error).__name__})")
    finally:
        sock.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--uploads", type=int, default=6)
    parser.add_argument("--size", type=int, default=90_000_000)
    parser.add_argument("--budget", default=None, help="--max-inflight-body-bytes for the proxy")
    parser.add_argument("--bursts", type=int, default=1, help="bursts of uploads, idle RSS after each")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of idle after each burst")
    args = parser.parse_args()
    processes = Processes(Path(tempfile.mkdtemp(prefix="headroom-body-memory-")))
    options: tuple[str, ...] = ("--max-inflight-body-bytes", args.budget) if args.budget else ()
    try:
        ports = start(processes, options=options)
        proxy_pid = next(s.process.pid for s in processes.spawned if s.name == "proxy")
        baseline = peak_rss_mib(proxy_pid)
        probe_ms: list[float] = []
        done = threading.Event()

        def probe() -> None:
            client = Client(ports.proxy)
            while not done.is_set():
                probe_ms.append(client.request("GET", "/healthz"))
                time.sleep(0.01)
            client.close()

        prober = threading.Thread(target=probe)
        prober.start()
        statuses: list[str] = []
        idle = [rss_mib(proxy_pid)]
        for _ in range(args.bursts):
            uploads = [
                threading.Thread(target=upload, args=(ports.proxy, args.size, statuses)) for _ in range(args.uploads)
            ]
            for thread in uploads:
                thread.start()
            for thread in uploads:
                thread.join()
            time.sleep(args.idle)
            idle.append(rss_mib(proxy_pid))
        done.set()
        prober.join()
        peak = peak_rss_mib(proxy_pid)
    finally:
        processes.stop_all()
    print(f"{args.bursts} x {args.uploads} uploads of {args.size / 1e6:.0f} MB: statuses {sorted(set(statuses))}")
    print(f"proxy RSS: baseline {baseline:.0f} MiB, peak {peak:.0f} MiB (+{peak - baseline:.0f} MiB)")
    print("idle RSS before and after each burst (MiB): " + ", ".join(f"{mib:.0f}" for mib in idle))
    print(
        f"/healthz meanwhile: p50 {statistics.median(probe_ms):.1f} ms, "
        f"max {max(probe_ms):.1f} ms ({len(probe_ms)} probes)"
    )
    grown = max(idle) - idle[0]
    print(f"{'PASS' if grown <= IDLE_MARGIN_MIB else 'FAIL'}: idle RSS grew at most {grown:.0f} MiB (target 100)")
    return 0 if grown <= IDLE_MARGIN_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
