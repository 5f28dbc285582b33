"""Multi-turn sessions: what the provider bills with and without the proxy, turn by turn.

Agents resend the whole conversation every turn and providers bill a
repeated prefix at a tenth of the price, so what counts is billed input, not
tokens sent. This benchmark replays sessions through a real proxy
(``twistd -n headroom``, once per mode: ``stable``, ``live_zone``) and also
straight to the fake upstream (direct), records what the upstream received
each turn, and prices every turn under both providers' caching rules:

- OpenAI (gpt-5 family): the prefix a request shares with the previous one
  is cached (from 1,024 tokens, in steps of 128) and billed at 0.1; the rest
  at 1.0.
- Anthropic, with the client marking the newest message (as Claude Code
  does): the prefix shared with the previous request is a cache read (0.1),
  everything after it is written to the cache (1.25).

Prefixes are compared with ``cache_control`` markers removed (a marker is
not part of the cached content), and counted in tokens (cl100k). A prefix
break is a turn in which a history item the client resent unchanged reached
the upstream otherwise than on the turn before (``prefix_breaks`` of
tests/support/stable_support.py, the check the tests use).

Sessions: ``large`` (each turn adds one whole corpus file as a tool output),
``capped`` (the same outputs cut to 30,000 characters, as Claude Code and
Qwen Code cap them), and the three recorded agent sessions of
``tests/fixtures/clients``. Then latency: a turn whose ~2 MB history is all
memo hits, sent repeatedly (proxy and direct alternating), while a fifth
client's small passthrough requests measure the reactor.

Usage: ``.venv/bin/python bench/session.py [--repeats N]``. Exit status 1
if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from livezone import Client, Ports, last_upstream_body, start  # noqa: E402
from processes import Processes  # noqa: E402
from reactor_responsiveness import percentile, probe  # noqa: E402

from headroom_twisted.compress.blocks.tokens import counter_for_encoding  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
from stable_support import prefix_breaks  # noqa: E402
from stable_support import session as recorded_turns  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "bench" / "corpus"
CAP_CHARS = 30_000
MARKER = re.compile(rb',?\s*"cache_control"\s*:\s*\{[^{}]*\}')
COUNTER = counter_for_encoding("cl100k_base")
TARGETS = {"large": 0.40, "capped": 0.75}
MEMO_TURN_BYTES = 2_000_000
TARGET_MEMO_P50_MS = 15.0
TARGET_REACTOR_P99_MS = 20.0
QUESTION = "Check the environment: which tests fail, which packages are installed, what changed recently?"


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes


Session = list[Request]


# --------------------------------------------------------------------------
# Sessions


def corpus_outputs() -> list[str]:
    cases = json.loads((CORPUS / "cases.json").read_text())
    return [(CORPUS / case["file"]).read_text() for case in cases]


def chat_session(outputs: list[str]) -> Session:
    """Chat Completions, tool messages as Qwen Code sends them (one text part)."""
    messages: list[Any] = [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "user", "content": QUESTION},
    ]
    session = []
    for number, output in enumerate(outputs):
        call = {"id": f"call_{number}", "type": "function", "function": {"name": "shell", "arguments": "{}"}}
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        messages.append(
            {"role": "tool", "tool_call_id": f"call_{number}", "content": [{"type": "text", "text": output}]}
        )
        body = {"model": "gpt-5", "stream": False, "messages": messages}
        session.append(Request("/v1/chat/completions", json.dumps(body).encode()))
    return session


def anthropic_session(outputs: list[str]) -> Session:
    """Anthropic Messages with Claude Code's marker on the newest message."""
    messages: list[Any] = [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    session = []
    for number, output in enumerate(outputs):
        use = {"type": "tool_use", "id": f"toolu_{number}", "name": "Bash", "input": {"command": "x"}}
        messages.append({"role": "assistant", "content": [use]})
        messages.append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{number}", "content": output}]}
        )
        marked = json.loads(json.dumps(messages))
        marked[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
        body = {"model": "claude-sonnet-4-6", "max_tokens": 1024, "messages": marked}
        session.append(Request("/v1/messages", json.dumps(body).encode()))
    return session


def recorded_session(agent: str) -> Session:
    return [Request(turn.path, turn.body) for turn in recorded_turns(agent)]


def sessions() -> dict[str, Session]:
    outputs = corpus_outputs()
    capped = [output[:CAP_CHARS] for output in outputs]
    return {
        "large/chat": chat_session(outputs),
        "large/anthropic": anthropic_session(outputs),
        "capped/chat": chat_session(capped),
        "capped/anthropic": anthropic_session(capped),
        "recorded/claude-code": recorded_session("claude-code"),
        "recorded/codex": recorded_session("codex"),
        "recorded/qwen-code": recorded_session("chat-agent"),
    }


# --------------------------------------------------------------------------
# Pricing


def tokens(data: bytes) -> int:
    return COUNTER.count(data.decode("utf-8", "replace"))


def common_prefix(a: bytes, b: bytes) -> int:
    """Length of the longest common prefix, by halving (bytes compare at memcmp speed)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


@dataclass
class Priced:
    tokens: int
    openai: float
    anthropic: float


def price_turns(bodies: list[bytes]) -> list[Priced]:
    """Each forwarded body priced against the one before it (the provider's cache holds that prefix)."""
    priced = []
    previous = b""
    for body in bodies:
        plain = MARKER.sub(b"", body)
        total = tokens(plain)
        shared = common_prefix(previous, plain)
        cached = tokens(plain[:shared]) if shared else 0
        openai_cached = (cached // 128) * 128 if cached >= 1024 else 0
        priced.append(
            Priced(
                tokens=total,
                openai=0.1 * openai_cached + (total - openai_cached),
                anthropic=0.1 * cached + 1.25 * (total - cached),
            )
        )
        previous = plain
    return priced


# --------------------------------------------------------------------------
# Running


def forwarded_bodies(ports: Ports, session: Session, target: Callable[[Ports], int]) -> list[bytes]:
    client = Client(target(ports))
    bodies = []
    try:
        for request in session:
            client.request("POST", request.path, request.body)
            bodies.append(last_upstream_body(ports))
    finally:
        client.close()
    return bodies


def run_mode(mode: str, all_sessions: dict[str, Session]) -> tuple[dict[str, list[bytes]], Ports, Processes]:
    processes = Processes(Path(tempfile.mkdtemp(prefix=f"headroom-session-{mode}-")))
    ports = start(processes, options=("--compression", mode))
    return {name: forwarded_bodies(ports, s, lambda p: p.proxy) for name, s in all_sessions.items()}, ports, processes


def report_sessions(all_sessions: dict[str, Session], results: dict[str, dict[str, list[bytes]]]) -> bool:
    """Print one table per session and the totals; True if every target is met."""
    ok = True
    print("\n## Billed input per session (relative to direct)\n")
    print("| session | mode | turns | tokens sent | OpenAI billed | Anthropic billed | prefix breaks | turns dearer |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in results["direct"]:
        direct = price_turns(results["direct"][name])
        d_tokens = sum(p.tokens for p in direct)
        d_openai = sum(p.openai for p in direct)
        d_anthropic = sum(p.anthropic for p in direct)
        for mode in ("live_zone", "stable"):
            priced = price_turns(results[mode][name])
            dearer = sum(
                1
                for a, b in zip(priced, direct, strict=True)
                if a.openai > b.openai + 1e-9 or a.anthropic > b.anthropic + 1e-9
            )
            sent = [request.body for request in all_sessions[name]]
            breaks = len({turn for turn, _ in prefix_breaks(sent, results[mode][name])})
            openai = sum(p.openai for p in priced) / d_openai
            anthropic = sum(p.anthropic for p in priced) / d_anthropic
            print(
                f"| {name} | {mode} | {len(priced)} | {sum(p.tokens for p in priced) / d_tokens:.2f}x "
                f"| {openai:.2f}x | {anthropic:.2f}x | {breaks} | {dearer} |"
            )
            if mode == "stable":
                target = TARGETS.get(name.split("/")[0])
                if breaks or dearer or (target is not None and max(openai, anthropic) > target):
                    ok = False
    print("\nPer turn, stable vs direct (OpenAI rule, billed units):\n")
    for name in ("large/chat", "capped/chat"):
        direct = price_turns(results["direct"][name])
        stable = price_turns(results["stable"][name])
        cells = " ".join(f"{s.openai / d.openai:.2f}" for s, d in zip(stable, direct, strict=True))
        print(f"- {name}: {cells}")
    return ok


def history_of(size: int) -> list[str]:
    """Corpus outputs, cycled with a numbered first line so each is new, until they hold ``size`` bytes."""
    corpus = corpus_outputs()
    outputs: list[str] = []
    total = 0
    while total < size:
        outputs.append(f"run {len(outputs)}:\n{corpus[len(outputs) % len(corpus)]}")
        total += len(outputs[-1])
    return outputs


def memo_latency(ports: Ports, repeats: int) -> tuple[float, float, float, float]:
    """Added p50 for a ~2 MB all-memo-hit turn, and the reactor's p99 for a small client idle vs meanwhile."""
    big = chat_session(history_of(MEMO_TURN_BYTES))[-1]
    client = Client(ports.proxy)
    direct = Client(ports.upstream)
    client.request("POST", big.path, big.body)  # first sight: compresses every block once
    idle = probe(ports, 100)["passthrough"]
    added: list[float] = []
    busy: dict[str, list[float]] = {}
    prober = threading.Thread(target=lambda: busy.update(probe(ports, repeats * 4)))
    prober.start()
    for _ in range(repeats):
        through = client.request("POST", big.path, big.body)
        straight = direct.request("POST", big.path, big.body)
        added.append(through - straight)
    prober.join()
    client.close()
    direct.close()
    print(f"\n## A {len(big.body) / 1e6:.1f} MB turn whose every block is a memo hit ({repeats} sends)\n")
    p50 = statistics.median(added)
    print(f"- added latency p50 {p50:.1f} ms, p90 {percentile(added, 0.9):.1f} ms (proxy minus direct)")
    idle_p99, busy_p99 = percentile(idle, 0.99), percentile(busy["passthrough"], 0.99)
    print(f"- small passthrough requests, p99: idle {idle_p99:.1f} ms, during the big turns {busy_p99:.1f} ms")
    return p50, percentile(added, 0.9), idle_p99, busy_p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=30, help="sends of the 2 MB memo-hit turn")
    parser.add_argument(
        "--latency-only",
        metavar="MODE",
        help="only the memo-hit latency, on a freshly started proxy in this --compression mode (stable, off)",
    )
    args = parser.parse_args()
    if args.latency_only:
        processes = Processes(Path(tempfile.mkdtemp(prefix="headroom-session-latency-")))
        try:
            memo_latency(start(processes, options=("--compression", args.latency_only)), args.repeats)
        finally:
            processes.stop_all()
        return 0
    all_sessions = sessions()
    results: dict[str, dict[str, list[bytes]]] = {}
    for mode in ("live_zone", "stable"):
        bodies, ports, processes = run_mode(mode, all_sessions)
        try:
            results[mode] = bodies
            if mode == "stable":
                results["direct"] = {
                    name: forwarded_bodies(ports, s, lambda p: p.upstream) for name, s in all_sessions.items()
                }
                p50, _, _, busy_p99 = memo_latency(ports, args.repeats)
        finally:
            processes.stop_all()
    ok = report_sessions(all_sessions, results)
    ok = ok and p50 <= TARGET_MEMO_P50_MS and busy_p99 <= TARGET_REACTOR_P99_MS
    print(
        f"\nTargets {'met' if ok else 'MISSED'}: stable billed <= {TARGETS} of direct, 0 breaks, no turn dearer; "
        f"memo-hit turn p50 <= {TARGET_MEMO_P50_MS} ms; reactor p99 <= {TARGET_REACTOR_P99_MS} ms"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
