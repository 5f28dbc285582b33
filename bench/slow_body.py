"""A slow-body attack on the body budget: do ordinary requests still get through?

Starts the fake upstream of bench/livezone.py and ``twistd -n headroom``
(default settings: a 1 GiB body budget), then opens ``--attackers``
connections that together announce the whole budget (eleven announce
about 93 MiB each, under the 100 MiB body limit) and each trickle
``--rate`` bytes per second (above the body-rate floor, so none is cut for
slowness), and meanwhile sends ordinary 20 KB chat completions, one every
``--interval`` seconds for ``--seconds``. A budget reserved on announced
lengths let such connections turn every ordinary request into a 503; the
target is every ordinary request answered 200.

Usage: ``.venv/bin/python bench/slow_body.py [--attackers 11] [--rate 600] [--seconds 30]``. Exit status 1
if an ordinary request failed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livezone import Client, start  # noqa: E402
from processes import HOST, Processes  # noqa: E402

BUDGET = 1024 * 1024 * 1024
"""The proxy's default --max-inflight-body-bytes."""


def trickle(port: int, announced: int, rate: int, stop: threading.Event) -> None:
    """One attacker: announce a large body, then send ``rate`` bytes a second until told to stop."""
    sock = socket.create_connection((HOST, port))
    try:
        sock.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {announced}\r\n\r\n".encode()
        )
        while not stop.wait(0.25):
            sock.sendall(b" " * (rate // 4))
    except OSError:
        pass
    finally:
        sock.close()


def ordinary_body() -> bytes:
    rows = [{"id": i, "state": "ok"} for i in range(600)]
    messages = [{"role": "user", "content": "which rows are not ok?"}, {"role": "user", "content": json.dumps(rows)}]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--attackers", type=int, default=11)
    parser.add_argument("--rate", type=int, default=600, help="bytes per second each attacker sends")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    processes = Processes(Path(tempfile.mkdtemp(prefix="headroom-slow-body-")))
    stop = threading.Event()
    outcomes: list[str] = []
    try:
        ports = start(processes, options=())
        attackers = [
            threading.Thread(target=trickle, args=(ports.proxy, BUDGET // args.attackers, args.rate, stop))
            for _ in range(args.attackers)
        ]
        for thread in attackers:
            thread.start()
        time.sleep(1.0)
        body = ordinary_body()
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            client = Client(ports.proxy)
            try:
                client.request("POST", "/v1/chat/completions", body)
                outcomes.append("200")
            except (RuntimeError, OSError) as error:
                outcomes.append(str(error).rsplit(" ", 1)[-1])
            finally:
                client.close()
            time.sleep(args.interval)
        stop.set()
        for thread in attackers:
            thread.join()
    finally:
        stop.set()
        processes.stop_all()
    passed = outcomes.count("200")
    print(
        f"{args.attackers} connections announcing {BUDGET // args.attackers / 2**20:.0f} MiB at {args.rate} B/s each; "
        f"ordinary requests over {args.seconds:.0f} s: {passed}/{len(outcomes)} answered 200 "
        f"(others: {sorted(set(outcomes) - {'200'})})"
    )
    ok = passed == len(outcomes) > 0
    print(f"{'PASS' if ok else 'FAIL'}: every ordinary request answered (target 100%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
