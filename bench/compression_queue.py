"""How long an ordinary request waits for compression behind heavy ones.

Starts the fake upstream of bench/livezone.py and ``twistd -n headroom``
with ``--threads 2`` and ``--compression-timeout`` seconds, sends
``--heavy`` bodies at once that each take longer than the deadline to
compress (1,300 Claude-Code-style file reads of a log, about 8 MB), then,
0.2 s later, an ordinary 20 KB chat completion, and reports how long the
ordinary one took. The deadline counts from submission, so the target is at
most the deadline (plus the forwarding itself); when it counted from the
moment a pool thread picked the job up, the ordinary request waited for
every heavy body before it (21.4 s behind eight once).

Usage: ``.venv/bin/python bench/compression_queue.py [--heavy 8] [--deadline 2]``. Exit status 1 if
the ordinary request waited longer than the deadline plus one second.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livezone import Client, start  # noqa: E402
from processes import Processes  # noqa: E402
from slow_body import ordinary_body  # noqa: E402

LOG_LINES = "\n".join(
    f"2026-12-01 10:00:{i % 60:02d} INFO worker {i} handled job {i * 7} in {i % 13} ms" for i in range(90)
)


def heavy_body(seed: int, reads: int = 1300) -> bytes:
    """Distinct per ``seed``, so no heavy body is a memo hit for another."""
    messages: list[dict[str, object]] = [{"role": "user", "content": [{"type": "text", "text": "What failed?"}]}]
    for n in range(reads):
        call = f"toolu_{n:05d}"
        messages.append(
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": call, "name": "Bash", "input": {"command": f"cat log{n}.txt"}}],
            }
        )
        text = f"{LOG_LINES}\nERROR job {n} of run {seed} failed"
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": text}]})
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--heavy", type=int, default=8)
    parser.add_argument("--deadline", type=float, default=2.0)
    args = parser.parse_args()
    processes = Processes(Path(tempfile.mkdtemp(prefix="headroom-queue-")))
    try:
        ports = start(processes, options=("--threads", "2", "--compression-timeout", str(args.deadline)))
        heavy = [heavy_body(seed) for seed in range(args.heavy)]
        senders = [
            threading.Thread(target=Client(ports.proxy).request, args=("POST", "/v1/messages", body)) for body in heavy
        ]
        for sender in senders:
            sender.start()
        time.sleep(0.2)
        client = Client(ports.proxy)
        waited = client.request("POST", "/v1/chat/completions", ordinary_body()) / 1000.0
        client.close()
        for sender in senders:
            sender.join()
    finally:
        processes.stop_all()
    print(
        f"{args.heavy} heavy bodies of {len(heavy[0]) / 1e6:.1f} MB, --threads 2, deadline {args.deadline:.1f} s: "
        f"an ordinary 20 KB request took {waited:.2f} s"
    )
    ok = waited <= args.deadline + 1.0
    print(f"{'PASS' if ok else 'FAIL'}: at most the deadline (+1 s for forwarding)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
