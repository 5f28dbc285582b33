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
from collections.abc import Callable

import pytest
from linear_time import LINES, assert_linear

from headroom_twisted.compress.blocks import detect
from headroom_twisted.compress.blocks.policy import COMPRESSORS as REGISTRY
from headroom_twisted.compress.compressors import diff, json_rows, listing, logs, relevance, search
from headroom_twisted.compress.compressors.result import NotApplicable

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
