"""Build and test logs: keep what went wrong and the verdict, collapse the rest.

A test run with three failures among eight hundred passes is eight hundred
lines saying "fine" and a few dozen that matter: failure headers, assertion
lines, tracebacks, warnings, the summary. Those are kept with a little
context, plus the first and last lines and anything the question names;
every other run of lines becomes one marker with a count (and a tally of
PASSED/SKIPPED/... so the model still knows what the omitted lines said).

Two kinds of line are never dropped: a line with an error keyword (see
``relevance``) and a line with a word or number of the question that picks
out a minority of the lines. Repeated warnings and other problem lines are
deduplicated by shape; those two kinds never are. An agent's own cut marker
(``…N chars truncated…``) is kept too: it tells the model where to look.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter

from headroom_twisted.compress.blocks.envelope import cut_lines
from headroom_twisted.compress.compressors.relevance import (
    LoweredLines,
    line_starts,
    lines_containing,
    lines_matching,
    marker,
    query_terms,
)
from headroom_twisted.compress.compressors.result import CompressResult

HEAD_LINES = 3
TAIL_LINES = 4
CONTEXT = 1
AFTER_TRACEBACK = 2  # trial names the failed test on the lines after its traceback
MAX_MESSAGE_LINES = 20
MAX_REPEATS = 2
MIN_DEDUPE_CHARS = 24  # short separators and "[FAIL]" headers are structure, never deduplicated
MAX_LINE_CHARS = 2_000
WINDOW_BEFORE = 200
MAX_SHAPE_CHARS = 400  # repeats are recognised by their opening; a longer probe only costs time
MIN_RUN = 3
SHAPE_SAMPLE = 64  # the marker's "similar" is judged on a run's first lines

# Matched against the lower-cased line: one case-sensitive pass is much cheaper than re.I.
_PROBLEM = re.compile(
    r"\b(?:errors?|fail(?:ed|ures?|ing)?|fatal|exception|panic(?:ked)?|denied|refused|"
    r"segmentation fault|abort(?:ed)?|critical|time(?:out|d out)|undefined reference|cannot|"
    r"could not|couldn't|unable to|not found|no such|traceback|assert\w*|warn(?:ing)?|deprecat\w*)\b"
)
# Compiler error codes (``error[E0425]``, ``E1101``); the literal first keeps the scan fast.
_ERROR_CODE = re.compile(r"e(?<![a-z0-9_]e)\d{3,4}(?![a-z0-9_])")
_PROBLEM_STEMS = (
    "err",
    "fail",
    "fatal",
    "exception",
    "panic",
    "denied",
    "refused",
    "segmentation",
    "abort",
    "critical",
    "time",
    "undefined",
    "cannot",
    "could",
    "unable",
    "not found",
    "no such",
    "traceback",
    "assert",
    "warn",
    "deprecat",
)
_STRUCTURE_START = re.compile(
    r"(=+ .+ =+|_+ .+ _+|-+ .+ -+)$|E\s|>\s|\S+\.\w+:\d+:\s|"
    r"Ran \d+ tests?|FAILED \(|PASSED \(|OK\b|Successfully |ERROR:|error(\[\w+\])?:|"
    r"test result:|npm ERR!|make(\[\d+\])?: \*\*\*|Finished |Summary|SUMMARY"
)
# Where ``_STRUCTURE_START`` may match, found by whole-text scans: the openings it can match
# (after a newline, so every line but the first), and the ``:12:`` its ``path.py:12:`` holds.
_STRUCTURE_OPENING = re.compile(
    r"\n(?:[=_>-]|E|Ran |FAILED \(|PASSED \(|OK|Successfully |ERROR:|error|test result:|npm ERR!|make|Finished |"
    r"Summary|SUMMARY)"
)
_LINE_NUMBER = re.compile(r":\d+:")
_SUMMARY_COUNT = re.compile(r"\d (?:passed|failed|errors?|skipped|warnings?|xfailed|xpassed|deselected)\b")
_SUMMARY_WORDS = (" passed", " failed", " error", " skipped", " warning", " xfailed", " xpassed", " deselected")
# A status word as a whole word (``PASSED``, ``ok``), or one in brackets (``[OK]``). Each word
# opens with its letter and then looks behind it for the word boundary: a pattern that opens
# with a literal lets the regex engine skip ahead to it, where ``\b(PASSED|...)`` is tried at
# every position of the line (twice as slow).
_NOISE_STATUS = re.compile(
    r"P(?<!\wP)ASSED\b|P(?<!\wP)ASS\b|S(?<!\wS)KIPPED\b|S(?<!\wS)KIP\b|X(?<!\wX)FAIL\b|X(?<!\wX)PASS\b|"
    r"O(?<!\wO)K\b|o(?<!\wo)k\b|p(?<!\wp)assed\b|s(?<!\ws)kipped\b|\[(?:OK|SKIPPED|SUCCESS|TODO)\]"
)
# Progress lines like ``test_x.py::test_y FAILED [ 40%]`` or ``test_y ... [FAIL]``.
_FAILED_STATUS = re.compile(r"\b(FAILED|ERROR|XPASS)\b|\[(FAIL|ERROR)\]")
_FAILED_WORDS = ("FAIL", "ERROR", "XPASS")
_TRACEBACK_START = re.compile(r"^\s*Traceback \(most recent call last\):")
# Numbers (``\d+``) and hex ids (``[0-9a-f]{8,}``, any case). Spelled to open with one character
# class, which the regex engine skips ahead to; ``0x1f`` is ``#x#f`` as it always was (``\d+``
# wins at its ``0``), and no re.I, which folds every character it tries.
_SHAPE = re.compile(r"[\da-fA-F](?:(?<=\d)\d*|[0-9a-fA-F]{7,})")
# The parts of a line that vary between repeats of one message: quoted
# strings, URLs, paths, numbers. Every alternative is linear in the line: a
# URL may start only where a run of scheme characters starts (the
# look-behind), so a failed attempt never rescans that run; a greedy
# ``\S+://`` tried at every position of a 40,000-character token was
# quadratic (seconds per line).
_VARIABLE = re.compile(r"'[^']*'|\"[^\"]*\"|(?<![\w+.-])[A-Za-z][\w+.-]*://\S*|(?:/[\w.+-]+)+/?|\d+")


def compress(text: str, query: str) -> CompressResult:
    """Keep problem, structure and query lines with context; collapse everything else."""
    lines = text.split("\n")
    lowered = LoweredLines(lines)
    terms = lowered.selective(query_terms(query))
    keep = _keep_mask(lines, lowered, terms, text)
    return CompressResult("\n".join(_render(lines, keep, terms, text)), "log_triage")


def _keep_mask(lines: list[str], lowered: LoweredLines, terms: tuple[str, ...], text: str) -> list[bool]:
    n = len(lines)
    keep = [False] * n
    for i in list(range(min(HEAD_LINES, n))) + list(range(max(0, n - TAIL_LINES), n)):
        keep[i] = True
    seen: Counter[str] = Counter()
    exact: Counter[str] = Counter()
    starts = line_starts(lines)
    vital = lowered.term_lines(terms) | set(lowered.with_error_keyword()) | cut_lines(text, starts)
    flagged = vital | _structure(lines, text, starts) | _problems(lines, lowered) | _failures(lines, text, starts)
    tracebacks = {i for i in lines_containing(text, starts, ("Traceback",)) if _TRACEBACK_START.match(lines[i])}
    after_traceback = 0  # lines before this index belong to a traceback already kept
    for i in sorted(flagged | tracebacks):
        if i < after_traceback:
            continue
        if i in tracebacks:
            after_traceback = _keep_traceback(lines, i, keep)
            continue
        line = lines[i]
        context = CONTEXT
        if i in vital and len(line) >= MIN_DEDUPE_CHARS:
            exact[line] += 1
            if exact[line] > MAX_REPEATS:
                continue  # its text is already kept; the run marker says it repeats
        elif len(line) >= MIN_DEDUPE_CHARS:
            shape = _VARIABLE.sub("#", line.strip()[:MAX_SHAPE_CHARS])
            seen[shape] += 1
            if seen[shape] > MAX_REPEATS:
                continue
            if seen[shape] > 1:
                context = 0  # a repeat's neighbours are usually more repeats
        for j in range(max(0, i - context), min(n, i + context + 1)):
            keep[j] = keep[j] or j == i or not _NOISE_STATUS.search(lines[j])
    return keep


# Each set below is found by a whole-text scan for what its test needs (a stem, an opening),
# then the test itself runs on those few lines only: most lines of a log are never looked at.


def _structure(lines: list[str], text: str, starts: list[int]) -> set[int]:
    """Lines that open a section or state a summary: ``=== FAILURES ===``, ``Ran 12 tests``, ``3 passed``."""
    openings = lines_matching(text, starts, _STRUCTURE_OPENING) | lines_matching(text, starts, _LINE_NUMBER) | {0}
    found = {i for i in openings if _STRUCTURE_START.match(lines[i])}
    found.update(i for i in lines_containing(text, starts, _SUMMARY_WORDS) if _SUMMARY_COUNT.search(lines[i]))
    return found


def _problems(lines: list[str], lowered: LoweredLines) -> set[int]:
    """Lines naming a problem (``warning``, ``E1101``) that do not also report a passed or skipped status."""
    low = lowered.lowered
    found = {i for i in lowered.containing(_PROBLEM_STEMS) if _PROBLEM.search(low[i])}
    found |= lines_matching(lowered.text, lowered.starts, _ERROR_CODE)
    return {i for i in found if not _NOISE_STATUS.search(lines[i])}


def _failures(lines: list[str], text: str, starts: list[int]) -> set[int]:
    return {i for i in lines_containing(text, starts, _FAILED_WORDS) if _FAILED_STATUS.search(lines[i])}


def _keep_traceback(lines: list[str], start: int, keep: list[bool]) -> int:
    """Keep a traceback from its first line to the exception line (and the message after it); return the next index."""
    indent = _indent(lines[start])
    keep[start] = True
    for i in range(start + 1, len(lines)):
        line = lines[i]
        keep[i] = True
        if line.strip() and _indent(line) <= indent and not _TRACEBACK_START.match(line):
            _keep_exception_tail(lines, i + 1, keep)
            return i + 1
    return len(lines)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _keep_exception_tail(lines: list[str], start: int, keep: list[bool]) -> None:
    """Keep the rest of a multi-line exception message, then the lines naming the test."""
    end = start
    while end < min(len(lines), start + MAX_MESSAGE_LINES) and lines[end].strip():
        end += 1
    for j in range(start, min(len(lines), end + 1 + AFTER_TRACEBACK)):
        keep[j] = True


def _render(lines: list[str], keep: list[bool], terms: tuple[str, ...], text: str) -> list[str]:
    """Emit kept lines and one marker per omitted run (short runs are cheaper kept)."""
    starts = line_starts(lines)
    out: list[str] = []
    i = 0
    n = len(lines)
    while i < n:
        if keep[i]:
            out.append(_clip(lines[i], terms))
            i += 1
            continue
        j = i
        while j < n and not keep[j]:
            j += 1
        run = lines[i:j]
        if len(run) < MIN_RUN:
            out.extend(_clip(line, terms) for line in run)
        else:
            out.append(_run_marker(run, _statuses(text, starts, i, j)))
        i = j
    return out


def _clip(line: str, terms: tuple[str, ...]) -> str:
    """A very long line cut to its opening, plus a window around the first error or question word past it."""
    if len(line) <= MAX_LINE_CHARS:
        return line
    head = MAX_LINE_CHARS // 2
    lowered = line.lower()
    hits = [lowered.find(t, head) for t in terms]
    error = _PROBLEM.search(lowered, head)
    hits = [h for h in [*hits, error.start() if error else -1] if h >= 0]
    if not hits:
        return line[:MAX_LINE_CHARS] + " " + marker(len(line) - MAX_LINE_CHARS, "characters")
    start = max(head, min(hits) - WINDOW_BEFORE)
    end = min(len(line), start + MAX_LINE_CHARS - head)
    skipped = marker(start - head, "characters") + " " if start > head else ""
    rest = " " + marker(len(line) - end, "characters") if end < len(line) else ""
    return line[:head] + " " + skipped + line[start:end] + rest


def _statuses(text: str, starts: list[int], first: int, end: int) -> Counter[str]:
    """The status words (``PASSED``, ``[OK]`` as ``OK``) of lines ``first`` to ``end``, each line's first one.

    One scan of the run's span of the text; a line's first match is the
    one a search of the line alone would find.
    """
    tally: Counter[str] = Counter()
    last = -1
    for status in _NOISE_STATUS.finditer(text, starts[first], starts[end] - 1):
        line = bisect_right(starts, status.start()) - 1
        if line != last:
            tally[status.group().strip("[]").upper()] += 1
            last = line
    return tally


def _run_marker(run: list[str], tally: Counter[str]) -> str:
    """``[... 312 lines omitted; 310 PASSED, 2 SKIPPED ...]`` or ``... similar lines ...``."""
    if len(set(run)) == 1 and len(run[0]) >= MIN_DEDUPE_CHARS:
        return marker(len(run), "repeats of a line kept above")
    detail = ", ".join(f"{count:,} {word}" for word, count in sorted(tally.items(), key=lambda kv: (-kv[1], kv[0])))
    sample = run[:SHAPE_SAMPLE]
    shapes = Counter(_SHAPE.sub("#", line.split(" ", 1)[0]) for line in sample)
    similar = shapes.most_common(1)[0][1] * 2 >= len(sample)
    return marker(len(run), "similar lines" if similar else "lines", detail)
