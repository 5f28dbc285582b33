"""The request pipeline: plan in a worker, memo lookups, compress what is new, splice.

`CompressionRunner.compress` runs on a compression pool thread with plain
bytes in and plain data out. It fails open at every step: whatever goes
wrong, the outcome carries the original body object and a reason, and
nothing is raised to the caller. The workers are passed in (processes in
production, `InlineWorkers` in tests and tools), so this module knows
nothing about content types, tokenizers or thresholds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.plan import Candidate, NothingToDo, Plan, plan_request
from headroom_twisted.compress.rewrite import BlockCompressor, BlockJob, Rewrite, rewrite_blocks
from headroom_twisted.compress.spans import JsonPath, Span
from headroom_twisted.compress.surgery import splice_strings
from headroom_twisted.compress.version import COMPRESSOR_VERSION
from headroom_twisted.endpoints import Endpoint

DEFAULT_MEMO_BYTES = 64 * 1024 * 1024


DEFAULT_TIMEOUT_SECONDS = 5.0


class BlockWorkers(Protocol):
    """Where the two CPU-bound halves run (worker processes, or this thread).

    ``deadline`` is a `time.monotonic()` instant; workers that can stop a job
    raise past it, and the runner forwards the original bytes.
    """

    def plan(self, body: bytes, endpoint: Endpoint, mode: str, deadline: float) -> Plan | NothingToDo: ...

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str, deadline: float) -> list[Rewrite]: ...


class InlineWorkers:
    """Both halves on the calling thread, with the given block compressor (no deadline)."""

    def __init__(self, compressor: BlockCompressor) -> None:
        self._compressor = compressor

    def plan(self, body: bytes, endpoint: Endpoint, mode: str, deadline: float) -> Plan | NothingToDo:
        return plan_request(body, endpoint, mode)

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str, deadline: float) -> list[Rewrite]:
        return rewrite_blocks(jobs, encoding, self._compressor)


class JobTimedOut(Exception):
    """Raised by workers when a job's deadline passes before its result is back."""


class Cancelled(Exception):
    """The client left before its body was compressed: the job is dropped."""


@dataclass(frozen=True)
class BlockReport:
    """What happened to one block, for the decision log.

    ``source`` is ``memo`` when the rewrite was remembered from an earlier
    request and ``compressed`` when a worker computed it for this one.
    """

    path: JsonPath
    kind: str
    source: str
    content_type: str
    strategy: str
    reason: str
    rewritten: bool
    bytes_before: int
    bytes_after: int
    tokens_before: int | None
    tokens_after: int | None
    ms: float

    @classmethod
    def of(cls, candidate: Candidate, source: str, rewrite: Rewrite) -> BlockReport:
        size = candidate.span.end - candidate.span.start
        return cls(
            path=candidate.path,
            kind=candidate.kind,
            source=source,
            content_type=rewrite.content_type,
            strategy=rewrite.strategy,
            reason=rewrite.reason,
            rewritten=rewrite.literal is not None,
            bytes_before=size,
            bytes_after=size if rewrite.literal is None else len(rewrite.literal),
            tokens_before=rewrite.tokens_before,
            tokens_after=rewrite.tokens_after,
            ms=rewrite.ms,
        )

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
    ``compressed`` (some block rewritten), ``no_change`` (blocks were
    examined and nothing was worth rewriting) or ``passthrough`` (the body
    could not or must not be compressed at all).
    """

    body: bytes
    mode: str
    decision: str
    reason: str
    model: str | None
    blocks: tuple[BlockReport, ...]
    frozen_message_count: int | None
    bytes_before: int
    bytes_after: int
    duration_ms: float

    @property
    def blocks_considered(self) -> int:
        return len(self.blocks)

    @property
    def blocks_rewritten(self) -> int:
        return sum(report.rewritten for report in self.blocks)

    @property
    def blocks_from_memo(self) -> int:
        return sum(report.source == "memo" for report in self.blocks)

    def log_fields(self) -> dict[str, Any]:
        """Fields of the ``compression_decision`` event; the caller adds request_id and path.

        Totals cover every block of the request; the per-block list holds only
        the blocks compressed for this request, so a long conversation does
        not log its whole history again on every turn. ``tokens_saved_memo``
        is the part of the saving that repeats an earlier request's rewrite,
        which the provider most likely bills as a cache read.
        """
        fresh = [report for report in self.blocks if report.source == "compressed"]
        remembered = [report for report in self.blocks if report.source == "memo"]
        return {
            "mode": self.mode,
            "decision": self.decision,
            "reason": self.reason,
            "model": self.model,
            "compressor_version": COMPRESSOR_VERSION,
            "blocks_considered": self.blocks_considered,
            "blocks_rewritten": self.blocks_rewritten,
            "blocks_from_memo": len(remembered),
            "blocks_compressed": len(fresh),
            "frozen_message_count": self.frozen_message_count,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "tokens_before": _total(report.tokens_before for report in self.blocks),
            "tokens_after": _total(report.tokens_after for report in self.blocks),
            "tokens_saved_memo": _saved(remembered),
            "duration_ms": round(self.duration_ms, 3),
            "blocks": [report.log_fields() for report in fresh],
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


class CompressionRunner:
    """Compresses request bodies in one mode, remembering rewrites across requests (thread-safe)."""

    def __init__(
        self,
        workers: BlockWorkers,
        mode: str,
        memo: RewriteMemo | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._workers = workers
        self.mode = mode
        self._memo = memo if memo is not None else RewriteMemo(DEFAULT_MEMO_BYTES)
        self._timeout = timeout

    def compress(self, body: bytes, endpoint: Endpoint, cancelled: threading.Event | None = None) -> CompressionOutcome:
        """Compress one request body within the timeout; never raises.

        A job past its deadline yields the original body with reason
        ``deadline_exceeded``, one whose client left (``cancelled`` set)
        reason ``client_gone``, and any unexpected exception reason
        ``internal_error``: compression fails open, never closed.
        """
        started = time.perf_counter()
        deadline = time.monotonic() + self._timeout
        try:
            return self._compress(body, endpoint, started, deadline, cancelled or threading.Event())
        except Cancelled:
            return self._unchanged(body, NothingToDo("passthrough", "client_gone", None), started)
        except JobTimedOut:
            return self._unchanged(body, NothingToDo("passthrough", "deadline_exceeded", None), started)
        except Exception:
            return self._unchanged(body, NothingToDo("passthrough", "internal_error", None), started)

    def _compress(
        self, body: bytes, endpoint: Endpoint, started: float, deadline: float, cancelled: threading.Event
    ) -> CompressionOutcome:
        if cancelled.is_set():
            raise Cancelled()
        plan = self._workers.plan(body, endpoint, self.mode, deadline)
        if isinstance(plan, NothingToDo):
            return self._unchanged(body, plan, started)
        if cancelled.is_set():
            raise Cancelled()
        blocks, rewrites = self._rewrite(body, plan, deadline)
        new_body = splice_strings(body, sorted(rewrites, key=lambda rewrite: rewrite[0].start)) if rewrites else body
        return CompressionOutcome(
            body=new_body,
            mode=self.mode,
            decision="compressed" if rewrites else "no_change",
            reason="blocks_rewritten" if rewrites else _no_change_reason(blocks),
            model=plan.model,
            blocks=blocks,
            frozen_message_count=plan.frozen_message_count,
            bytes_before=len(body),
            bytes_after=len(new_body),
            duration_ms=_ms_since(started),
        )

    def _rewrite(
        self, body: bytes, plan: Plan, deadline: float
    ) -> tuple[tuple[BlockReport, ...], list[tuple[Span, bytes]]]:
        """A report per candidate and the new literals: from the memo where known, else compressed now."""
        known = {candidate.key: self._memo.get(candidate.key) for candidate in plan.candidates}
        missing: dict[bytes, Candidate] = {}
        for candidate in plan.candidates:
            if known[candidate.key] is None:
                missing.setdefault(candidate.key, candidate)
        jobs = [BlockJob(body[c.span.start : c.span.end], plan.queries[c.query]) for c in missing.values()]
        rewrites = self._workers.rewrite(jobs, plan.encoding, deadline) if jobs else []
        computed = dict(zip(missing, rewrites, strict=True))
        for key, rewrite in computed.items():
            self._memo.put(key, rewrite)
        reports: list[BlockReport] = []
        literals: list[tuple[Span, bytes]] = []
        for candidate in plan.candidates:
            remembered = known[candidate.key]
            source, rewrite = (
                ("memo", remembered) if remembered is not None else ("compressed", computed[candidate.key])
            )
            reports.append(BlockReport.of(candidate, source, rewrite))
            if rewrite.literal is not None:
                literals.append((candidate.span, rewrite.literal))
        return tuple(reports), literals

    def _unchanged(self, body: bytes, nothing: NothingToDo, started: float) -> CompressionOutcome:
        return CompressionOutcome(
            body=body,
            mode=self.mode,
            decision=nothing.decision,
            reason=nothing.reason,
            model=nothing.model,
            blocks=(),
            frozen_message_count=nothing.frozen_message_count,
            bytes_before=len(body),
            bytes_after=len(body),
            duration_ms=_ms_since(started),
        )


def compress_request(body: bytes, endpoint: Endpoint, compressor: BlockCompressor, *, mode: str) -> CompressionOutcome:
    """Compress one body on this thread with ``compressor`` and no memo to share (tests and tools)."""
    return CompressionRunner(InlineWorkers(compressor), mode).compress(body, endpoint)


def _no_change_reason(blocks: Sequence[BlockReport]) -> str:
    def rank(reason: str) -> int:
        known = reason in _NO_CHANGE_PRECEDENCE
        return _NO_CHANGE_PRECEDENCE.index(reason) if known else len(_NO_CHANGE_PRECEDENCE)

    return min((report.reason for report in blocks), key=rank)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _total(values: Iterable[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _saved(reports: Sequence[BlockReport]) -> int:
    return sum(
        report.tokens_before - report.tokens_after
        for report in reports
        if report.rewritten and report.tokens_before is not None and report.tokens_after is not None
    )


def _dotted(path: JsonPath) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path).lstrip(".")
