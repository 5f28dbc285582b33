"""Every compressor and the detector take time linear in their input.

A compression job runs before anything reaches the upstream, so one
pathological line must not cost seconds: a 40,000-character log line with an
error word and URL-like tokens once took the log compressor's variable
masking quadratic time (200 KB: 78 s). These tests time each compressor on
adversarial inputs of size n and 8n and fail when the ratio looks quadratic
(about 64) rather than linear (about 8). They assert a ratio, never a wall
clock bound, and re-measure before failing so a busy machine does not flake.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from headroom_twisted.compress.blocks import detect
from headroom_twisted.compress.blocks.policy import COMPRESSORS as REGISTRY
from headroom_twisted.compress.compressors import diff, json_rows, listing, logs, relevance, search
from headroom_twisted.compress.compressors.result import NotApplicable

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
# The same kinds of text as many short lines: cost must not grow with the line count squared.
MANY_LINES: dict[str, Callable[[int], str]] = {
    "log_lines": lambda n: "\n".join(f"ERROR worker {i} failed at /srv/app/x.py:{i}" for i in range(n // 40)),
    "grep_lines": lambda n: "\n".join(f"pkg/mod{i % 97}.py:{i}:    def f{i}(self):" for i in range(n // 30)),
    "diff_lines": lambda n: (
        "--- a/x\n+++ b/x\n@@ -1,9 +1,9 @@\n" + "\n".join(f" ctx {i}\n-old {i}" for i in range(n // 20))
    ),
    "package_rows": lambda n: "\n".join(f"pkg{i} 1.{i}-{i % 7} install ok installed" for i in range(n // 35)),
    "paths": lambda n: "\n".join(f"/usr/lib/python3/dist-packages/m{i % 50}/f{i}.py" for i in range(n // 45)),
    "distinct_lines": lambda n: "\n".join(f"line {i} says something else {i * 7919}" for i in range(n // 30)),
}


def _embed(line: str) -> str:
    """Put an adversarial line inside ordinary log lines, so the log rules consider it."""
    head = ["============ test session starts ============", "collected 3 items", "a.py::t1 PASSED"]
    tail = ["a.py::t2 FAILED", "E   assert 1 == 2", "======= 1 failed, 1 passed in 0.1s ======="]
    return "\n".join([*head, line, *tail])


def _json_rows(line: str) -> str:
    rows = [{"id": i, "state": "ok", "msg": f"row {i}"} for i in range(30)]
    rows[15]["msg"] = line
    return json.dumps(rows)


def _json_compress(text: str, query: str) -> object:
    try:
        return json_rows.compress(text, query)
    except NotApplicable:
        return None


def _wrapped(text: str, query: str) -> object:
    """The text behind a Codex header, cut in the middle by a Codex marker."""
    head = "Chunk ID: 1\nWall time: 0 seconds\nProcess exited with code 1\nOutput:\n"
    middle = len(text) // 2
    try:
        return REGISTRY["wrapped"](head + text[:middle] + "…10 chars truncated…" + text[middle:], query)
    except NotApplicable:
        return None


def _detect_structure(text: str, query: str) -> object:
    return detect.detect_structure(text)


COMPRESSORS: dict[str, Callable[[str, str], object]] = {
    "logs": logs.compress,
    "search": search.compress,
    "diff": diff.compress,
    "json": _json_compress,
    "listing": listing.compress,
    "wrapped": _wrapped,
    "detect": _detect_structure,
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


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("name", COMPRESSORS)
def test_one_long_line(name: str, line: str) -> None:
    compress, make = COMPRESSORS[name], LINES[line]
    assert_linear(lambda n: compress(_embed(make(n)), ""))


@pytest.mark.parametrize("line", LINES)
def test_detection_with_the_model(line: str) -> None:
    """Past the structural checks Magika reads a bounded prefix: flat cost beyond it.

    Sizes start above the prefix so that both runs take the same path (a
    shorter block may be recognised structurally, a cheaper path).
    """
    make = LINES[line]
    detect.warm_up()
    assert_linear(lambda n: detect.detect(_embed(make(n))), size=2 * detect.PREFIX_CHARS)


@pytest.mark.parametrize("line", LINES)
def test_one_long_json_value(line: str) -> None:
    make = LINES[line]
    assert_linear(lambda n: json_rows.compress(_json_rows(make(n)), ""))


@pytest.mark.parametrize("text", MANY_LINES)
@pytest.mark.parametrize("name", COMPRESSORS)
def test_many_lines(name: str, text: str) -> None:
    compress, make = COMPRESSORS[name], MANY_LINES[text]
    assert_linear(lambda n: compress(make(n), "where is f12 failed 4711"))


@pytest.mark.parametrize("line", LINES)
def test_long_question(line: str) -> None:
    """The question is the user's message, which can be a pasted log of any size."""
    text = MANY_LINES["log_lines"](4_000)
    make = LINES[line]
    assert_linear(lambda n: (relevance.query_terms(make(n)), logs.compress(text, make(n))))
