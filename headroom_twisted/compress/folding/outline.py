"""Which rows of a parsed source file fold, and which stay whatever happens.

The model reads a file to find its way (what is defined where, with which
signature) and to study the few definitions the task is about. So the
outline keeps every import, every definition line (decorators and the whole
signature), every module- and class-level statement, and the full body of
each definition the question names or whose body holds a rare question
word; the other function bodies fold (with their closing brace, the blank
rows after them and the doc comment right above the definition, as a Python
docstring folds with its body), and so do other long docstrings and comment
blocks past their first line with text. Touching folds join into one. Inside
a folded body, nested definition lines and lines whose string literals hold
an error keyword stay.

Rows are 0-based indices into the source lines; a `Fold` covers an
inclusive range. Everything here is a pure function of the tree, the lines
and the question.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tree_sitter import Node

from headroom_twisted.compress.compressors.relevance import (
    LoweredLines,
    discriminative,
    has_error_keyword,
    matches,
    query_terms,
)
from headroom_twisted.compress.folding.languages import GRAMMARS, Grammar, definitions

_IDENTIFIER = re.compile(r"(`?)([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(`|\()?")
"""A name as code spells it, dotted ones whole (``HTTPChannel.lineReceived``), with a backtick or call
parenthesis around it if there is one; see `_identifiers`."""
_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'|`[^`]*`')
_CLOSING = re.compile(r"\s*[})\]][})\];,]*\s*")
_CODE_SPELLING = re.compile(r"_|[a-z][A-Z]|^[A-Z][a-z0-9]*[A-Z]")
_SENTENCE_START = re.compile(r"(?:^|[.?!:;]\s+|\n\s*)$")

RARE_BODY_SHARE = 0.05
"""A question word keeps the bodies it occurs in only if it occurs in at most one body in twenty.

The other compressors' rule (a word in at most a fifth of the lines) is too
lenient for code, where the words people ask with ("request", "data",
"body") are identifiers in many definitions: at a fifth of the bodies, a
long question kept most of a file."""

LONG_TEXT_ROWS = 2
"""A docstring or comment block longer than this folds (but its first line with text)."""


@dataclass(frozen=True, slots=True)
class Fold:
    """Rows ``first..last`` (inclusive) may fold; ``what`` says what they are, for the marker."""

    first: int
    last: int
    what: str


@dataclass(frozen=True)
class _Body:
    """A function body that folds unless the question is about it."""

    first: int
    last: int
    named: bool
    doc: tuple[int, int] | None
    """The rows of the comment right above the definition (Go, Rust, Java, JS doc comments):
    they fold with the body, as a Python docstring (inside the body) does."""


@dataclass(frozen=True)
class Outline:
    """The foldable ranges, in order and disjoint, and the rows inside them that stay anyway."""

    folds: tuple[Fold, ...]
    kept: frozenset[int]


def outline(root: Node, language: str, lines: Sequence[str], query: str, path: str) -> Outline:
    """What may fold in the file at ``path`` whose syntax tree is ``root`` and whose lines are ``lines``.

    Words of the question that are words of the file's path (``twisted``,
    ``http`` for ``twisted/web/http.py``) chose the file, not a definition
    in it, so they select no body. The rest select the bodies they occur in
    when they are rare among the file's bodies: the rarity rule of the other
    compressors, with a definition's body as the unit instead of a line.
    """
    lowered = LoweredLines(lines)
    path_terms = set(query_terms(path))
    terms = tuple(term for term in query_terms(query) if term not in path_terms)
    walker = _Walker(GRAMMARS[language], lines, _identifiers(query))
    walker.level(root.named_children, "", keep_all=False)
    texts = ["\n".join(lowered.lowered[body.first : body.last + 1]) for body in walker.bodies]
    rare = discriminative(terms, texts, max_share=RARE_BODY_SHARE)
    folds = list(walker.folds)
    kept = _error_messages(lowered) | _definition_lines(language, root)
    for body, text in zip(walker.bodies, texts, strict=True):
        if not body.named and not matches(rare, text):
            folds.append(Fold(body.first, body.last, "body"))
            if body.doc is not None:
                folds.append(Fold(*body.doc, "doc"))
    return Outline(_merged(folds), frozenset(kept))


def _merged(folds: list[Fold]) -> tuple[Fold, ...]:
    """Folds in order, touching ones joined: a body, its closing rows and the next definition's doc."""
    out: list[Fold] = []
    for fold in sorted(folds, key=lambda fold: fold.first):
        if out and fold.first <= out[-1].last + 1:
            last = out[-1]
            what = last.what if fold.what in last.what.split(", ") else f"{last.what}, {fold.what}"
            out[-1] = Fold(last.first, max(last.last, fold.last), what)
        else:
            out.append(fold)
    return tuple(out)


class _Walker:
    """One pass over the definitions of a file, collecting folds and rows that must stay."""

    def __init__(self, grammar: Grammar, lines: Sequence[str], identifiers: frozenset[str]) -> None:
        self.grammar = grammar
        self.lines = lines
        self.identifiers = identifiers
        self.bodies: list[_Body] = []
        self.folds: list[Fold] = []

    def level(self, nodes: Sequence[Node], scope: str, keep_all: bool, doc: Sequence[Node] = ()) -> None:
        """Statements of a module, a class body or a passage: definitions are visited, the rest stays.

        ``doc`` is a comment right above the passage this level is inside
        (``export function``): its first definition takes it as its own.
        """
        grammar = self.grammar
        comments: list[Node] = list(doc)
        attached_from: int | None = None  # where attributes between a comment and its definition start
        first_statement = True
        for node in nodes:
            kind = node.type
            if kind in grammar.comments:
                comments.append(node)
                attached_from = None
                continue
            if kind in grammar.attributes and comments:
                attached_from = node.start_point.row if attached_from is None else attached_from
                continue
            loose, attached = self._split_doc(
                comments, node.start_point.row if attached_from is None else attached_from
            )
            self._long_text(loose, "comment")
            comments, attached_from = [], None
            is_first, first_statement = first_statement, False
            if kind in grammar.functions:
                self.function(node, _name(node), scope, keep_all, attached)
                continue
            if kind in grammar.bindings:
                self._bindings(node, scope, keep_all, attached)
                continue
            if kind in grammar.passages:
                self.level(node.named_children, scope, keep_all, attached)
                continue
            self._long_text(attached, "comment")
            if kind in grammar.containers:
                self.container(node, scope, keep_all)
            elif is_first and grammar.docstring_first and _is_string_statement(node):
                self._long_text([node], "docstring")
        self._long_text(comments, "comment")

    def function(self, node: Node, name: str, scope: str, keep_all: bool, doc: Sequence[Node] = ()) -> None:
        """A body that folds unless the question is about this definition (decided in `outline`)."""
        scope = _receiver_type(node) or scope
        qualified = f"{scope}.{name}" if scope and name else name or scope
        body = node.child_by_field_name("body")
        first, last = _interior(node, body) if body is not None else (1, 0)
        if first > last:  # no body to fold (a signature, a one-liner): its doc is any comment
            self._long_text(doc, "comment")
            return
        last = self._absorb_closing(last)
        named = keep_all or self._named(name, qualified)
        self.bodies.append(_Body(first, last, named, (doc[0].start_point.row, _end_row(doc[-1])) if doc else None))

    def _absorb_closing(self, last: int) -> int:
        """Extend a body's fold over its closing-brace row and the blank rows after it.

        They say nothing the marker does not: the fold ends the definition.
        """
        lines = self.lines
        if last + 1 < len(lines) and _CLOSING.fullmatch(lines[last + 1]):
            last += 1
        while last + 1 < len(lines) and not lines[last + 1].strip():
            last += 1
        return last

    def container(self, node: Node, scope: str, keep_all: bool) -> None:
        """A class, impl or trait: its own lines stay, its members are visited.

        A class the question names keeps all its members' bodies, unless the
        question also names one of them: then only those, the narrower ask.
        """
        name = _name(node)
        qualified = f"{scope}.{name}" if scope and name else name or scope
        body = node.child_by_field_name("body")
        if body is None:
            return
        members = [_name(member) for member in body.named_children]
        named = (
            self._named(name, qualified)
            and not any(self._named(m, f"{qualified}.{m}") for m in members if m)
            and not any(identifier.startswith(f"{name}.") for identifier in self.identifiers)
        )
        self.level(body.named_children, qualified, keep_all or named)

    def _bindings(self, node: Node, scope: str, keep_all: bool, doc: Sequence[Node]) -> None:
        """``const f = (a) => {...}`` or ``res.send = function () {...}``: the function takes the bound name."""
        found = False
        for binding in node.named_children:
            value = binding.child_by_field_name("value") or binding.child_by_field_name("right")
            if value is not None and value.type in self.grammar.functions:
                target = binding.child_by_field_name("left")
                name = target.text.decode("utf-8", "replace") if target is not None and target.text else _name(binding)
                self.function(value, name, scope, keep_all, () if found else doc)
                found = True
        if not found:
            self._long_text(list(doc), "comment")

    def _long_text(self, nodes: Sequence[Node], what: str) -> None:
        """A docstring or a run of comment nodes on consecutive rows: fold past its first line with text."""
        for run in _consecutive(nodes):
            first, last = run[0].start_point.row, _end_row(run[-1])
            if last - first + 1 <= LONG_TEXT_ROWS:
                continue
            summary = self._summary_row(run[0])
            if summary < last:
                self.folds.append(Fold(summary + 1, last, what))

    def _split_doc(self, comments: list[Node], definition_row: int) -> tuple[list[Node], list[Node]]:
        """``comments`` split into the loose ones and the run right above ``definition_row``
        (blank lines between them allowed: express writes its JSDoc that way)."""
        runs = _consecutive(comments)
        if runs and all(not line.strip() for line in self.lines[_end_row(runs[-1][-1]) + 1 : definition_row]):
            return [node for run in runs[:-1] for node in run], runs[-1]
        return comments, []

    def _summary_row(self, node: Node) -> int:
        """The first row of ``node`` holding a letter or digit (``/**`` and ``\"\"\"`` alone carry none)."""
        end = _end_row(node)
        for row in range(node.start_point.row, end + 1):
            if any(ch.isalnum() for ch in self.lines[row]):
                return row
        return end

    def _named(self, name: str, qualified: str) -> bool:
        """The question spells the name as the code does (``Request``, not the word "request")."""
        return bool(name) and (name in self.identifiers or qualified in self.identifiers)


def _definition_lines(language: str, root: Node) -> set[int]:
    """The rows of every definition line, nested ones included: decorators and the whole signature."""
    rows: set[int] = set()
    for node in definitions(language, root):
        start = node.parent.start_point.row if node.parent and node.parent.type == "decorated_definition" else None
        body = node.child_by_field_name("body")
        last = _first_interior_row(body) - 1 if body is not None else _end_row(node)
        first = node.start_point.row if start is None else start
        rows.update(range(first, max(first, last) + 1))
    return rows


def _error_messages(lowered: LoweredLines) -> set[int]:
    """Rows whose string literals say something failed: the messages an agent greps for.

    In code the error words are mostly names (Go's ``error`` type, ``except
    Exception``, ``errors.New``); keeping every such row would split almost
    every fold. A message (``raise ValueError("invalid chunk")``) is what
    a log or a traceback quotes back, so that row stays.
    """
    rows = set()
    for row in lowered.with_error_keyword():
        quoted = " ".join(_QUOTED.findall(lowered.lowered[row]))
        if quoted and has_error_keyword(quoted):
            rows.add(row)
    return rows


def _receiver_type(node: Node) -> str:
    """The type a Go method is declared on (``func (r *Route) Match``: ``Route``), else ``""``."""
    receiver = node.child_by_field_name("receiver")
    if receiver is None or receiver.text is None:
        return ""
    names = re.findall(r"[A-Za-z_]\w*", receiver.text.decode("utf-8", "replace"))
    return names[-1] if names else ""


def _identifiers(query: str) -> frozenset[str]:
    """The names the question gives in code's own spelling.

    A plain lower-case word ("request", "start", "data") is how people talk
    and names every other function somewhere, so it names nothing unless it
    is written as code: in backticks, called (``start()``), dotted, or
    spelled as no word is (``_request_body``, ``lineReceived``,
    ``FileBodyProducer``). A dotted name names its tails of two parts or
    more and its first part: ``HTTPClient.request`` names that method and
    the class ``HTTPClient``, not every ``request``.
    """
    found: set[str] = set()
    query = query.replace("::", ".")
    for match in _IDENTIFIER.finditer(query):
        opening, dotted, closing = match.groups()
        parts = dotted.split(".")
        if len(parts) > 1:
            found.update(".".join(parts[i:]) for i in range(len(parts) - 1))
            found.add(parts[0])
        elif (opening and closing == "`") or closing == "(" or _CODE_SPELLING.search(dotted):
            found.add(dotted)
        elif dotted[0].isupper() and not _SENTENCE_START.search(query, 0, match.start()):
            found.add(dotted)  # a capitalised word inside a sentence: a class name (``the Router``)
    return frozenset(found)


def _interior(node: Node, body: Node) -> tuple[int, int]:
    """The rows of a body strictly between its opening and closing lines.

    The definition line (and a ``{`` on a line of its own) stays, and so does
    a closing ``}`` row; a one-line body has no interior.
    """
    first = max(_first_interior_row(body), node.start_point.row + 1)
    last = _end_row(body)
    children = body.children
    if children and children[-1].type == "}":
        last = children[-1].start_point.row - 1
    return first, last


def _first_interior_row(body: Node) -> int:
    children = body.children
    if children and children[0].type == "{":
        return children[0].end_point.row + 1
    return body.start_point.row


def _end_row(node: Node) -> int:
    """The last row ``node`` covers; a node that ends at column 0 ended with the row before."""
    end = node.end_point
    return end.row - 1 if end.column == 0 and end.row > node.start_point.row else end.row


def _name(node: Node) -> str:
    name = node.child_by_field_name("name") or node.child_by_field_name("type")
    if name is None or name.text is None:
        return ""
    return name.text.decode("utf-8", "replace")


def _is_string_statement(node: Node) -> bool:
    children = node.named_children
    return node.type == "expression_statement" and len(children) == 1 and children[0].type == "string"


def _consecutive(nodes: Iterable[Node]) -> list[list[Node]]:
    """Comment nodes grouped into runs whose rows touch."""
    runs: list[list[Node]] = []
    for node in nodes:
        if runs and node.start_point.row <= _end_row(runs[-1][-1]) + 1:
            runs[-1].append(node)
        else:
            runs.append([node])
    return runs
