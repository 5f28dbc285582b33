"""The request pipeline: parse, walk the live zone, compress blocks, splice.

Runs on a compression worker thread with plain bytes in and plain data out.
It fails open at every step: whatever goes wrong, the outcome carries the
original body object and a reason, and nothing is raised to the caller.
The block compressor is passed in, so this module knows nothing about
content types, tokenizers or thresholds.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from headroom_twisted.compress.gate import Endpoint
from headroom_twisted.compress.livezone import anthropic, chat, responses
from headroom_twisted.compress.livezone.model import Block, LiveZone, Refusal
from headroom_twisted.compress.spans import (
    JsonPath,
    ParseFailure,
    Span,
    SpanNotFound,
    locate_strings,
    parse_body,
)
from headroom_twisted.compress.surgery import UnencodableText, encode_json_string, splice_strings


class BlockResultLike(Protocol):
    """What the pipeline reads from a block compressor's result."""

    @property
    def text(self) -> str: ...
    @property
    def changed(self) -> bool: ...
    @property
    def content_type(self) -> str: ...
    @property
    def strategy(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def tokens_before(self) -> int | None: ...
    @property
    def tokens_after(self) -> int | None: ...


class BlockCompressor(Protocol):
    """``compress_block(text, query, model)``: detection, threshold, token gate."""

    def __call__(self, text: str, query: str, model: str | None, /) -> BlockResultLike: ...


@dataclass(frozen=True)
class BlockReport:
    """What happened to one live-zone block, for the decision log."""

    path: JsonPath
    kind: str
    content_type: str
    strategy: str
    reason: str
    rewritten: bool
    bytes_before: int
    bytes_after: int
    tokens_before: int | None
    tokens_after: int | None
    ms: float

    def log_fields(self) -> dict[str, Any]:
        return {
            "path": _dotted(self.path),
            "kind": self.kind,
            "content_type": self.content_type,
            "strategy": self.strategy,
            "reason": self.reason,
            "rewritten": self.rewritten,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "ms": round(self.ms, 3),
        }


@dataclass(frozen=True)
class CompressionOutcome:
    """The body to forward and why it is what it is.

    ``body`` is the very object passed in unless a block was rewritten, so
    the caller can tell "unchanged" by identity. ``decision`` is
    ``compressed`` (some block rewritten), ``no_change`` (the live zone was
    examined and nothing was worth rewriting) or ``passthrough`` (the body
    could not or must not be compressed at all).
    """

    body: bytes
    decision: str
    reason: str
    model: str | None
    blocks_considered: int
    blocks_rewritten: int
    blocks: tuple[BlockReport, ...]
    frozen_message_count: int | None
    bytes_before: int
    bytes_after: int
    duration_ms: float

    def log_fields(self) -> dict[str, Any]:
        """Fields of the ``compression_decision`` event; the caller adds request_id and path."""
        return {
            "decision": self.decision,
            "reason": self.reason,
            "model": self.model,
            "blocks_considered": self.blocks_considered,
            "blocks_rewritten": self.blocks_rewritten,
            "frozen_message_count": self.frozen_message_count,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "tokens_before": _total(report.tokens_before for report in self.blocks),
            "tokens_after": _total(report.tokens_after for report in self.blocks),
            "duration_ms": round(self.duration_ms, 3),
            "blocks": [report.log_fields() for report in self.blocks],
        }


_WALKERS: dict[Endpoint, Callable[[Any], LiveZone | Refusal]] = {
    Endpoint.CHAT: chat.find_live_zone,
    Endpoint.ANTHROPIC: anthropic.find_live_zone,
    Endpoint.RESPONSES: responses.find_live_zone,
}

# When no block was rewritten, the request's reason is the most telling of
# its blocks' reasons, in this order; reasons not listed here come last.
_NO_CHANGE_PRECEDENCE = (
    "compressor_error",
    "rejected_not_smaller",
    "unsupported_type",
    "unencodable_replacement",
    "unencodable_text",
    "below_threshold",
)

# A Python str has no UTF-8 spelling exactly when it holds a surrogate code
# point; JSON decoding joins valid escaped pairs, so any left here is lone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def compress_request(body: bytes, endpoint: Endpoint, compressor: BlockCompressor) -> CompressionOutcome:
    """Compress the live zone of one request body; never raises.

    Any unexpected exception yields the original body with reason
    ``internal_error``: compression fails open, never closed.
    """
    started = time.perf_counter()
    try:
        return _compress(body, endpoint, compressor, started)
    except Exception:
        return _unchanged(body, "passthrough", "internal_error", None, started)


def _compress(body: bytes, endpoint: Endpoint, compressor: BlockCompressor, started: float) -> CompressionOutcome:
    parsed = parse_body(body)
    if isinstance(parsed, ParseFailure):
        return _unchanged(body, "passthrough", parsed.reason, None, started)
    zone = _WALKERS[endpoint](parsed.document)
    if isinstance(zone, Refusal):
        return _unchanged(body, "passthrough", zone.reason, zone.model, started)
    if not zone.blocks:
        return _unchanged(body, "no_change", "no_live_zone", zone.model, started, zone.frozen_message_count)
    try:
        spans = locate_strings(body, parsed.offset, {block.path: block.text for block in zone.blocks})
    except SpanNotFound:
        return _unchanged(body, "passthrough", "spans_not_found", zone.model, started, zone.frozen_message_count)
    query = _without_lone_surrogates(zone.query)
    rewrites: list[tuple[Span, bytes]] = []
    reports: list[BlockReport] = []
    for block in zone.blocks:
        span = spans[block.path]
        report, literal = _compress_block(block, span, query, zone.model, compressor)
        reports.append(report)
        if literal is not None:
            rewrites.append((span, literal))
    new_body = splice_strings(body, sorted(rewrites, key=lambda rewrite: rewrite[0].start)) if rewrites else body
    return CompressionOutcome(
        body=new_body,
        decision="compressed" if rewrites else "no_change",
        reason="blocks_rewritten" if rewrites else _no_change_reason(reports),
        model=zone.model,
        blocks_considered=len(reports),
        blocks_rewritten=len(rewrites),
        blocks=tuple(reports),
        frozen_message_count=zone.frozen_message_count,
        bytes_before=len(body),
        bytes_after=len(new_body),
        duration_ms=_ms_since(started),
    )


def _compress_block(
    block: Block, span: Span, query: str, model: str | None, compressor: BlockCompressor
) -> tuple[BlockReport, bytes | None]:
    """Compress one block; return its report and the new literal, if any.

    A block whose text has a lone surrogate never reaches the compressor:
    its output could not be written back as UTF-8. A compressor that raises
    or returns something unusable leaves only its own block unchanged.
    """
    size = span.end - span.start
    if _SURROGATE.search(block.text):
        return _skipped(block, size, "unencodable_text", 0.0), None
    started = time.perf_counter()
    try:
        result = compressor(block.text, query, model)
        report = BlockReport(
            path=block.path,
            kind=block.kind,
            content_type=str(result.content_type),
            strategy=str(result.strategy),
            reason=str(result.reason),
            rewritten=False,
            bytes_before=size,
            bytes_after=size,
            tokens_before=result.tokens_before,
            tokens_after=result.tokens_after,
            ms=_ms_since(started),
        )
        if not result.changed or result.text == block.text:
            return report, None
        literal = encode_json_string(result.text)
    except UnencodableText:
        return _skipped(block, size, "unencodable_replacement", _ms_since(started)), None
    except Exception:
        return _skipped(block, size, "compressor_error", _ms_since(started)), None
    return replace(report, rewritten=True, bytes_after=len(literal)), literal


def _skipped(block: Block, size: int, reason: str, ms: float) -> BlockReport:
    return BlockReport(block.path, block.kind, "unknown", "none", reason, False, size, size, None, None, ms)


def _without_lone_surrogates(text: str) -> str:
    """The query only steers relevance; a lone surrogate in it must not break the compressor."""
    return _SURROGATE.sub("\ufffd", text)


def _no_change_reason(reports: list[BlockReport]) -> str:
    def rank(reason: str) -> int:
        known = reason in _NO_CHANGE_PRECEDENCE
        return _NO_CHANGE_PRECEDENCE.index(reason) if known else len(_NO_CHANGE_PRECEDENCE)

    return min((report.reason for report in reports), key=rank)


def _unchanged(
    body: bytes,
    decision: str,
    reason: str,
    model: str | None,
    started: float,
    frozen_message_count: int | None = None,
) -> CompressionOutcome:
    return CompressionOutcome(
        body=body,
        decision=decision,
        reason=reason,
        model=model,
        blocks_considered=0,
        blocks_rewritten=0,
        blocks=(),
        frozen_message_count=frozen_message_count,
        bytes_before=len(body),
        bytes_after=len(body),
        duration_ms=_ms_since(started),
    )


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _total(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _dotted(path: JsonPath) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
