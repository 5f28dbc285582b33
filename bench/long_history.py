"""A history too large for one compression deadline: how many turns until it is compressed.

Starts the fake upstream of bench/livezone.py and ``twistd -n headroom``
(default settings, ``--compression-timeout`` seconds), then sends the same
Claude-Code-style body ``--turns`` times: 1,300 distinct tool outputs of a
log, about 7 MB, more than a worker compresses within one deadline. For
each turn it reports the time and whether the upstream received it
compressed. When the rewrites of a body were remembered only if the whole
batch came back, every turn hit the deadline and nothing was ever kept;
each batch is now remembered as it comes back, so the turns fill the memo
and the history goes out compressed after a few of them, then from the memo.

With ``--restart`` the proxy runs with a ``--state-dir``, is stopped after
the turns and started again on the same directory, and one more turn is
sent: the restarted proxy finds every rewrite there, so that turn is as
fast as a memo hit.

Usage: ``.venv/bin/python bench/long_history.py [--turns 6] [--deadline 5] [--restart]``. Exit status 1
if the last turn is not compressed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compression_queue import heavy_body  # noqa: E402
from livezone import Client, last_upstream_body, start  # noqa: E402
from processes import Processes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--deadline", type=float, default=5.0)
    parser.add_argument("--restart", action="store_true", help="one more turn after a restart on the same state dir")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="headroom-long-history-"))
    options: tuple[str, ...] = ("--compression-timeout", str(args.deadline))
    if args.restart:
        options += ("--state-dir", str(workdir / "state"))
    body = heavy_body(seed=0)
    rows: list[tuple[str, float, int]] = []
    for run, turns in (("", args.turns), ("after restart, ", 1))[: 2 if args.restart else 1]:
        run_dir = workdir / f"run{len(rows)}"
        run_dir.mkdir()
        processes = Processes(run_dir)
        try:
            ports = start(processes, options=options)
            client = Client(ports.proxy)
            for turn in range(1, turns + 1):
                started = time.perf_counter()
                client.request("POST", "/v1/messages", body)
                seconds = time.perf_counter() - started
                rows.append((f"{run}{turn}", seconds, len(last_upstream_body(ports))))
            client.close()
        finally:
            processes.stop_all()
    print(f"a {len(body) / 1e6:.1f} MB history of 1,300 tool outputs, deadline {args.deadline:.0f} s")
    print("| turn | seconds | upstream received | compressed |")
    print("|---:|---:|---:|---|")
    for turn, seconds, forwarded in rows:
        print(f"| {turn} | {seconds:.2f} | {forwarded:,} | {'yes' if forwarded < len(body) else 'no'} |")
    ok = rows[-1][2] < len(body)
    print(f"{'PASS' if ok else 'FAIL'}: the last turn went out compressed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
