#!/bin/sh
# Every figure of BENCHMARKS.md in one run, in this order; each section starts
# with the exact command. Usage: sh bench/run_all.sh > bench-run.txt 2>&1
set -u
cd "$(dirname "$0")/.."
PY=.venv/bin/python
run() {
    echo
    echo "=== \$ $*"
    "$@"
    echo "=== exit $?"
}
echo "run started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk: $(command -v wrk || echo absent)"
run $PY bench/passthrough.py
run $PY bench/sse_stream.py
run $PY bench/livezone.py
run $PY bench/session.py
run $PY bench/coding_session.py
run $PY bench/compression.py --runs 5
run $PY bench/tokenizers.py --rounds 9
run $PY bench/body_memory.py --bursts 6
run $PY bench/slow_body.py
run $PY bench/compression_queue.py
run $PY bench/long_history.py --deadline 1.5
run $PY bench/long_history.py --restart --turns 2
run $PY bench/startup.py
run $PY bench/reactor_responsiveness.py
run $PY bench/soak.py
run $PY bench/scaleout.py --duration 5 --rounds 3
run $PY bench/peer.py --idle-connections 500
echo "run finished $(date -u +%Y-%m-%dT%H:%M:%SZ)"
