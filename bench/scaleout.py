"""Scale-out: throughput of 1 and N `twistd -n headroom` processes sharing ONE listening socket.

The script plays systemd's socket unit: it creates the listening socket and
hands it to every process as fd 3 (LISTEN_FDS=1, as N instances of
headroom@.service behind headroom.socket get it); the kernel spreads the
connections between the processes. Load: wrk, 32 connections, against
bench/passthrough.py's fake upstream, two mixes:

- passthrough: the small chat request of bench/passthrough.py;
- compression mix: one request in ten carries a 60 KB pytest log as the
  tool output (compressed in the worker processes), the rest are small.

Each (mix, process count) is run `--rounds` times, alternating, and the
median is reported. Without wrk, the Python load generator of
bench/passthrough.py runs the passthrough mix only.

Usage: ``.venv/bin/python bench/scaleout.py [--processes 1 2] [--duration 10] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from passthrough import CONCURRENCY, REQUEST_BODY, REQUEST_HEADERS, LoadRun, run_python_load, run_wrk  # noqa: E402
from processes import HOST, Processes, Spawned, free_port, wait_until  # noqa: E402
from soak import compressible_body  # noqa: E402

EXEC_AS_SOCKET_ACTIVATED = (
    "import os, sys; fd = int(sys.argv[1])\nif fd != 3: os.dup2(fd, 3); os.close(fd)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='headroom.socket'); "
    "os.execv(sys.executable, [sys.executable, '-c', 'from twisted.scripts.twistd import run; run()', *sys.argv[2:]])"
)

MIX_LUA = """\
local small = {small}
local big = {big}
local headers = {{}}
{headers}
local counter = 0
request = function()
  counter = counter + 1
  local body = small
  if counter % 10 == 0 then body = big end
  return wrk.format("POST", nil, headers, body)
end
"""


def write_scripts(workdir: Path) -> dict[str, Path]:
    headers = "\n".join(f"headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in REQUEST_HEADERS.items())
    small = json.dumps(REQUEST_BODY.decode())
    big = json.dumps(compressible_body().decode())
    scripts = {
        "passthrough": MIX_LUA.replace("counter % 10 == 0", "false").format(small=small, big=small, headers=headers),
        "compression mix (1 in 10 is 60 KB)": MIX_LUA.format(small=small, big=big, headers=headers),
    }
    paths = {}
    for index, (name, text) in enumerate(scripts.items()):
        paths[name] = workdir / f"mix{index}.lua"
        paths[name].write_text(text)
    return paths


def start_group(processes: Processes, count: int, upstream_port: int, tag: str) -> tuple[socket.socket, int]:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    for index in range(count):
        argv = [sys.executable, "-c", EXEC_AS_SOCKET_ACTIVATED, str(fd), "-n", "--pidfile=", "headroom"]
        argv += ["--listen=systemd:domain=INET:index=0", f"--openai-upstream=http://{HOST}:{upstream_port}"]
        argv += ["--log-level=warning"]
        log_path = processes.workdir / f"{tag}-{index}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, pass_fds=(fd,), cwd=processes.workdir
            )
        spawned = Spawned(f"{tag}-{index}", process, log_path)
        processes.spawned.append(spawned)
        wait_until(spawned, f"http://{HOST}:{port}/readyz")
    return listener, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk-threads", type=int, default=1)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    passthrough_py = Path(__file__).resolve().parent / "passthrough.py"
    results: dict[tuple[str, int], list[LoadRun]] = {}
    with tempfile.TemporaryDirectory(prefix="headroom-scaleout-") as tmp:
        processes = Processes(Path(tmp))
        listeners = []
        try:
            upstream_port = free_port()
            serve = [sys.executable, str(passthrough_py), "--serve-upstream", str(upstream_port)]
            upstream = processes.spawn("upstream", serve)
            wait_until(upstream, f"http://{HOST}:{upstream_port}/__bench/stats")
            groups = {}
            for count in args.processes:
                listener, port = start_group(processes, count, upstream_port, f"group{count}")
                listeners.append(listener)
                groups[count] = port
            scripts = write_scripts(Path(tmp)) if wrk else {"passthrough": None}
            print(
                f"{os.cpu_count()} CPUs; groups: "
                + ", ".join(f"{n} process(es) on :{port}" for n, port in groups.items())
                + f"; load: {'wrk' if wrk else 'Python load generator'}, {CONCURRENCY} connections, "
                f"{args.rounds} x {args.duration:g} s per cell",
                flush=True,
            )
            for port in groups.values():  # warm up: pools, caches, the workers' first compressions
                for script in scripts.values():
                    if wrk and script:
                        run_wrk(wrk, script, port, 2.0, args.wrk_threads)
            for round_index in range(args.rounds):
                order = args.processes if round_index % 2 == 0 else list(reversed(args.processes))
                for mix, script in scripts.items():
                    for count in order:
                        port = groups[count]
                        if wrk and script:
                            run = run_wrk(wrk, script, port, args.duration, args.wrk_threads)
                        else:
                            run = run_python_load(port, args.duration)
                        results.setdefault((mix, count), []).append(run)
        finally:
            processes.stop_all()
            for listener in listeners:
                listener.close()
    print()
    print(f"{'mix':<38}{'processes':>10}{'req/s':>9}{'runs':>22}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs 1':>7}")
    for mix in dict.fromkeys(mix for mix, _ in results):
        one = statistics.median(run.rps for run in results[(mix, args.processes[0])])
        for count in args.processes:
            runs = results[(mix, count)]
            rps = statistics.median(run.rps for run in runs)
            each = " ".join(f"{run.rps:.0f}" for run in runs)
            p50 = statistics.median(run.p50_ms or 0.0 for run in runs)
            p99 = statistics.median(run.p99_ms or 0.0 for run in runs)
            errors = sum(run.errors for run in runs)
            print(f"{mix:<38}{count:>10}{rps:>9.0f}{each:>22}{p50:>9.2f}{p99:>9.2f}{errors:>8}{rps / one:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
