"""Timing a function at n and 8n: whether its cost grows linearly, and inputs that make it not.

A compression job runs before anything reaches the upstream, so one
pathological input must not cost seconds. The tests that use this assert a
ratio, never a wall-clock bound, and re-measure before failing so a busy
machine does not flake.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

SIZE = 3_000
GROWTH = 8
RATIO_LIMIT = 24  # linear is ~8, quadratic ~64
ATTEMPTS = 3
RUNS = 3

# Lines that defeat a backtracking pattern: long runs with no separator, runs
# of the characters a pattern looks for but never completes, and many
# near-matches (quotes, colons, URL schemes, dates after tabs, hex).
LINES: dict[str, Callable[[int], str]] = {
    "word_run": lambda n: "error " + "a" * n,
    "colons": lambda n: "error " + "a:" * (n // 2),
    "dots": lambda n: "error " + "a." * (n // 2),
    "slashes": lambda n: "error /" + "a/" * (n // 2),
    "schemes": lambda n: "error " + "http:/" * (n // 6),
    "urls": lambda n: "ERROR " + "x://y " * (n // 6),
    "single_quotes": lambda n: "error " + "'a" * (n // 2),
    "double_quotes": lambda n: 'error "a' * (n // 8),
    "hex": lambda n: "error " + "0123456789abcdef" * (n // 16),
    "separators": lambda n: "= " + "=" * n + " x",
    "dashes": lambda n: "-- " + "- " * (n // 2),
    "path_like": lambda n: "a" * n + ".py:1:",
    "grep_like": lambda n: "a/" * (n // 2) + ":1:" + "b:" * 10,
    "dated_tabs": lambda n: "--- a" + "\t2020-01-01 1" * (n // 13),
    "digits": lambda n: "error " + "1 " * (n // 2),
    "keywords": lambda n: "error warning failed " * (n // 21),
    "spaces": lambda n: "error" + " " * n + "x",
}


def _best_time(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def assert_linear(run: Callable[[int], object], size: int = SIZE) -> None:
    """``run(n)`` then ``run(8n)``: fail only if every attempt grows super-linearly."""
    ratios = []
    for _ in range(ATTEMPTS):
        small = _best_time(lambda: run(size))
        large = _best_time(lambda: run(size * GROWTH))
        ratios.append(large / max(small, 1e-6))
        if ratios[-1] < RATIO_LIMIT:
            return
    pytest.fail(f"time grew {min(ratios):.0f}x for {GROWTH}x the input (linear is ~{GROWTH}x)")
