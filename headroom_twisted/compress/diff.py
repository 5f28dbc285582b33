"""Unified diffs: every file header and changed line, context trimmed.

A model reviewing a diff needs what changed and where; the unchanged lines
around each change mostly restate the file, and the hunk headers already
say where each change sits. So: every ``diff``/``---``/``+++``/``@@`` header
and every +/- line is kept; context lines are dropped, with `` …`` standing
for a run of them between two changes; ``index`` lines (blob hashes) and
the timestamps ``diff -u`` appends to ``---``/``+++`` paths are dropped.
One exception to "every changed line": long runs of encoded data
(PEM/base64 bodies) keep their first and last lines and a count, since their
content is unreadable to the model anyway. A final marker tallies it all.
A context line is kept after all when it holds a selective word or number
of the question, an error keyword, or an agent's cut marker.
"""

from __future__ import annotations

import re

from headroom_twisted.compress.envelope import cut_lines
from headroom_twisted.compress.relevance import LoweredLines, line_starts, lines_matching, marker, query_terms
from headroom_twisted.compress.result import CompressResult

GAP = " …"
MIN_BLOB_RUN = 6

_INDEX = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_TIMESTAMP = re.compile(r"^((?:---|\+\+\+) .*?)\t\d{4}-\d\d-\d\d [\d:.]+(?: [+-]\d{4})?$")
_BLOB = re.compile(r"[+-][A-Za-z0-9+/=]{40,}$")
_BLOB_LATER = re.compile(r"\n[+-][A-Za-z0-9+/=]{40,}(?![^\n])")  # a blob line after the first


class _Tally:
    """What was left out, for the closing marker and the stats."""

    def __init__(self) -> None:
        self.context = 0
        self.index = 0
        self.timestamps = 0
        self.blob = 0


def compress(text: str, query: str) -> CompressResult:
    """Keep headers and changes, drop context and index lines; say what went."""
    tally = _Tally()
    out: list[str] = []
    pending_context = 0
    in_hunk = False
    lines = text.split("\n")
    starts = line_starts(lines)
    lowered = LoweredLines(lines)
    terms = lowered.selective(query_terms(query))
    vital = lowered.term_lines(terms) | set(lowered.with_error_keyword()) | cut_lines(text, starts)
    for i, line in _collapse_blobs(lines, text, starts, tally):
        context = in_hunk and (line.startswith(" ") or line == "")
        if context and i not in vital:
            pending_context += 1
            continue
        changed = in_hunk and (context or line[:1] in ("+", "-", "\\"))
        if pending_context:
            tally.context += pending_context
            if changed and out[-1][:1] in ("+", "-", "\\", " "):
                out.append(GAP)
            pending_context = 0
        if changed:
            out.append(line)
            continue
        in_hunk = bool(_HUNK.match(line))
        if _INDEX.match(line):
            tally.index += 1
            continue
        stamped = _TIMESTAMP.match(line)
        if stamped:
            tally.timestamps += 1
            line = stamped.group(1)
        out.append(line)
    tally.context += pending_context
    out.append(_summary(tally))
    return CompressResult(
        "\n".join(out),
        "diff_trim",
        {"context_trimmed": tally.context, "index_dropped": tally.index, "blob_lines_dropped": tally.blob},
    )


def _collapse_blobs(lines: list[str], text: str, starts: list[int], tally: _Tally) -> list[tuple[int, str]]:
    """``(index, line)`` pairs with the middle of each long run of encoded-data lines replaced by a count.

    Runs are consecutive blob lines of one sign; a marker line's index is -1.
    Blob lines are found by one scan of the whole text.
    """
    blobs = lines_matching(text, starts, _BLOB_LATER)
    if _BLOB.match(lines[0]):
        blobs.add(0)
    out: list[tuple[int, str]] = []
    i = 0
    for first, end in _blob_runs(lines, sorted(blobs)):
        if end - first < MIN_BLOB_RUN:
            continue
        out.extend(zip(range(i, first + 1), lines[i : first + 1], strict=True))
        out.append((-1, lines[first][0] + marker(end - first - 2, "encoded-data lines")))
        out.append((end - 1, lines[end - 1]))
        tally.blob += end - first - 2
        i = end
    out.extend(zip(range(i, len(lines)), lines[i:], strict=True))
    return out


def _blob_runs(lines: list[str], blobs: list[int]) -> list[tuple[int, int]]:
    """Maximal runs ``(first, end)`` of consecutive blob lines that share their sign."""
    runs: list[tuple[int, int]] = []
    for i in blobs:
        if runs and runs[-1][1] == i and lines[i][0] == lines[runs[-1][0]][0]:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _summary(tally: _Tally) -> str:
    parts = [f"{tally.context:,} unchanged context lines (each ' …' marks a gap between changes)"]
    if tally.index:
        parts.append(f"{tally.index:,} index lines")
    if tally.timestamps:
        parts.append(f"{tally.timestamps:,} header timestamps")
    if tally.blob:
        parts.append(f"{tally.blob:,} encoded-data lines")
    return "[... omitted: " + ", ".join(parts) + " ...]"
