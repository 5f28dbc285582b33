"""JSON: lossless minification, then row selection in large arrays of records.

Tool outputs that hurt are long arrays (package lists, API pages, test
reports). Most rows are alike; the model needs the ones the question names,
the broken ones, the unusual ones and enough of the rest to see the shape.
The output stays valid JSON: kept rows are emitted unmodified, in their
original order, and the array gains one trailing string element that says
how many rows were left out and what they look like. Objects with very many
record-valued keys are treated the same way, the note under key ``"_omitted"``.

Arrays too short to thin but made of uniform flat records (same keys, same
order, scalar values) are written losslessly as a table,
``{"_columns": [k1, k2], "_rows": [[v1, v2], ...]}``, when that is clearly
shorter: the repeated keys were most of their tokens.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from typing import NoReturn

import orjson

from headroom_twisted.compress.compressors.relevance import LoweredLines, marker, query_terms
from headroom_twisted.compress.compressors.result import CompressResult, NotApplicable
from headroom_twisted.compress.json_value import JsonObject, JsonValue

MIN_ROWS = 24
MIN_TABLE_ROWS = 4
TABLE_GAIN = 0.85
HEAD_ROWS = 3
TAIL_ROWS = 2
SAMPLE_ROWS = 6
MAX_QUERY_ROWS = 60
MAX_ERROR_ROWS = 20
MAX_RARE_ROWS = 12
MAX_OUTLIER_ROWS = 8
OUTLIER_Z = 6.0

_ERROR_WORDS = (
    r"\b(error|errors|errored|fail|failed|failure|failing|fatal|exception|traceback|panic|"
    r"denied|refused|timeout|timed out|crash(ed)?|invalid|broken|critical|unhealthy|down)\b"
)
_ERROR_VALUE = re.compile(_ERROR_WORDS, re.I)
# Substring scans run in C and rule out most rows before any regex runs.
_ERROR_STEMS = (
    "error",
    "fail",
    "fatal",
    "exception",
    "traceback",
    "panic",
    "denied",
    "refused",
    "time",
    "crash",
    "invalid",
    "broken",
    "critical",
    "unhealthy",
    "down",
)
_ERROR_KEYS = frozenset({"error", "errors", "exception", "failure", "traceback"})
_OK_VALUES = frozenset({"", "0", "none", "null", "false", "[]", "{}", "ok"})


class _Stats:
    """Counters collected while walking the document (mutated during one compress call only)."""

    def __init__(self) -> None:
        self.rows_total = 0
        self.rows_kept = 0
        self.tables = 0


def compress(text: str, query: str) -> CompressResult:
    """Minify, then thin every large collection of records; the result parses as JSON."""
    try:
        document: JsonValue = json.loads(text, parse_constant=_reject_constant)
    except ValueError as e:
        raise NotApplicable(str(e)) from e
    terms = query_terms(query)
    stats = _Stats()
    thinned = _walk(document, terms, stats)
    out = _dumps(thinned)
    if stats.rows_kept < stats.rows_total:
        strategy = "json_rows"
    else:
        strategy = "json_table" if stats.tables else "json_minify"
    return CompressResult(out, strategy)


def _reject_constant(name: str) -> NoReturn:
    """NaN and Infinity are not JSON; refusing them keeps the output strictly valid."""
    raise ValueError(f"non-standard JSON constant {name}")


def _walk(node: JsonValue, terms: tuple[str, ...], stats: _Stats) -> JsonValue:
    if isinstance(node, list):
        if len(node) >= MIN_ROWS:
            return _thin_list(node, terms, stats)
        table = _as_table(node)
        if table is not None:
            stats.tables += 1
            return table
        return [_walk(item, terms, stats) for item in node]
    if isinstance(node, dict):
        if len(node) >= MIN_ROWS and all(isinstance(v, (dict, list)) for v in node.values()):
            return _thin_dict(node, terms, stats)
        return {key: _walk(value, terms, stats) for key, value in node.items()}
    return node


def _as_table(rows: list[JsonValue]) -> JsonObject | None:
    """The column/row form of uniform flat records, or None when not uniform or not worth it."""
    if len(rows) < MIN_TABLE_ROWS:
        return None
    records = [row for row in rows if isinstance(row, dict)]
    if len(records) < len(rows):
        return None
    columns: list[JsonValue] = list(records[0])
    if len(columns) < 2 or any(list(record) != columns for record in records):
        return None
    if any(isinstance(v, (dict, list)) for record in records for v in record.values()):
        return None
    table: JsonObject = {"_columns": columns, "_rows": [list(record.values()) for record in records]}
    if len(_dumps(table)) > TABLE_GAIN * len(_dumps(rows)):
        return None
    return table


def _dumps(node: JsonValue) -> str:
    return json.dumps(node, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _thin_list(rows: list[JsonValue], terms: tuple[str, ...], stats: _Stats) -> list[JsonValue]:
    keep = _select(rows, [None] * len(rows), terms)
    _count(stats, len(rows), len(keep))
    kept = [rows[i] for i in keep]
    if len(keep) < len(rows):
        kept.append(_note(rows, keep))
    return kept


def _thin_dict(node: JsonObject, terms: tuple[str, ...], stats: _Stats) -> JsonObject:
    keys = list(node)
    rows = [node[k] for k in keys]
    keep = _select(rows, keys, terms)
    _count(stats, len(rows), len(keep))
    kept = {keys[i]: rows[i] for i in keep}
    if len(keep) < len(rows):
        kept["_omitted"] = _note(rows, keep)
    return kept


def _count(stats: _Stats, total: int, kept: int) -> None:
    stats.rows_total += total
    stats.rows_kept += kept


def _select(rows: Sequence[JsonValue], keys: Sequence[str | None], terms: tuple[str, ...]) -> list[int]:
    """Indices of the rows worth keeping, ascending; a pure function of rows and terms."""
    n = len(rows)
    texts = LoweredLines([_row_text(row, key) for row, key in zip(rows, keys, strict=True)], lowered=True)
    chosen: set[int] = set(range(min(HEAD_ROWS, n))) | set(range(max(0, n - TAIL_ROWS), n))
    useful = texts.selective(terms, max_share=0.25)
    if useful:
        hits = sorted((-s, i) for i, s in texts.term_counts(useful).items())
        chosen.update(i for _, i in hits[:MAX_QUERY_ROWS])
    columns = _columns(rows)
    chosen.update(_error_rows(rows, texts)[:MAX_ERROR_ROWS])
    chosen.update(_rare_rows(columns, n)[:MAX_RARE_ROWS])
    chosen.update(_outlier_rows(columns)[:MAX_OUTLIER_ROWS])
    step = n / (SAMPLE_ROWS + 1)
    chosen.update(int(step * (k + 1)) for k in range(SAMPLE_ROWS))
    return sorted(chosen)


def _row_text(row: JsonValue, key: str | None) -> str:
    """Searchable lower-cased text of a row (its key in a record map, then its JSON).

    Field names are in the text too, but they occur in every row, so the
    discriminative filter discards query words that only match them.
    """
    try:
        body = orjson.dumps(row).decode()
    except TypeError:  # integers beyond 64 bits
        body = json.dumps(row, ensure_ascii=False)
    return (body if key is None else f"{key}\x1f{body}").lower()


def _error_rows(rows: Sequence[JsonValue], texts: LoweredLines) -> list[int]:
    """Rows whose values look like a failure, or that carry a non-empty error field.

    One scan of all rows' texts for the error stems rules most rows out
    cheaply; only the rows it flags are inspected field by field.
    """
    found: list[int] = []
    for i in sorted(texts.containing(_ERROR_STEMS)):
        row = rows[i]
        if not isinstance(row, dict):
            continue
        for key, value in row.items():
            if key.lower() in _ERROR_KEYS and str(value).lower() not in _OK_VALUES:
                found.append(i)
                break
            if isinstance(value, str) and len(value) < 200 and _ERROR_VALUE.search(value):
                found.append(i)
                break
    return found


_Scalar = str | int | float | bool | None
_Column = tuple[list[int], list[_Scalar]]
"""A field's scalar values and the indices of the rows holding them, in row order."""


def _rare_rows(columns: dict[str, _Column], n: int) -> list[int]:
    """Rows holding a value that is rare in an otherwise repetitive (categorical) field."""
    found: list[int] = []
    for key in sorted(columns):
        indices, values = columns[key]
        tally = Counter(v for v in values if isinstance(v, (str, bool)) or v is None)
        if not tally or len(tally) > max(4, n // 20):
            continue
        rare_limit = max(1, n // 100)
        found.extend(
            i
            for i, v in zip(indices, values, strict=True)
            if (isinstance(v, (str, bool)) or v is None) and tally[v] <= rare_limit
        )
    return sorted(set(found))


def _outlier_rows(columns: dict[str, _Column]) -> list[int]:
    """Rows with a number far from its field's median (robust z-score over the MAD)."""
    found: list[int] = []
    for key in sorted(columns):
        indices, values = columns[key]
        if len(values) < MIN_ROWS:
            continue
        numbers = [
            (i, float(v))
            for i, v in zip(indices, values, strict=True)
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]
        if len(numbers) < MIN_ROWS:
            continue
        ordered = sorted(v for _, v in numbers)
        median = ordered[len(ordered) // 2]
        mad = sorted(abs(v - median) for v in ordered)[len(ordered) // 2]
        if mad == 0 or not math.isfinite(mad):
            continue
        scored = sorted((-abs(v - median) / mad, i) for i, v in numbers if abs(v - median) / mad > OUTLIER_Z)
        found.extend(i for _, i in scored[:2])
    return found


def _columns(rows: Sequence[JsonValue]) -> dict[str, _Column]:
    """Top-level scalar fields of record rows, per key."""
    columns: dict[str, _Column] = {}
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            for key, value in row.items():
                if not isinstance(value, (dict, list)):
                    column = columns.get(key)
                    if column is None:
                        column = columns[key] = ([], [])
                    column[0].append(i)
                    column[1].append(value)
    return columns


def _note(rows: Sequence[JsonValue], keep: list[int]) -> str:
    """The omission marker: how many rows, of what shape, and why the kept ones were kept."""
    omitted = len(rows) - len(keep)
    detail = f"{_shape(rows)}; kept first/last, matches, errors, rare values, outliers and a sample"
    return marker(omitted, "similar rows", detail)


def _shape(rows: Sequence[JsonValue]) -> str:
    """A short description of what the rows look like, e.g. ``objects with keys a, b, c``."""
    key_counts = Counter(chain.from_iterable(row for row in rows if isinstance(row, dict)))
    kinds: Counter[str] = Counter()
    for kind, count in Counter(map(type, rows)).items():
        kinds[kind.__name__] += count
    if kinds.get("dict", 0) * 2 >= len(rows):
        common = [k for k, c in key_counts.most_common() if c * 2 >= len(rows)][:12]
        more = "" if len(key_counts) <= len(common) else ", ..."
        return "objects with keys " + ", ".join(common) + more
    return "values of type " + ", ".join(sorted(kinds))
