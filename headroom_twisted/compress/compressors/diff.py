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

from headroom_twisted.compress.blocks.envelope import is_cut
from headroom_twisted.compress.compressors.relevance import has_error_keyword, marker, matches, query_terms, selective
from headroom_twisted.compress.compressors.result import CompressResult

GAP = " …"
MIN_BLOB_RUN = 6

_INDEX = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_TIMESTAMP = re.compile(r"^((?:---|\+\+\+) .*?)\t\d{4}-\d\d-\d\d [\d:.]+(?: [+-]\d{4})?$")
_BLOB = re.compile(r"^[+-][A-Za-z0-9+/=]{40,}$")


class _Tally:
    """What was left out, for the closing marker."""

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
    terms = selective(query_terms(query), [line.lower() for line in lines])
    for line in _collapse_blobs(lines, tally):
        context = in_hunk and (line.startswith(" ") or line == "")
        if context and not _vital(line, terms):
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
    return CompressResult("\n".join(out), "diff_trim")


def _vital(line: str, terms: tuple[str, ...]) -> bool:
    lowered = line.lower()
    return bool(terms and matches(terms, lowered)) or has_error_keyword(lowered) or is_cut(line)


def _collapse_blobs(lines: list[str], tally: _Tally) -> list[str]:
    """Replace the middle of each long run of encoded-data lines with a count."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _BLOB.match(lines[j]) and lines[j][0] == lines[i][0]:
            j += 1
        if j - i >= MIN_BLOB_RUN:
            out.append(lines[i])
            out.append(lines[i][0] + marker(j - i - 2, "encoded-data lines"))
            out.append(lines[j - 1])
            tally.blob += j - i - 2
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out


def _summary(tally: _Tally) -> str:
    parts = [f"{tally.context:,} unchanged context lines (each ' …' marks a gap between changes)"]
    if tally.index:
        parts.append(f"{tally.index:,} index lines")
    if tally.timestamps:
        parts.append(f"{tally.timestamps:,} header timestamps")
    if tally.blob:
        parts.append(f"{tally.blob:,} encoded-data lines")
    return "[... omitted: " + ", ".join(parts) + " ...]"
