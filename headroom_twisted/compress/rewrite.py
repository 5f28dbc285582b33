"""Second half of compressing a request: compress the blocks the memo does not know.

Runs in a compression worker, on the literals of the blocks that are new to
the proxy. Each block is compressed on its own: a compressor that raises or
returns something unusable leaves only its own block unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from headroom_twisted.compress.blocks.result import BlockReason, BlockResult
from headroom_twisted.compress.plan import SURROGATE
from headroom_twisted.compress.spans import decode_literal
from headroom_twisted.compress.surgery import UnencodableText, encode_json_string
from headroom_twisted.compress.tool_call import ToolCall


class BlockCompressor(Protocol):
    """``compress_block(text, query, encoding, call)``: detection, threshold, token gate."""

    def __call__(self, text: str, query: str, encoding: str, call: ToolCall | None, /) -> BlockResult: ...


@dataclass(frozen=True, slots=True)
class BlockJob:
    """One block to compress: its original literal (quotes included), its query and the call that made it."""

    literal: bytes
    query: str
    call: ToolCall | None = None


RewriteReason = BlockReason | Literal["unencodable_text", "unencodable_replacement"]
"""The policy's reasons, and the two for text that cannot be written back as UTF-8."""


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What one block becomes: a new literal, or ``None`` to keep the original.

    This is what the memo keeps and what crosses back from a worker process.
    """

    literal: bytes | None
    content_type: str
    strategy: str
    reason: RewriteReason
    tokens_before: int | None
    tokens_after: int | None
    ms: float


def rewrite_blocks(jobs: Sequence[BlockJob], encoding: str, compressor: BlockCompressor) -> list[Rewrite]:
    """Compress each job's text; one `Rewrite` per job, in order; never raises for a block."""
    return [_rewrite(job, encoding, compressor) for job in jobs]


def _rewrite(job: BlockJob, encoding: str, compressor: BlockCompressor) -> Rewrite:
    """A block whose text has a lone surrogate never reaches the compressor:
    its output could not be written back as UTF-8."""
    started = time.perf_counter()
    try:
        text = decode_literal(job.literal)
        if SURROGATE.search(text):
            return _kept("unencodable_text", started)
        result = compressor(text, job.query, encoding, job.call)
        literal = encode_json_string(result.text) if result.changed and result.text != text else None
    except UnencodableText:
        return _kept("unencodable_replacement", started)
    except Exception:
        return _kept("compressor_error", started)
    return Rewrite(
        literal,
        result.content_type,
        result.strategy,
        result.reason,
        result.tokens_before,
        result.tokens_after,
        _ms_since(started),
    )


def _kept(reason: RewriteReason, started: float) -> Rewrite:
    return Rewrite(None, "unknown", "none", reason, None, None, _ms_since(started))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
