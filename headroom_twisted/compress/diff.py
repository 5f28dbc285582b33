"""Unified diffs: every file header and changed line, trimmed context.

The model reviewing a diff needs what changed and where; the unchanged
context lines around each change are mostly restating the file. Every
header, hunk header and +/- line is kept; each run of context lines keeps
the line nearest to each change, and the middle becomes ``[... N unchanged
lines ...]``. ``index`` lines (blob hashes) are dropped and counted.
"""

from __future__ import annotations

import re

from headroom_twisted.compress.relevance import marker
from headroom_twisted.compress.result import CompressResult

KEEP_CONTEXT = 1

_INDEX = re.compile(r"^index [0-9a-f]+\.\.[0-9a-f]+")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")


def compress(text: str, query: str) -> CompressResult:
    """Drop index lines and trim context inside hunks; headers and changes untouched."""
    lines = text.split("\n")
    out: list[str] = []
    context: list[str] = []
    in_hunk = False
    trimmed = index_lines = 0
    for line in lines:
        if in_hunk and line.startswith(" ") or (in_hunk and line == ""):
            context.append(line)
            continue
        trimmed += _flush(context, out, at_end=not (in_hunk and line[:1] in "+-\\"))
        context = []
        if _INDEX.match(line):
            index_lines += 1
            continue
        if _HUNK.match(line):
            in_hunk = True
        elif not line[:1] in ("+", "-", "\\") or line.startswith(("--- ", "+++ ")) and not in_hunk:
            in_hunk = False
        out.append(line)
    trimmed += _flush(context, out, at_end=True)
    if index_lines:
        out.append(marker(index_lines, "index lines"))
    return CompressResult("\n".join(out), "diff_trim", {"context_trimmed": trimmed, "index_dropped": index_lines})


def _flush(context: list[str], out: list[str], at_end: bool) -> int:
    """Write a context run: the line after the previous change and the one before the next."""
    head = context[:KEEP_CONTEXT] if out and out[-1][:1] in "+-" else []
    tail = [] if at_end else context[-KEEP_CONTEXT:]
    dropped = len(context) - len(head) - len(tail)
    if dropped < 2:
        out.extend(context)
        return 0
    out.extend(head)
    out.append(" " + marker(dropped, "unchanged lines"))
    out.extend(tail)
    return dropped
