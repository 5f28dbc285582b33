"""What `twistd -n headroom` costs before the first request, per compression mode.

For each mode, starts the daemon, waits for `/readyz` to answer 200, then
counts the daemon's process tree (the proxy and its compression workers)
and sums their resident memory from /proc. Reports the median of
`--rounds` starts: seconds until ready, processes, and MiB resident.

Usage: ``.venv/bin/python bench/startup.py [--rounds N] [--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from process_tree import descendants  # noqa: E402
from processes import HOST, Processes, free_port, twistd_path, wait_until  # noqa: E402


def resident_mib(pids: set[int]) -> float:
    kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib += int(line.split()[1])
        except OSError:
            continue
    return kib / 1024


def start_once(mode: str, threads: int) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        processes = Processes(Path(tmp))
        port = free_port()
        argv = [twistd_path(), "-n", "--pidfile=", "headroom", "--listen", f"tcp:{port}:interface={HOST}"]
        argv += ["--compression", mode, "--threads", str(threads), "--log-level", "warning"]
        began = time.monotonic()
        spawned = processes.spawn(f"headroom-{mode}", argv)
        try:
            wait_until(spawned, f"http://{HOST}:{port}/readyz", timeout=120)
            ready = time.monotonic() - began
            time.sleep(1.0)  # let the workers settle after loading their models
            tree = {spawned.process.pid, *descendants(spawned.process.pid)}
            return ready, len(tree), resident_mib(tree)
        finally:
            processes.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="starts per mode (default 3)")
    parser.add_argument("--threads", type=int, default=4, help="--threads for the daemon (default 4, its default)")
    options = parser.parse_args()
    print(f"twistd -n headroom --threads {options.threads}, median of {options.rounds} starts")
    print(f"{'mode':<10} {'ready s':>8} {'processes':>10} {'RSS MiB':>8}")
    for mode in ("off", "stable"):
        runs = [start_once(mode, options.threads) for _ in range(options.rounds)]
        ready = statistics.median(run[0] for run in runs)
        count = statistics.median(run[1] for run in runs)
        rss = statistics.median(run[2] for run in runs)
        print(f"{mode:<10} {ready:>8.2f} {count:>10.0f} {rss:>8.0f}")


if __name__ == "__main__":
    main()
