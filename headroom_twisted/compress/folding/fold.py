"""Fold a source read: the outline stays with its line numbers, each folded run becomes one marker.

The result is lossless by reference: every row is either shown exactly as
the agent received it or inside exactly one marker's range, and reading the
file at that range gives the folded rows back. A marker reads::

    [... lines 120-188 folded (body); Read offset=120 limit=69 ...]

It names what the lines are (``body``, ``doc``, ``docstring``, ``comment``,
or several, ``body, doc``, where touching folds joined): the definition line
right above it says whose.

A file that does not parse cleanly is cut back to a clean prefix ending
before one of its last few definition lines (a read that stopped at a line
cap ends mid-definition); what follows the prefix is shown unchanged, and a
file with no such prefix is not folded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from tree_sitter import Node, Tree

from headroom_twisted.compress.blocks import detect
from headroom_twisted.compress.compressors.result import CompressResult, NotApplicable
from headroom_twisted.compress.folding.languages import GRAMMARS, language_of_label, parse
from headroom_twisted.compress.folding.outline import Fold, Outline, outline
from headroom_twisted.compress.folding.reads import SourceRead

FOLD_GAIN = 2
"""A run folds only if it is at least this many times as long as its marker: a fold must
at least halve what it hides, or the row-by-row view is worth its few extra tokens."""

CUT_ATTEMPTS = 4
"""How many cut points from the end are tried when a read does not parse as a whole."""

_DEFINITION_START = re.compile(
    r"\s*(?:@[\w.]+\s*(?:\(|$)|def |async def |class |func |fn |pub |impl |trait |function |export |public |"
    r"private |protected |static |interface |type |const |let |var |mod |struct |enum )"
)


def language_of(read: SourceRead) -> str | None:
    """The read's language: its file name's; for a name with no extension (``bin/tool``), Magika's
    reading of its first lines; None without a grammar.

    (`reads.recognise` already turned away names whose extension names no
    language here, so Magika is not asked about a ``cat`` of each of 1,300 logs.)
    """
    if read.language is not None:
        return read.language
    return language_of_label(detect.magika_label("\n".join(read.code[:400])))


def fold(read: SourceRead, query: str, language: str) -> CompressResult:
    """The read (of a file in ``language``) with the bodies the question does not need folded.

    NotApplicable when the source does not parse or nothing folds.
    """
    tree, clean_rows = _clean_prefix(language, read.code)
    if tree is None:
        raise NotApplicable("the source does not parse")
    found = outline(tree.root_node, language, read.code[:clean_rows], query, read.path)
    rows = list(_folded_rows(read, found))
    if len(rows) == len(read.rows):
        raise NotApplicable("nothing to fold")
    return CompressResult(read.head + "\n".join(rows) + read.tail, "code_fold")


def folding(read: SourceRead, language: str) -> Callable[[str, str], CompressResult]:
    """``read`` as a compressor ``(text, query)``, the shape the block policy calls."""

    def compress(_text: str, query: str) -> CompressResult:
        return fold(read, query, language)

    return compress


def warm_up() -> None:
    """Load every grammar now rather than on the first read of its language."""
    for language in GRAMMARS:
        parse(language, b"")


def _clean_prefix(language: str, code: Sequence[str]) -> tuple[Tree | None, int]:
    """A clean parse of all of ``code``, or of the longest prefix that ends before a definition line.

    Each shorter prefix is parsed incrementally: the tree is edited to drop
    the tail and the parser reuses the rest.
    """
    source = "\n".join(code).encode("utf-8", "surrogatepass")
    tree = parse(language, source)
    if _parsed_cleanly(tree.root_node):
        return tree, len(code)
    end_point = (len(code) - 1, len(code[-1].encode("utf-8", "surrogatepass")))
    attempts = 0
    for row in range(len(code) - 1, 0, -1):
        if not _DEFINITION_START.match(code[row]) or code[row - 1].lstrip().startswith("@"):
            continue  # a definition under a decorator is cut at the decorator
        cut = len("\n".join(code[:row]).encode("utf-8", "surrogatepass"))
        last = (row - 1, len(code[row - 1].encode("utf-8", "surrogatepass")))
        tree.edit(cut, len(source), cut, last, end_point, last)
        source, end_point = source[:cut], last
        tree = parse(language, source, tree)
        if _parsed_cleanly(tree.root_node):
            return tree, row
        attempts += 1
        if attempts == CUT_ATTEMPTS:
            break
    return None, 0


def _parsed_cleanly(root: Node) -> bool:
    """No error node; missing nodes only at the very end (a prefix cut inside an open brace)."""
    if not root.has_error:
        return True
    end = root.end_byte
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or (node.is_missing and node.start_byte < end):
            return False
        stack.extend(child for child in node.children if child.has_error or child.is_missing)
    return True


def _folded_rows(read: SourceRead, found: Outline) -> Iterator[str]:
    """The rows to show: kept rows as they were, and one marker per folded run.

    The folds are in order and disjoint; rows that stay (``found.kept``)
    split a fold into runs.
    """
    shown = 0
    for fold in found.folds:
        for first, last in _runs(fold, found.kept):
            yield from read.rows[shown:first]
            marker = _marker(read, fold, first, last)
            if sum(map(len, read.rows[first : last + 1])) < FOLD_GAIN * len(marker):
                yield from read.rows[first : last + 1]
            else:
                yield marker
            shown = last + 1
    yield from read.rows[shown:]


def _runs(fold: Fold, kept: frozenset[int]) -> Iterator[tuple[int, int]]:
    """``fold``'s rows as maximal runs ``(first, last)`` of rows that are not kept."""
    start = None
    for row in range(fold.first, fold.last + 2):
        if row <= fold.last and row not in kept:
            start = row if start is None else start
        elif start is not None:
            yield start, row - 1
            start = None


def _marker(read: SourceRead, fold: Fold, row: int, end: int) -> str:
    first, last = read.first_line + row, read.first_line + end
    return f"[... lines {first}-{last} folded ({fold.what}); {read.unfold(first, last)} ...]"
