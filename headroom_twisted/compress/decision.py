"""What happened to one request body: the record the log, the metrics and `/stats` all read.

A block's story runs `CompressResult` (a compressor) -> `BlockResult` (the
block policy, on the decoded text) -> `Rewrite` (a worker, on the JSON
literal; what the memo keeps) -> `BlockDecision` (this request: where the
block is and whether its rewrite was remembered). A request's is one
`CompressionDecision`. Sizes say what they count: ``text_bytes_*`` the
decoded text, ``literal_bytes_*`` the string literal in the body,
``body_bytes_*`` the whole body; the log keeps its shorter field names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from headroom_twisted.compress.rewrite import Rewrite
from headroom_twisted.compress.spans import JsonPath
from headroom_twisted.compress.version import COMPRESSOR_VERSION
from headroom_twisted.config import CompressingMode

Decision = Literal["compressed", "no_change", "passthrough"]
"""``compressed``: some block rewritten; ``no_change``: blocks were examined and
none was worth rewriting; ``passthrough``: the body could not or must not be
compressed at all."""

BlockSource = Literal["compressed", "memo"]
"""``compressed``: a worker computed the rewrite for this request; ``memo``: it
repeats an earlier request's."""


@dataclass(frozen=True, slots=True)
class BlockDecision:
    """One selected block of a request: where it is, where its rewrite came from, what it became."""

    path: JsonPath
    kind: str
    source: BlockSource
    rewrite: Rewrite
    literal_bytes_before: int

    @property
    def rewritten(self) -> bool:
        return self.rewrite.literal is not None

    @property
    def literal_bytes_after(self) -> int:
        literal = self.rewrite.literal
        return self.literal_bytes_before if literal is None else len(literal)

    @property
    def tokens_saved(self) -> int:
        """Tokens this block's rewrite saves; 0 when kept or not counted."""
        before, after = self.rewrite.tokens_before, self.rewrite.tokens_after
        return before - after if self.rewritten and before is not None and after is not None else 0

    def log_fields(self) -> dict[str, object]:
        """One entry of `compression_decision.blocks`."""
        rewrite = self.rewrite
        return {
            "path": _dotted(self.path),
            "kind": self.kind,
            "content_type": rewrite.content_type,
            "strategy": rewrite.strategy,
            "reason": rewrite.reason,
            "rewritten": self.rewritten,
            "bytes_before": self.literal_bytes_before,
            "bytes_after": self.literal_bytes_after,
            "tokens_before": rewrite.tokens_before,
            "tokens_after": rewrite.tokens_after,
            "ms": round(rewrite.ms, 3),
        }


@dataclass(frozen=True)
class CompressionDecision:
    """The body to forward and why it is what it is; logged once as `compression_decision`.

    ``body`` is the very object that came in unless a block was rewritten, so
    the caller can tell "unchanged" by identity. The pipeline fills every
    field; the compression stage also decides some requests without it (the
    gate's refusals, bodies too small for any block, a job that failed): those
    have no ``mode`` and no ``duration_ms``, and a failed job's sizes are not
    reported, only its ``error``.
    """

    body: bytes
    decision: Decision
    reason: str
    body_bytes_before: int | None
    body_bytes_after: int | None
    mode: CompressingMode | None = None
    model: str | None = None
    blocks: tuple[BlockDecision, ...] = ()
    frozen_message_count: int | None = None
    duration_ms: float | None = None
    error: str | None = None

    @classmethod
    def without_pipeline(cls, body: bytes, decision: Decision, reason: str) -> CompressionDecision:
        """A body the stage forwards as it is without running the pipeline."""
        return cls(body, decision, reason, len(body), len(body))

    @classmethod
    def failed_open(cls, body: bytes, error: str) -> CompressionDecision:
        """A body forwarded as it is because its job failed (``error`` names the exception)."""
        return cls(body, "passthrough", "internal_error", None, None, error=error)

    @property
    def blocks_considered(self) -> int:
        return len(self.blocks)

    @property
    def blocks_rewritten(self) -> int:
        return sum(block.rewritten for block in self.blocks)

    @property
    def blocks_from_memo(self) -> int:
        return sum(block.source == "memo" for block in self.blocks)

    @property
    def fresh_blocks(self) -> tuple[BlockDecision, ...]:
        """The blocks compressed for this request (not remembered): the ones logged one by one."""
        return tuple(block for block in self.blocks if block.source == "compressed")

    @property
    def tokens_before(self) -> int | None:
        """Tokens of every block as the client sent them; None when no block was counted."""
        return _total(block.rewrite.tokens_before for block in self.blocks)

    @property
    def tokens_after(self) -> int | None:
        return _total(block.rewrite.tokens_after for block in self.blocks)

    @property
    def tokens_saved_memo(self) -> int:
        """The part of the saving that repeats an earlier request's rewrite (most likely a cache read)."""
        return sum(block.tokens_saved for block in self.blocks if block.source == "memo")

    def log_fields(self) -> dict[str, object]:
        """Fields of the `compression_decision` event; the caller adds request_id and path.

        Totals cover every block of the request; the per-block list holds only
        the fresh blocks, so a long conversation does not log its whole
        history again on every turn.
        """
        if self.duration_ms is None:
            return self._stage_fields()
        fresh = self.fresh_blocks
        return {
            "mode": self.mode,
            "decision": self.decision,
            "reason": self.reason,
            "model": self.model,
            "compressor_version": COMPRESSOR_VERSION,
            "blocks_considered": self.blocks_considered,
            "blocks_rewritten": self.blocks_rewritten,
            "blocks_from_memo": self.blocks_from_memo,
            "blocks_compressed": len(fresh),
            "frozen_message_count": self.frozen_message_count,
            "bytes_before": self.body_bytes_before,
            "bytes_after": self.body_bytes_after,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "tokens_saved_memo": self.tokens_saved_memo,
            "duration_ms": round(self.duration_ms, 3),
            "blocks": [block.log_fields() for block in fresh],
        }

    def _stage_fields(self) -> dict[str, object]:
        """The shorter event of a decision made without the pipeline.

        A ``no_change`` says how many blocks it considered (none); a failed
        job says what failed instead of the sizes.
        """
        fields: dict[str, object] = {"decision": self.decision, "reason": self.reason}
        if self.decision == "no_change":
            fields["blocks_considered"] = self.blocks_considered
            fields["blocks_rewritten"] = self.blocks_rewritten
        if self.error is not None:
            fields["error"] = self.error
        else:
            fields["bytes_before"] = self.body_bytes_before
            fields["bytes_after"] = self.body_bytes_after
        return fields


def _total(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _dotted(path: JsonPath) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
