"""Search results (``path:line:text``): grouped by file, relevant matches first.

A recursive grep answers one question with a handful of lines buried in
hundreds. Grouping by file states each path once; within a file, matches
that share words with the question come first and the rest are capped.
Files whose path or matches share words with the question are shown first.
No file disappears silently: files beyond the cap are listed with their
match counts, and a final marker says how many files and matches were left out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from headroom_twisted.compress.relevance import discriminative, marker, matches, query_terms
from headroom_twisted.compress.result import CompressResult

PER_FILE = 4
MAX_FILES = 30
MAX_LISTED = 40
MAX_TEXT = 240

_MATCH = re.compile(r"^(?P<path>[^\s:][^:\n]*?):(?P<line>\d+):(?:(?P<col>\d+):)?(?P<text>.*)$")
_CONTEXT = re.compile(r"^(?P<path>[^\s:][^:\n]*?)-\d+-")
MAX_OTHER = 20


@dataclass
class _FileGroup:
    path: str
    matches: list[tuple[str, str]]
    score: int = 0


def compress(text: str, query: str) -> CompressResult:
    """Group matches by file, keep the relevant ones, and account for every omission."""
    groups, other = _parse(text.split("\n"))
    lowered = [f"{g.path}:{t}".lower() for g in groups for _, t in g.matches]
    terms = discriminative(query_terms(query), lowered, max_share=0.2)
    for group in groups:
        group.score = sum(matches(terms, f"{group.path}:{t}".lower()) for _, t in group.matches)
    prefix = _common_dir([g.path for g in groups])
    shown = _choose_files(groups)
    out: list[str] = [f"[search results; paths relative to {prefix}]"] if prefix else []
    out.extend(other)
    kept_matches = 0
    for index in shown:
        kept_matches += _render_group(groups[index], prefix, terms, out)
    hidden = [g for i, g in enumerate(groups) if i not in shown]
    for group in hidden[:MAX_LISTED]:
        out.append(f"{group.path[len(prefix) :]} [{len(group.matches):,} matches not shown]")
    if len(hidden) > MAX_LISTED:
        rest = hidden[MAX_LISTED:]
        out.append(marker(len(rest), "more files", f"{sum(len(g.matches) for g in rest):,} matches"))
    total = sum(len(g.matches) for g in groups)
    return CompressResult(
        "\n".join(out),
        "search_group",
        {"files_total": len(groups), "files_shown": len(shown), "matches_total": total, "matches_kept": kept_matches},
    )


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
    out = other[:MAX_OTHER]
    if len(other) > MAX_OTHER:
        out.append(marker(len(other) - MAX_OTHER, "other lines"))
    if context:
        out.append(marker(len(context), "context lines and separators"))
    return list(by_path.values()), out


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
    """Indices of the files to show, in display order: most relevant first, then as found."""
    ranked = sorted(range(len(groups)), key=lambda i: (-groups[i].score, i))
    return dict.fromkeys(ranked[:MAX_FILES])


def _render_group(group: _FileGroup, prefix: str, terms: tuple[str, ...], out: list[str]) -> int:
    out.append(group.path[len(prefix) :])
    ranked = sorted(range(len(group.matches)), key=lambda i: (-matches(terms, group.matches[i][1].lower()), i))
    chosen = sorted(ranked[:PER_FILE])
    for i in chosen:
        line_no, text = group.matches[i]
        out.append(f"  {line_no}: {_clip(text.strip(), terms)}")
    left = len(group.matches) - len(chosen)
    if left:
        out.append("  " + marker(left, "more matches in this file"))
    return len(chosen)


def _clip(text: str, terms: tuple[str, ...]) -> str:
    """Long lines (minified code) cut to a window around the first relevant word."""
    if len(text) <= MAX_TEXT:
        return text
    lowered = text.lower()
    hits = [lowered.find(t) for t in terms if t in lowered]
    start = max(0, min(hits) - MAX_TEXT // 3) if hits else 0
    window = text[start : start + MAX_TEXT]
    return ("…" if start else "") + window + "…"
