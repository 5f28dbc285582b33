"""Shared helpers: which words of the user's question matter, and omission markers.

Every compressor keeps what the question names, so they must agree on what
a "word of the question" is; and every omission must read the same to the
model, so the marker format lives here too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

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
SELECTIVE_SHARE = 0.2

# Words that mean something went wrong. A line holding one is never dropped by
# a line compressor (warnings may be deduplicated; these may not).
_ERROR_KEYWORD = re.compile(
    r"\b(?:errors?|fail(?:s|ed|ures?|ing)?|fatal|exceptions?|traceback|panic(?:ked)?|critical|denied|"
    r"refused|abort(?:ed)?|segfault|segmentation fault)\b"
)
_ERROR_STEMS = (
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
    return any(stem in lowered for stem in _ERROR_STEMS) and bool(_ERROR_KEYWORD.search(lowered))


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


def marker(count: int, what: str, detail: str = "") -> str:
    """The omission marker the model reads, e.g. ``[... 1,412 similar rows omitted ...]``."""
    suffix = f"; {detail}" if detail else ""
    return f"[... {count:,} {what} omitted{suffix} ...]"
