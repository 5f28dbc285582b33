"""Search results (``path:line:text``): grouped by file, relevant matches first.

A recursive grep answers one question with a handful of lines buried in
hundreds. Grouping by file states each path once; within a file, matches
that share words with the question come first and the rest are capped.
Files whose path or matches share words with the question are shown first.
No file disappears silently: files beyond the cap are listed with their
match counts, and a final marker says how many files and matches were left out.

Caps never apply to two kinds of match: one holding a word or number of the
question that picks out a minority of the matches, and the line that
defines a name the question mentions (``class X``, ``def X``, ``X =``),
which is what "where is X defined?" asks for even when X is too common in
the results to be selective. Non-match lines (``grep: …: Permission
denied``) with an error keyword are kept whatever their number.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from headroom_twisted.compress.blocks.envelope import is_cut
from headroom_twisted.compress.compressors.relevance import LoweredLines, has_error_keyword, marker, query_terms
from headroom_twisted.compress.compressors.result import CompressResult

PER_FILE = 4
MAX_FILES = 30
MAX_LISTED = 40
MAX_TEXT = 240

_MATCH = re.compile(r"^(?P<path>[^\s:][^:\n]*?):(?P<line>\d+):(?:(?P<col>\d+):)?(?P<text>.*)$")
_CONTEXT = re.compile(r"^(?P<path>[^\s:][^:\n]*?)-\d+-")
MAX_OTHER = 20
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
_DEFINITION = (
    r"^\s*(?:(?:export|pub(?:\([a-z]+\))?|public|private|protected|static|async|abstract|final|default)\s+)*"
    r"(?:def|class|function|func|fn|struct|interface|type|enum|trait|const|let|var|val|module)\s+"
    r"(?:{names})(?![a-z0-9_])|^\s*(?:self\.)?(?:{names})\s*(?::[^=\n]*)?=(?!=)"
)


@dataclass
class _FileGroup:
    path: str
    matches: list[tuple[str, str]]
    score: int = 0
    pinned: frozenset[int] = frozenset()
    relevance: list[int] = field(default_factory=list)
    """Per match, how many question words its text holds (``relevance.matches``)."""


def compress(text: str, query: str) -> CompressResult:
    """Group matches by file, keep the relevant ones, and account for every omission."""
    groups, other = _parse(text.split("\n"))
    lowered = LoweredLines([f"{g.path}:{t}" for g in groups for _, t in g.matches])
    texts = LoweredLines([t for g in groups for _, t in g.matches])
    asked = query_terms(query)
    terms = lowered.selective(asked)
    counts = lowered.term_counts(terms)
    defined = _definitions(texts, _definition_names(asked))
    in_text = texts.term_counts(terms)
    first = 0
    for group in groups:
        hits = range(first, first + len(group.matches))
        group.pinned = frozenset(i - first for i in hits if i in counts or i in defined)
        group.score = sum(counts.get(i, 0) for i in hits) + len(group.pinned)
        group.relevance = [in_text.get(i, 0) for i in hits]
        first = hits.stop
    prefix = _common_dir([g.path for g in groups])
    shown = _choose_files(groups)
    out: list[str] = [f"[search results; paths relative to {prefix}]"] if prefix else []
    out.extend(other)
    for index in shown:
        _render_group(groups[index], prefix, terms, out)
    hidden = [g for i, g in enumerate(groups) if i not in shown]
    for group in hidden[:MAX_LISTED]:
        out.append(f"{group.path[len(prefix) :]} [{len(group.matches):,} matches not shown]")
    if len(hidden) > MAX_LISTED:
        rest = hidden[MAX_LISTED:]
        out.append(marker(len(rest), "more files", f"{sum(len(g.matches) for g in rest):,} matches"))
    return CompressResult("\n".join(out), "search_group")


def _parse(lines: list[str]) -> tuple[list[_FileGroup], list[str]]:
    """Matches grouped by path in first-seen order, plus what else the output said.

    ``grep -C`` context lines (``path-12-text``) and ``--`` separators are
    counted, not kept; other lines (``Binary file ... matches``, errors) are
    kept verbatim up to a cap, since they are rare and often the point.
    """
    by_path: dict[str, _FileGroup] = {}
    unmatched: list[str] = []
    for line in lines:
        found = _MATCH.match(line)
        if found is None:
            if line.strip():
                unmatched.append(line)
            continue
        group = by_path.setdefault(found["path"], _FileGroup(found["path"], []))
        line_no = found["line"] + (f":{found['col']}" if found["col"] else "")
        group.matches.append((line_no, found["text"]))
    context = [line for line in unmatched if line == "--" or _is_context(line, by_path)]
    other = [line for line in unmatched if line != "--" and not _is_context(line, by_path)]
    vital = [_vital(line) for line in other]
    out = [line for i, (line, v) in enumerate(zip(other, vital, strict=True)) if v or i < MAX_OTHER]
    left = len(other) - len(out)
    if left:
        out.append(marker(left, "other lines"))
    if context:
        out.append(marker(len(context), "context lines and separators"))
    return list(by_path.values()), out


def _vital(line: str) -> bool:
    return has_error_keyword(line.lower()) or is_cut(line)


def _definition_names(terms: tuple[str, ...]) -> list[str]:
    """The question's words that can be defined: identifiers (lower-cased)."""
    return [t for t in terms if _IDENTIFIER.fullmatch(t)]


def _definitions(texts: LoweredLines, names: list[str]) -> set[int]:
    """Matches whose text defines one of ``names``; only those holding a name are tried."""
    if not names:
        return set()
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=lambda n: (-len(n), n)))
    defines = re.compile(_DEFINITION.format(names=alternatives))
    # Both alternatives open with ``^``: match() is search() without trying every later position.
    return {i for i in texts.containing(names) if defines.match(texts.lowered[i])}


def _is_context(line: str, by_path: dict[str, _FileGroup]) -> bool:
    found = _CONTEXT.match(line)
    return found is not None and found["path"] in by_path


def _common_dir(paths: list[str]) -> str:
    """The directory all paths share, with its trailing slash, when worth factoring out."""
    if len(paths) < 2:
        return ""
    common = os.path.commonprefix(paths)
    cut = common.rfind("/") + 1
    return common[:cut] if cut >= 12 else ""


def _choose_files(groups: list[_FileGroup]) -> dict[int, None]:
    """Indices of the files to show, in display order: most relevant first, then as found.

    Every file with a pinned match is shown, past the cap if need be.
    """
    ranked = sorted(range(len(groups)), key=lambda i: (-groups[i].score, i))
    return dict.fromkeys(i for rank, i in enumerate(ranked) if rank < MAX_FILES or groups[i].pinned)


def _render_group(group: _FileGroup, prefix: str, terms: tuple[str, ...], out: list[str]) -> None:
    out.append(group.path[len(prefix) :])
    ranked = sorted(range(len(group.matches)), key=lambda i: (-group.relevance[i], i))
    chosen = sorted(set(ranked[:PER_FILE]) | group.pinned)
    for i in chosen:
        line_no, text = group.matches[i]
        out.append(f"  {line_no}: {_clip(text.strip(), terms)}")
    left = len(group.matches) - len(chosen)
    if left:
        out.append("  " + marker(left, "more matches in this file"))


def _clip(text: str, terms: tuple[str, ...]) -> str:
    """Long lines (minified code) cut to a window around the first relevant word."""
    if len(text) <= MAX_TEXT:
        return text
    lowered = text.lower()
    hits = [lowered.find(t) for t in terms if t in lowered]
    start = max(0, min(hits) - MAX_TEXT // 3) if hits else 0
    window = text[start : start + MAX_TEXT]
    return ("…" if start else "") + window + "…"
