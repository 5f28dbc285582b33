"""Quality benchmark: run every corpus case through compress_block and report.

Per case: content type, strategy, tokens before/after, saving, facts kept,
and the median time over a few runs; then totals for the capped cases (tool
outputs cut from real agent sessions, 2-41 KB, wrappers and the agents' own
cut markers included) and the uncapped ones (raw outputs, 4-180 KB), per
kind, and the speed figure the issue sets (median ms per 100 KB). Exit
status 1 if any fact was lost, a run was not deterministic, or a case that
is not a log was compressed as one, so it can gate changes.

Usage: ``.venv/bin/python bench/compression.py [--model M] [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from headroom_twisted.compress.blocks.policy import compress_block, warm_up
from headroom_twisted.compress.blocks.tokens import counter_for
from headroom_twisted.compress.tool_call import tool_call

CORPUS = Path(__file__).resolve().parent / "corpus"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gpt-4o")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    warm_up()
    cases = json.loads((CORPUS / "cases.json").read_text())
    print(
        f"{'case':28} {'type':7} {'strategy':26} {'tok before':>10} {'tok after':>9} {'saved':>6} "
        f"{'facts':>7} {'ms':>7} {'ms/100KB':>8}"
    )
    total_before = total_after = facts_total = facts_kept = 0
    per_100kb: list[float] = []
    failures = []
    by_kind: dict[str, tuple[int, int]] = {}
    ms_by_kind: dict[str, list[float]] = {}
    by_group: dict[str, tuple[int, int]] = {}
    for case in cases:
        text = (CORPUS / case["file"]).read_text()
        call = tool_call(case["call"]["name"], case["call"]["arguments"]) if "call" in case else None
        encoding = counter_for(args.model).encoding_name
        results = [compress_block(text, case["query"], encoding, call) for _ in range(args.runs)]
        result = results[0]
        if any(r.text != result.text for r in results):
            failures.append(f"{case['name']}: not deterministic")
        ms = statistics.median(r.ms for r in results)
        per_100kb.append(ms * 100_000 / max(1, result.text_bytes_before))
        before = result.tokens_before
        if before is None:
            before = counter_for(args.model).count(text)
        after = result.tokens_after if result.tokens_after is not None else before
        kept = [f for f in case["facts"] if f in result.text]
        lost = [f for f in case["facts"] if f not in result.text]
        if lost:
            failures.append(f"{case['name']}: lost {lost}")
        detected = _payload_type(result.content_type, result.strategy)
        if detected == "log" and case["kind"] != "log":
            failures.append(f"{case['name']}: a {case['kind']} compressed as a log")
        total_before += before
        total_after += after
        kind_before, kind_after = by_kind.get(case["kind"], (0, 0))
        by_kind[case["kind"]] = (kind_before + before, kind_after + after)
        ms_by_kind.setdefault(case["kind"], []).append(per_100kb[-1])
        group = "capped" if case.get("capped") else "uncapped"
        group_before, group_after = by_group.get(group, (0, 0))
        by_group[group] = (group_before + before, group_after + after)
        if case["kind"] != "code":
            key = f"{group}, reads excluded"
            group_before, group_after = by_group.get(key, (0, 0))
            by_group[key] = (group_before + before, group_after + after)
        facts_total += len(case["facts"])
        facts_kept += len(kept)
        print(
            f"{case['name']:28} {result.content_type:7} {result.strategy:26} {before:>10,} {after:>9,} "
            f"{_saving(before, after):>6} {len(kept):>3}/{len(case['facts']):<3} {ms:>7.1f} {per_100kb[-1]:>8.1f}"
        )
    print(
        f"{'TOTAL':28} {'':7} {'':26} {total_before:>10,} {total_after:>9,} "
        f"{_saving(total_before, total_after):>6} {facts_kept:>3}/{facts_total:<3} "
        f"median {statistics.median(per_100kb):.1f} ms/100KB"
    )
    for kind, (before, after) in sorted(by_kind.items()):
        speed = f"median {statistics.median(ms_by_kind[kind]):.1f} ms/100KB"
        print(f"  {kind:26} {'':7} {'':26} {before:>10,} {after:>9,} {_saving(before, after):>6} {speed:>29}")
    for group, (before, after) in sorted(by_group.items()):
        print(f"  {group:26} {'':7} {'':26} {before:>10,} {after:>9,} {_saving(before, after):>6}")
    for failure in failures:
        print("FAIL", failure, file=sys.stderr)
    return 1 if failures else 0


def _payload_type(content_type: str, strategy: str) -> str:
    """The type a block was compressed as: the strategy names it, also inside an agent's wrapper."""
    inner = strategy.removeprefix("wrapped_")
    for prefix, kind in (
        ("log", "log"),
        ("search", "search"),
        ("diff", "diff"),
        ("json", "json"),
        ("listing", "listing"),
    ):
        if inner.startswith(prefix):
            return kind
    return content_type


def _saving(before: int, after: int) -> str:
    return f"{100 * (before - after) / before:.1f}%" if before else "-"


if __name__ == "__main__":
    sys.exit(main())
