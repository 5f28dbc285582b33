"""Listings (``find``, ``dpkg-query -W``, ``pip list``, ``ls -l``): every row is a fact.

A listing is not a log: its 600 lines of ``name version install ok
installed`` are not repetition, they are 600 answers, and the log rules once
cut such a list to a handful of lines. So a listing is first rewritten
losslessly: paths lose the directory they share and are grouped one
directory per line; table rows lose their padding and the columns that hold
the same value in every row (stated once in a header). Only when the
question names some rows (words that select a minority of them) are the
other rows left out, and then every omitted run is replaced by a marker that
says how many rows it held and the first and last of them, so the model
knows exactly what to ask for.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from itertools import islice

from headroom_twisted.compress.blocks.envelope import cut_lines
from headroom_twisted.compress.compressors.relevance import LoweredLines, line_starts, marker, query_terms, whole_words
from headroom_twisted.compress.compressors.result import CompressResult

MIN_LINES = 5
SHARE = 0.8
MAX_FIELDS = 12
HEAD_ROWS = 3
TAIL_ROWS = 2
MIN_OMITTED = 3  # shorter runs cost less kept than replaced by a marker
MIN_PREFIX = 8

_TOKEN = re.compile(r"\S+")
# Lines of test runners, loggers and progress output: their uniform columns make them look like tables.
_LOG_SHAPE = re.compile(
    r"\[(?:OK|FAIL|ERROR|SKIPPED|SUCCESS|TODO|EXPECTED FAILURE)\]|"
    + whole_words(("PASSED", "FAILED", "ERROR", "SKIPPED", "XFAIL", "XPASS", "INFO", "DEBUG", "WARNING", "WARN"))
    + r"|\.\.\.|::"
)
_LOG_OPENING = re.compile(r"\d{4}-\d\d-\d\d|\s*(?:Collecting|Downloading|Installing|Compiling)\b")


def is_listing(lines: list[str]) -> bool:
    """Whether these (non-blank, sampled) lines are a listing: paths, or rows of a uniform table.

    Rows of a table share their field count and name distinct items in
    their first or last field (a log's lines do not); lines shaped like test
    or logger output rule it out.
    """
    if len(lines) < MIN_LINES:
        return False
    log_like = (line for line in lines if _LOG_OPENING.match(line) or _LOG_SHAPE.search(line))
    if any(True for _ in islice(log_like, len(lines) // 10, None)):  # more than a tenth: stop counting there
        return False
    if sum(1 for line in lines if _is_path(line)) >= SHARE * len(lines):
        return True
    fields = [line.split() for line in lines]
    width, count = Counter(len(f) for f in fields).most_common(1)[0]
    if not 2 <= width <= MAX_FIELDS or count < SHARE * len(lines):
        return False
    rows = [f for f in fields if len(f) == width]
    distinct = max(len({f[0] for f in rows}), len({f[-1] for f in rows}))
    return distinct >= 0.9 * len(rows)


@dataclass(frozen=True)
class _Table:
    """Rows of ``width`` fields; ``constant`` maps a column index to the value every row has there."""

    width: int
    constant: dict[int, str]


def compress(text: str, query: str) -> CompressResult:
    """Rewrite the listing losslessly; when the question names rows, keep those and mark the rest."""
    lines = text.split("\n")
    is_path = [_is_path(line) for line in lines]
    paths = sum(is_path) >= SHARE * sum(1 for line in lines if line.strip())
    fields = [] if paths else [line.split() for line in lines]
    table = None if paths else _table(fields)
    lowered = LoweredLines(lines)
    asked = query_terms(query)
    cuts = cut_lines(text, line_starts(lines))
    keep = _keep(lowered, lowered.selective(asked), frozenset(asked), cuts)
    if paths:
        groupable = [is_path[i] and not line.endswith("/") and i not in cuts for i, line in enumerate(lines)]
        out = _render_paths(lines, keep, groupable)
    else:
        out = _render_rows(lines, fields, keep, table, cuts)
    kept = sum(keep)
    strategy = "listing_lossless" if kept == len(lines) else "listing_relevant"
    return CompressResult("\n".join(out), strategy)


def _table(fields: list[list[str]]) -> _Table | None:
    """The table the rows (each line's fields) form, if most have one width."""
    rows = [row for row in fields if row]
    if not rows:
        return None
    width, count = Counter(map(len, rows)).most_common(1)[0]
    if width < 2 or count < SHARE * len(rows):
        return None
    uniform = [r for r in rows if len(r) == width]
    columns = list(zip(*uniform, strict=True))
    constant = {c: uniform[0][c] for c in range(1, width) if columns[c].count(uniform[0][c]) == len(uniform)}
    if len(uniform) < MIN_LINES:
        constant = {}
    return _Table(width, constant)


def _keep(lowered: LoweredLines, terms: tuple[str, ...], names: frozenset[str], cuts: set[int]) -> list[bool]:
    """All rows when the question selects none; else the selected, named, erroneous, first and last rows.

    A row whose first field is a word of the question is the item asked
    about (``python3`` among a hundred ``python3-*`` packages), kept even
    when that word is too common to be selective.
    """
    named = {i for i in lowered.containing(names) if lowered.lowered[i].split(maxsplit=1)[0] in names}
    n = len(lowered.lowered)
    if not terms and not named:
        return [True] * n
    kept = lowered.term_lines(terms) | named | set(lowered.with_error_keyword()) | cuts
    keep = [i in kept for i in range(n)]
    for i in [*range(min(HEAD_ROWS, n)), *range(max(0, n - TAIL_ROWS), n)]:
        keep[i] = True
    _keep_short_gaps(keep)
    return keep


def _keep_short_gaps(keep: list[bool]) -> None:
    i = 0
    while i < len(keep):
        j = i
        while j < len(keep) and not keep[j]:
            j += 1
        if 0 < j - i < MIN_OMITTED:
            keep[i:j] = [True] * (j - i)
        i = max(j, i + 1)


def _omitted(run: list[str], name: str, prefix: str = "") -> str:
    """``[... 212 rows omitted; adwaita-icon-theme … bsdutils ...]``: the count and the first and last."""
    return marker(len(run), name, f"{_label(run[0], prefix)} … {_label(run[-1], prefix)}")


def _label(line: str, prefix: str) -> str:
    fields = line.split()
    if not fields:
        return "(blank)"
    return fields[0][len(prefix) :] if prefix and fields[0].startswith(prefix) else fields[0]


def _runs(keep: list[bool]) -> list[tuple[bool, range]]:
    """``keep`` as runs of equal flags: ``(kept, indices)``."""
    runs: list[tuple[bool, range]] = []
    start = 0
    for i in range(1, len(keep) + 1):
        if i == len(keep) or keep[i] != keep[start]:
            runs.append((keep[start], range(start, i)))
            start = i
    return runs


def _render_rows(
    lines: list[str], fields: list[list[str]], keep: list[bool], table: _Table | None, cuts: set[int]
) -> list[str]:
    out: list[str] = []
    if table and table.constant:
        columns = ", ".join(f"field {c + 1} `{v}`" for c, v in sorted(table.constant.items()))
        out.append(f"[rows of {table.width} fields; every such row has {columns}: shown without them]")
    for kept, run in _runs(keep):
        if not kept:
            out.append(_omitted(lines[run.start : run.stop], "rows"))
            continue
        if table is None:
            out.extend(lines[i] for i in run)
            continue
        shown = [c for c in range(table.width) if c not in table.constant]
        out.extend(
            lines[i] if len(fields[i]) != table.width or i in cuts else " ".join([fields[i][c] for c in shown])
            for i in run
        )
    return out


def _render_paths(lines: list[str], keep: list[bool], groupable: list[bool]) -> list[str]:
    """Paths under their shared prefix, consecutive siblings on one ``dir/: name name`` line.

    ``groupable`` says which lines can join a ``dir/: name`` line: paths that
    are not directories themselves and hold no agent's cut marker.
    """
    paths = [line for line, kept, g in zip(lines, keep, groupable, strict=True) if kept and g]
    prefix = _common_dir(paths)
    out = [f"[paths under {prefix}, one directory per line: `dir/: name name ...`]"] if prefix else []
    group_dir: str | None = None
    for kept, run in _runs(keep):
        if not kept:
            out.append(_omitted(lines[run.start : run.stop], "paths", prefix))
            group_dir = None
            continue
        for i in run:
            line = lines[i]
            directory, _, name = line[len(prefix) :].rpartition("/")
            if not (groupable[i] and line.startswith(prefix)):
                out.append(line)
                group_dir = None
                continue
            if directory == group_dir and out:
                out[-1] += " " + name
            else:
                out.append(f"{directory or '.'}/: {name}")
                group_dir = directory
    return out


def _is_path(line: str) -> bool:
    """One token with a slash in it (a regex like ``\\S*/\\S*`` would backtrack quadratically)."""
    return "/" in line and _TOKEN.fullmatch(line) is not None


def _common_dir(paths: list[str]) -> str:
    if len(paths) < 2:
        return ""
    common = os.path.commonprefix(paths)
    cut = common.rfind("/") + 1
    return common[:cut] if cut >= MIN_PREFIX else ""
