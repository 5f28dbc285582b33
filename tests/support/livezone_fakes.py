"""Fake block compressors and byte-identity helpers for the live-zone tests.

The real compressor is injected into the pipeline, so these fakes stand in
for it with behaviour that is easy to predict from the input text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from headroom_twisted.compress.blocks.result import BlockResult
from headroom_twisted.compress.tool_call import ToolCall

THRESHOLD = 64
MARK = "[...truncated]"


def _result(before: str, after: str, reason: str, strategy: str = "truncate") -> BlockResult:
    return BlockResult(
        text=after,
        changed=after != before,
        content_type="text",
        strategy=strategy,
        reason=reason,
        text_bytes_before=len(before.encode("utf-8", "surrogatepass")),
        text_bytes_after=len(after.encode("utf-8", "surrogatepass")),
        tokens_before=len(before) // 4,
        tokens_after=len(after) // 4,
        ms=0.01,
    )


def truncate(text: str, query: str, model: str | None, call: ToolCall | None = None) -> BlockResult:
    """Keeps the first 16 characters of texts at or over the threshold."""
    if len(text) < THRESHOLD:
        return _result(text, text, "below_threshold", "none")
    return _result(text, text[:16] + MARK, "compressed")


def identity(text: str, query: str, model: str | None, call: ToolCall | None = None) -> BlockResult:
    return _result(text, text, "rejected_not_smaller", "none")


def explode(text: str, query: str, model: str | None, call: ToolCall | None = None) -> BlockResult:
    raise RuntimeError("compressor bug")


def reject_when(word: str):
    """Truncates like :func:`truncate`, but rejects texts that contain ``word``."""

    def compressor(text: str, query: str, model: str | None, call: ToolCall | None = None) -> BlockResult:
        if word in text:
            return _result(text, text, "rejected_not_smaller", "none")
        return truncate(text, query, model, call)

    return compressor


class Recorder:
    """Truncates, and remembers every (text, query, model) it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def __call__(self, text: str, query: str, model: str | None, call: ToolCall | None = None) -> BlockResult:
        self.calls.append((text, query, model))
        return truncate(text, query, model, call)


def big(label: str) -> str:
    """A text over the threshold, with characters that need escaping."""
    return f'{label}: "quoted" \\ tab\t newline\n é 😀 ' + "x" * THRESHOLD


def dumps(document: Any, **kwargs: Any) -> bytes:
    return json.dumps(document, **kwargs).encode("utf-8")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assert_only_literals_changed(
    original: bytes, rewritten: bytes, spans: list[tuple[int, int]], new_texts: list[str]
) -> None:
    """Every byte outside ``spans`` is identical, and each span now holds its new literal.

    Prefix and suffix are compared by SHA-256, as the issue asks, and the
    stretches between spans byte for byte.
    """
    spans = sorted(spans)
    assert sha(rewritten[: spans[0][0]]) == sha(original[: spans[0][0]])
    cursor_old = cursor_new = 0
    for (start, end), text in zip(spans, new_texts, strict=True):
        gap = start - cursor_old
        assert rewritten[cursor_new : cursor_new + gap] == original[cursor_old:start]
        literal = orjson.dumps(text)
        assert rewritten[cursor_new + gap : cursor_new + gap + len(literal)] == literal
        cursor_new += gap + len(literal)
        cursor_old = end
    assert sha(rewritten[cursor_new:]) == sha(original[cursor_old:])
    assert len(rewritten) - cursor_new == len(original) - cursor_old
