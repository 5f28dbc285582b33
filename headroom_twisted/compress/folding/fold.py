"""Fold a source read: the outline stays with its line numbers, each folded run becomes one marker.

The result is lossless by reference: every row is either shown exactly as
the agent received it or inside exactly one marker's range, and reading the
file at that range gives the folded rows back. A marker reads::

    [... lines 120-188 folded (body of HTTPChannel.lineReceived); to see them: Read offset=120 limit=69 ...]

A file that does not parse cleanly is cut back to its longest clean prefix
(a read that stopped at a line cap ends mid-definition); what follows the
prefix is shown unchanged, and a file with no clean prefix is not folded.
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

MIN_FOLD_ROWS = 6
"""A shorter run costs about as many tokens as its marker: it is shown instead."""

CUT_ATTEMPTS = 4
"""How many cut points from the end are tried when a read does not parse as a whole."""

_DEFINITION_START = re.compile(
    r"\s*(?:@[\w.]+\s*(?:\(|$)|def |async def |class |func |fn |pub |impl |trait |function |export |public |"
    r"private |protected |static |interface |type |const |let |var |mod |struct |enum )"
)


def fold(read: SourceRead, query: str) -> CompressResult:
    """The read with the bodies the question does not need folded; NotApplicable when nothing folds."""
    language = read.language or language_of_label(detect.magika_label("\n".join(read.code[:400])))
    if language is None:
        raise NotApplicable("no grammar for this file")
    tree, clean_rows = _clean_prefix(language, read.code)
    if tree is None:
        raise NotApplicable("the source does not parse")
    found = outline(tree.root_node, language, read.code[:clean_rows], query, read.path)
    rows = list(_folded_rows(read, found))
    if len(rows) == len(read.rows):
        raise NotApplicable("nothing to fold")
    return CompressResult(read.head + "\n".join(rows) + read.tail, "code_fold")


def folding(read: SourceRead) -> Callable[[str, str], CompressResult]:
    """``read`` as a compressor ``(text, query)``, the shape the block policy calls."""

    def compress(_text: str, query: str) -> CompressResult:
        return fold(read, query)

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
    """The rows to show: kept rows as they were, and one marker per folded run."""
    folded: dict[int, Fold] = {}
    for span in found.folds:
        for row in range(span.first, span.last + 1):
            if row not in found.kept:
                folded.setdefault(row, span)
    row = 0
    while row < len(read.rows):
        fold = folded.get(row)
        end = row
        while fold is not None and folded.get(end + 1) is fold:
            end += 1
        if fold is None or end - row + 1 < MIN_FOLD_ROWS:
            yield from read.rows[row : end + 1]
        else:
            first, last = read.first_line + row, read.first_line + end
            yield f"[... lines {first}-{last} folded ({fold.what}); to see them: {read.unfold(first, last)} ...]"
        row = end + 1
