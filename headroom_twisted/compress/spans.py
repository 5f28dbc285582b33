"""Strict JSON parsing of a request body and exact byte spans of string literals.

Byte-range surgery needs two things from the original bytes: the parsed
document (so walkers can read its shape) and the exact start and end of the
string literals they chose (so only those bytes change). The parser is
orjson for speed, with the standard library as a deliberate fallback for
valid JSON that orjson refuses (numbers such as ``1e400`` that overflow a
double, and lone surrogate escapes such as ``"\\ud800"``). NaN and Infinity
are not JSON and are refused by both.

The span scanner walks only along the wanted paths, skipping every other
value with regular expressions, without recursion into skipped values, and
checks that each span decodes to exactly the string the parser produced. Any
doubt (a duplicate key in an object along a path, a value of the wrong kind,
a decoded span that differs) raises :class:`SpanNotFound` and the caller
forwards the original body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal, NoReturn

import orjson

from headroom_twisted.compress.json_value import JsonValue

JsonPath = tuple[str | int, ...]
"""Keys and array indices from the document root to one value."""

_BOM = b"\xef\xbb\xbf"
_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_SCALAR = re.compile(rb"[^ \t\n\r,\]}]+")
# Inside a skipped container only strings and brackets matter; strings are
# skipped whole so that brackets inside them are never counted.
_CONTAINER_TOKEN = re.compile(rb'["\[\]{}]')
_QUOTE, _BACKSLASH, _BACKSLASH_BYTE = ord('"'), b"\\", ord("\\")
_OPEN_OBJECT, _CLOSE_OBJECT = ord("{"), ord("}")
_OPEN_ARRAY, _CLOSE_ARRAY = ord("["), ord("]")
_COMMA, _COLON = ord(","), ord(":")


@dataclass(frozen=True)
class ParsedBody:
    """A parsed JSON document and where its text starts (after a UTF-8 BOM)."""

    document: JsonValue
    offset: int


@dataclass(frozen=True)
class ParseFailure:
    """Why a body is not strict JSON."""

    reason: Literal["not_json", "too_deep"]


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open byte range ``[start, end)`` of a string literal, quotes included."""

    start: int
    end: int


class SpanNotFound(ValueError):
    """A target literal cannot be located exactly and unambiguously."""


def parse_body(body: bytes) -> ParsedBody | ParseFailure:
    """Parse a UTF-8 JSON body; a leading BOM is tolerated and kept in place."""
    offset = len(_BOM) if body.startswith(_BOM) else 0
    text = memoryview(body)[offset:]
    try:
        return ParsedBody(orjson.loads(text), offset)
    except orjson.JSONDecodeError:
        pass
    try:
        decoded = bytes(text).decode("utf-8")
        return ParsedBody(json.loads(decoded, parse_constant=_refuse_constant), offset)
    except RecursionError:
        return ParseFailure("too_deep")
    except ValueError:
        return ParseFailure("not_json")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def locate_strings(body: bytes, offset: int, targets: Mapping[JsonPath, str]) -> dict[JsonPath, Span]:
    """Find the span of every target string literal, checked against its value.

    ``targets`` maps each path to the string the parser produced there; the
    body must already have parsed successfully from ``offset``.
    """
    trie = _build_trie(targets)
    found = _Found(targets, _expected_literals(targets))
    _visit(body, _skip_ws(body, offset), trie, (), found)
    spans = found.spans
    for path, expected in targets.items():
        if path in found.verified:
            continue
        if not _literal_spells(body[spans[path].start : spans[path].end], expected):
            raise SpanNotFound(f"literal at {path!r} does not decode to the parsed value")
    return spans


@dataclass
class _Found:
    """What the scan found: spans, and which of them matched their expected spelling byte for byte.

    A target's literal is usually spelled exactly as orjson spells its
    decoded value; when the bytes at the target's position start with that
    spelling, that *is* the literal (a JSON string token ends at its first
    unescaped quote), so its end is known without scanning a multi-megabyte
    string for escaped quotes, and it needs no second check.
    """

    targets: Mapping[JsonPath, str]
    expected: Mapping[JsonPath, bytes]
    spans: dict[JsonPath, Span] = field(default_factory=dict)
    verified: set[JsonPath] = field(default_factory=set)


def _expected_end(buf: bytes, pos: int, found: _Found, path: JsonPath) -> int | None:
    """The end of the target literal at ``pos`` if it is spelled as orjson or as ``json.dumps`` spell it.

    Python clients often escape every non-ASCII character (``json.dumps``'s
    default); trying that spelling second keeps their bodies off the slow path.
    """
    literal = found.expected.get(path)
    if literal is None:
        return None
    if not buf.startswith(literal, pos):
        if literal.isascii():
            return None
        literal = json.dumps(found.targets[path]).encode("ascii")
        if not buf.startswith(literal, pos):
            return None
    found.verified.add(path)
    return pos + len(literal)


def _expected_literals(targets: Mapping[JsonPath, str]) -> dict[JsonPath, bytes]:
    literals = {}
    for path, text in targets.items():
        try:
            literals[path] = orjson.dumps(text)
        except orjson.JSONEncodeError:
            continue  # a lone surrogate: found by scanning, checked by decoding
    return literals


def _literal_spells(literal: bytes, expected: str) -> bool:
    """True if the literal decodes to ``expected``.

    Most clients escape exactly as orjson does, so comparing bytes first
    avoids decoding a multi-megabyte literal just to compare it.
    """
    try:
        if orjson.dumps(expected) == literal:
            return True
    except orjson.JSONEncodeError:
        pass
    return decode_literal(literal) == expected


_Trie = dict[str | int, "_Trie"]
"""Nested dict of path steps; an empty dict marks a target literal."""


def _build_trie(paths: Mapping[JsonPath, str]) -> _Trie:
    """The paths as a trie; a path that is empty or leads on to another target is not a leaf string."""
    root: _Trie = {}
    leaves: list[tuple[JsonPath, _Trie]] = []
    for path in paths:
        if not path:
            raise SpanNotFound("the document root is not a leaf string")
        node = root
        for step in path:
            node = node.setdefault(step, {})
        leaves.append((path, node))
    for path, node in leaves:
        if node:
            raise SpanNotFound(f"target {path!r} is not a leaf string")
    return root


def _visit(buf: bytes, pos: int, trie: _Trie, prefix: JsonPath, found: _Found) -> int:
    """Walk the value at ``pos`` along ``trie``; return the position after it."""
    if not trie:
        end = _expected_end(buf, pos, found, prefix)
        if end is None:
            end = _string_end(buf, pos)
        found.spans[prefix] = Span(pos, end)
        return end
    opener = _byte(buf, pos)
    if opener == _OPEN_OBJECT:
        return _visit_object(buf, pos + 1, trie, prefix, found)
    if opener == _OPEN_ARRAY:
        return _visit_array(buf, pos + 1, trie, prefix, found)
    raise SpanNotFound(f"no container at {prefix!r}")


def _visit_object(buf: bytes, pos: int, trie: _Trie, prefix: JsonPath, found: _Found) -> int:
    """Scan every member, so that a duplicate key anywhere in the object is seen.

    Walkers decide on sibling keys (``role``, ``type``) of the objects along
    a path; a parser that keeps the first of two duplicates could read a
    different role than ours, so any duplicate there is ambiguous.
    """
    seen: set[str] = set()
    pos = _skip_ws(buf, pos)
    if _byte(buf, pos) == _CLOSE_OBJECT:
        return _end_container(pos, trie, seen, prefix)
    while True:
        key_end = _string_end(buf, pos)
        key = decode_literal(buf[pos:key_end])
        if key in seen:
            raise SpanNotFound(f"duplicate key {key!r} in object at {prefix!r}")
        seen.add(key)
        pos = _expect(buf, _skip_ws(buf, key_end), _COLON)
        pos = _skip_ws(buf, pos)
        child = trie.get(key)
        if child is None:
            pos = _skip_value(buf, pos)
        else:
            pos = _visit(buf, pos, child, (*prefix, key), found)
        pos = _skip_ws(buf, pos)
        if _byte(buf, pos) == _CLOSE_OBJECT:
            return _end_container(pos, trie, seen, prefix)
        pos = _skip_ws(buf, _expect(buf, pos, _COMMA))


def _visit_array(buf: bytes, pos: int, trie: _Trie, prefix: JsonPath, found: _Found) -> int:
    seen: set[int] = set()
    pos = _skip_ws(buf, pos)
    if _byte(buf, pos) == _CLOSE_ARRAY:
        return _end_container(pos, trie, seen, prefix)
    index = 0
    while True:
        child = trie.get(index)
        if child is None:
            pos = _skip_value(buf, pos)
        else:
            pos = _visit(buf, pos, child, (*prefix, index), found)
            seen.add(index)
        pos = _skip_ws(buf, pos)
        if _byte(buf, pos) == _CLOSE_ARRAY:
            return _end_container(pos, trie, seen, prefix)
        pos = _skip_ws(buf, _expect(buf, pos, _COMMA))
        index += 1


def _end_container(pos: int, trie: _Trie, seen: Collection[str | int], prefix: JsonPath) -> int:
    missing = [step for step in trie if step not in seen]
    if missing:
        raise SpanNotFound(f"{missing!r} not found under {prefix!r}")
    return pos + 1


def _skip_value(buf: bytes, pos: int) -> int:
    """Return the position after the value at ``pos``, iteratively for containers."""
    first = _byte(buf, pos)
    if first == _QUOTE:
        return _string_end(buf, pos)
    if first in (_OPEN_OBJECT, _OPEN_ARRAY):
        return _skip_container(buf, pos)
    match = _SCALAR.match(buf, pos)
    if match is None:
        raise SpanNotFound(f"no value at byte {pos}")
    return match.end()


def _skip_container(buf: bytes, pos: int) -> int:
    depth = 0
    while (token := _CONTAINER_TOKEN.search(buf, pos)) is not None:
        pos = token.end()
        char = buf[token.start()]
        if char == _QUOTE:
            pos = _string_end(buf, token.start())
        elif char in (_OPEN_OBJECT, _OPEN_ARRAY):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos
    raise SpanNotFound(f"unterminated container at byte {pos}")


def _string_end(buf: bytes, pos: int) -> int:
    """Return the position after the string literal that opens at ``pos``.

    The literal ends at the first quote preceded by an even number of
    backslashes. Jumping from quote to quote with a memchr-speed ``find``
    costs one step per quote, where a regular expression would cost one per
    byte: that matters for JSON tool outputs, which are mostly escaped quotes.
    """
    if _byte(buf, pos) != _QUOTE:
        raise SpanNotFound(f"no string literal at byte {pos}")
    close = buf.find(b'"', pos + 1)
    while close != -1:
        backslash = close - 1
        while buf[backslash] == _BACKSLASH_BYTE:
            backslash -= 1
        if (close - 1 - backslash) % 2 == 0:
            return close + 1
        close = buf.find(b'"', close + 1)
    raise SpanNotFound(f"unterminated string at byte {pos}")


def decode_literal(literal: bytes) -> str:
    """Decode one JSON string literal (quotes included); anything else raises SpanNotFound.

    orjson for speed; the standard library for what orjson refuses (lone
    surrogate escapes such as ``"\\ud800"``).
    """
    if _BACKSLASH not in literal:
        return literal[1:-1].decode("utf-8")
    try:
        value = orjson.loads(literal)
    except orjson.JSONDecodeError:
        value = json.loads(literal.decode("utf-8"))
    if not isinstance(value, str):
        raise SpanNotFound("literal is not a string")
    return value


def _skip_ws(buf: bytes, pos: int) -> int:
    return _WHITESPACE.match(buf, pos).end()  # type: ignore[union-attr]  # `*` always matches


def _byte(buf: bytes, pos: int) -> int | None:
    return buf[pos] if pos < len(buf) else None


def _expect(buf: bytes, pos: int, byte: int) -> int:
    if _byte(buf, pos) != byte:
        raise SpanNotFound(f"expected {chr(byte)!r} at byte {pos}")
    return pos + 1
