"""Byte-range surgery: replace string literals, leave every other byte alone.

Re-serialising a parsed request would normalise key order, whitespace,
escapes and number spellings (``1e400``, ``1.0``, ``-0``), which changes
what the provider sees and breaks prompt-cache prefixes. Splicing new
literals into the original bytes changes only what was compressed.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from headroom_twisted.compress.spans import Span


class UnencodableText(ValueError):
    """The text holds a lone surrogate and has no UTF-8 JSON spelling."""


def encode_json_string(text: str) -> bytes:
    """Spell ``text`` as a UTF-8 JSON string literal.

    Escapes exactly as ``json.dumps(text, ensure_ascii=False)`` does (quote,
    backslash and control characters; everything else raw), so the result is
    always valid JSON and valid UTF-8. A lone surrogate cannot be written as
    UTF-8, and writing it as ``\\udXXX`` would hand the provider a string it
    may refuse, so it is an error instead.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError as error:
        raise UnencodableText(str(error)) from error


def splice_strings(body: bytes, replacements: Sequence[tuple[Span, bytes]]) -> bytes:
    """Return ``body`` with each span replaced by its encoded literal.

    Spans must be sorted and must not overlap; that holds for distinct
    string literals of one document, and anything else is a caller bug.
    """
    pieces: list[bytes] = []
    cursor = 0
    for span, literal in replacements:
        if span.start < cursor or span.end > len(body) or span.end < span.start:
            raise ValueError(f"span {span!r} is out of order or out of range")
        pieces.append(body[cursor : span.start])
        pieces.append(literal)
        cursor = span.end
    pieces.append(body[cursor:])
    return b"".join(pieces)
