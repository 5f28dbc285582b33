"""Shared helpers: which words of the user's question matter, and omission markers.

Every compressor keeps what the question names, so they must agree on what
a "word of the question" is; and every omission must read the same to the
model, so the marker format lives here too.
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from itertools import accumulate, islice, pairwise

_WORD = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-/]*[A-Za-z0-9_]|[A-Za-z0-9_]")
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing done down during each else few find for
    from get got had has have having he her here hers him his how i if in into is it its itself
    just let me more most my no nor not now of off on once only or other our out over own please
    same see she should show so some such tell than that the their them then there these they
    this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours line lines file files row rows entry entries item
    items record records output result results give list which does did used use using""".split()
)
MAX_TERMS = 24
_DENSE_HITS = 6  # a needle found more often than once in this many lines is tested line by line
SELECTIVE_SHARE = 0.2

# Words that mean something went wrong. A line holding one is never dropped by
# a line compressor (warnings may be deduplicated; these may not).
_ERROR_KEYWORD = re.compile(
    r"\b(?:errors?|fail(?:s|ed|ures?|ing)?|fatal|exceptions?|traceback|panic(?:ked)?|critical|denied|"
    r"refused|abort(?:ed)?|segfault|segmentation fault)\b"
)
ERROR_STEMS = (
    "err",
    "fail",
    "fatal",
    "exception",
    "traceback",
    "panic",
    "critical",
    "denied",
    "refused",
    "abort",
    "seg",
)


def line_starts(lines: Sequence[str]) -> list[int]:
    """Where each line starts in ``"\\n".join(lines)``, then one past the end; computed in C."""
    return list(map(operator.add, accumulate(map(len, lines), initial=0), range(len(lines) + 1)))


def lines_containing(text: str, starts: Sequence[int], needles: Iterable[str]) -> set[int]:
    """Indices of the lines of ``text`` (as ``line_starts`` splits it) that hold any of ``needles``.

    One C scan of the whole text per needle instead of a Python-level test
    per line; after a hit the scan resumes at the next line, so the cost is
    the text's length plus the lines that hit. A needle in most lines is
    tested line by line instead, which is cheaper than a jump per line. Compressors use it to find
    the few lines worth a regex, and must treat its answer as a superset.
    """
    found: set[int] = set()
    lines: list[str] | None = None
    for needle in needles:
        hits = text.count(needle)
        if hits * _DENSE_HITS > len(starts):  # a test per line costs less than a jump per hit
            if lines is None:
                lines = [text[start : end - 1] for start, end in pairwise(starts)]
            found.update(i for i, line in enumerate(lines) if needle in line)
            continue
        at = text.find(needle) if hits else -1
        while at >= 0:
            line = bisect_right(starts, at) - 1
            found.add(line)
            at = text.find(needle, starts[line + 1])
    return found


class LoweredLines:
    """A block's lines lower-cased once, and joined, so that per-line questions become whole-text scans.

    Most lines of a large block hold no question word and no error keyword;
    finding the few that do with ``str.find`` over the joined text is far
    cheaper than testing every line in Python. Answers are line indices.
    """

    def __init__(self, lines: Sequence[str], *, lowered: bool = False) -> None:
        """``lines`` may hold newlines themselves (rows, records): indices follow the list, not the text.

        ``lowered=True`` says the lines are lower-cased already.
        """
        self.lowered = list(lines) if lowered else [line.lower() for line in lines]
        self.text = "\n".join(self.lowered)
        self.starts = line_starts(self.lowered)
        self._holding: dict[str, set[int]] = {}

    def containing(self, needles: Iterable[str]) -> set[int]:
        """Lines holding any of ``needles`` (lower-case) anywhere; each needle is scanned for once."""
        found: set[int] = set()
        for needle in needles:
            lines = self._holding.get(needle)
            if lines is None:
                lines = self._holding[needle] = lines_containing(self.text, self.starts, (needle,))
            found |= lines
        return found

    def with_term(self, term: str) -> Iterator[int]:
        """Lines holding ``term`` as a whole word (see :func:`matches`), ascending, found as they are needed."""
        if self.text.count(term) * _DENSE_HITS > len(self.lowered):
            found = _pattern(term).search
            return (i for i, line in enumerate(self.lowered) if term in line and found(line))
        return _lines_found(self.text, self.starts, _located(term))

    def with_error_keyword(self) -> list[int]:
        """Lines for which :func:`has_error_keyword` holds, ascending."""
        lowered = self.lowered
        return [i for i in sorted(self.containing(ERROR_STEMS)) if _ERROR_KEYWORD.search(lowered[i])]

    def selective(self, terms: Sequence[str], max_share: float = SELECTIVE_SHARE) -> tuple[str, ...]:
        """:func:`discriminative` over these lines (by default :func:`selective`)."""
        if not self.lowered:
            return tuple(terms)
        limit = max(1, int(len(self.lowered) * max_share))
        kept = []
        for term in terms:
            hits = sum(1 for _ in islice(self.with_term(term), limit + 1))
            if 0 < hits <= limit:
                kept.append(term)
        return tuple(kept)

    def term_lines(self, terms: Iterable[str]) -> set[int]:
        """Lines holding any of ``terms`` as a whole word."""
        found: set[int] = set()
        for term in terms:
            found.update(self.with_term(term))
        return found

    def term_counts(self, terms: Iterable[str]) -> dict[int, int]:
        """Line index -> :func:`matches` of ``terms`` on that line, for the lines where it is not zero."""
        counts: dict[int, int] = {}
        for term in terms:
            for i in self.with_term(term):
                counts[i] = counts.get(i, 0) + 1
        return counts


def _lines_found(text: str, starts: Sequence[int], pattern: re.Pattern[str]) -> Iterator[int]:
    """The lines where ``pattern`` (no newline in it) matches, ascending, one scan resumed line by line."""
    hit = pattern.search(text)
    while hit is not None:
        line = bisect_right(starts, hit.start()) - 1
        yield line
        hit = pattern.search(text, starts[line + 1])


def lines_matching(text: str, starts: Sequence[int], pattern: re.Pattern[str]) -> set[int]:
    """Indices of the lines of ``text`` where ``pattern`` finds a match, counted where the match ends.

    ``pattern`` matches no newline, except one it opens with: ``\\nE`` finds
    the lines that open with ``E`` (all but the first line), one C scan
    where ``^`` with ``re.M`` would be tried at every position.
    """
    found: set[int] = set()
    hit = pattern.search(text)
    while hit is not None:
        line = bisect_right(starts, hit.end() - 1) - 1
        found.add(line)
        hit = pattern.search(text, starts[line + 1] - 1)
    return found


def whole_words(words: Iterable[str]) -> str:
    """A regex alternative for any of ``words`` as a whole word: ``\\b(?:a|b)\\b``, spelled to scan fast.

    Each word opens with its first letter and looks behind that letter for
    the boundary, so the pattern opens with a literal in every branch and
    the regex engine skips ahead to those letters instead of trying the
    whole alternation at every position (which made ``\\b(...)`` the
    costliest part of detection). ``words`` must open and end with a word
    character, where ``\\b`` means "no word character on that side".
    """
    return "|".join(
        re.escape(word[0]) + r"(?<!\w" + re.escape(word[0]) + ")" + re.escape(word[1:]) + r"(?!\w)" for word in words
    )


def query_terms(query: str) -> tuple[str, ...]:
    """Lower-cased distinctive words of the question, in first-seen order.

    Stop words and one-letter words carry no selection signal. Dotted or
    slashed words (``twisted.web.client``, ``a/b.py``) are kept whole and
    also split, so either spelling in the data matches.
    """
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        parts = [word] + [p for p in re.split(r"[./\-]", word) if p != word]
        for part in parts:
            if (len(part) >= 2 and part not in _STOPWORDS and not part.isdigit()) or _is_number_term(part):
                seen.setdefault(part, None)
    return tuple(seen)[:MAX_TERMS]


def _is_number_term(part: str) -> bool:
    """Every number the question holds: a line number, port or count is often the point.

    Short numbers that are everywhere (``1``, ``0``) are discarded by
    :func:`selective` like any other common word.
    """
    return part.isdigit()


def selective(terms: Sequence[str], haystacks: Sequence[str]) -> tuple[str, ...]:
    """The terms that pick out a minority of the (lower-cased) lines or rows.

    Line compressors keep every line holding one of these; a word found in
    most lines (the grep pattern, a column value) selects nothing.
    """
    return discriminative(terms, haystacks, max_share=SELECTIVE_SHARE)


def has_error_keyword(lowered: str) -> bool:
    """Whether a lower-cased line says something failed (``error``, ``failed``, ``traceback``, ...).

    Substring checks run first: they are C loops, and most lines hold no
    stem at all, so the word-boundary regex rarely runs.
    """
    return any(stem in lowered for stem in ERROR_STEMS) and bool(_ERROR_KEYWORD.search(lowered))


def discriminative(terms: Sequence[str], haystacks: Sequence[str], max_share: float = 0.3) -> tuple[str, ...]:
    """Drop terms that occur in more than ``max_share`` of the haystacks.

    A word present in most rows (a key name, the grep pattern itself) selects
    nothing; keeping only rare words is a cheap inverse-document-frequency.
    """
    if not haystacks:
        return tuple(terms)
    limit = max(1, int(len(haystacks) * max_share))
    kept = []
    for term in terms:
        hits = 0
        found = _pattern(term).search
        for hay in haystacks:
            if term in hay and found(hay):
                hits += 1
                if hits > limit:
                    break
        if 0 < hits <= limit:
            kept.append(term)
    return tuple(kept)


def matches(terms: Iterable[str], haystack: str) -> int:
    """How many of ``terms`` occur as whole words in the lower-cased ``haystack``.

    Whole words, so that asking about ``pkg77`` does not select ``pkg770``.
    """
    return sum(1 for term in terms if term in haystack and _pattern(term).search(haystack))


@lru_cache(maxsize=1024)
def _pattern(term: str) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z0-9_])" + re.escape(term) + r"(?![a-z0-9_])")


@lru_cache(maxsize=1024)
def _located(term: str) -> re.Pattern[str]:
    """``_pattern(term)`` spelled to open with the term itself, which the regex engine skips ahead to.

    The look-behind, taken after the term, checks the character before it:
    the same matches, found by a fast scan of a whole text.
    """
    word = re.escape(term)
    return re.compile(word + r"(?<![a-z0-9_]" + word + r")(?![a-z0-9_])")


def marker(count: int, what: str, detail: str = "") -> str:
    """The omission marker the model reads, e.g. ``[... 1,412 similar rows omitted ...]``."""
    suffix = f"; {detail}" if detail else ""
    return f"[... {count:,} {what} omitted{suffix} ...]"
