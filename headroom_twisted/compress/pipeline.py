"""The request pipeline: plan in a worker, memo lookups, compress what is new, splice.

`CompressionRunner.compress` runs on a compression pool thread with plain
bytes in and plain data out. It fails open at every step: whatever goes
wrong, the decision carries the original body object and a reason, and
nothing is raised to the caller. The workers are passed in (processes in
production, `InlineWorkers` in tests and tools), so this module knows
nothing about content types, tokenizers or thresholds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from headroom_twisted.compress.decision import BlockDecision, BlockSource, CompressionDecision, Decision
from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.plan import Candidate, NothingToDo, Plan, PlanReason, plan_request
from headroom_twisted.compress.rewrite import BlockCompressor, BlockJob, Rewrite, RewriteReason, rewrite_blocks
from headroom_twisted.compress.spans import Span
from headroom_twisted.compress.surgery import splice_strings
from headroom_twisted.config import CompressingMode
from headroom_twisted.endpoints import Endpoint

DEFAULT_MEMO_BYTES = 64 * 1024 * 1024


DEFAULT_TIMEOUT_SECONDS = 5.0


class BlockWorkers(Protocol):
    """Where the two CPU-bound halves run (worker processes, or this thread).

    ``deadline`` is a `time.monotonic()` instant; workers that can stop a job
    raise past it, and the runner forwards the original bytes.
    """

    def plan(self, body: bytes, endpoint: Endpoint, mode: CompressingMode, deadline: float) -> Plan | NothingToDo: ...

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str, deadline: float) -> list[Rewrite]: ...


class InlineWorkers:
    """Both halves on the calling thread, with the given block compressor (no deadline)."""

    def __init__(self, compressor: BlockCompressor) -> None:
        self._compressor = compressor

    def plan(self, body: bytes, endpoint: Endpoint, mode: CompressingMode, deadline: float) -> Plan | NothingToDo:
        return plan_request(body, endpoint, mode)

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str, deadline: float) -> list[Rewrite]:
        return rewrite_blocks(jobs, encoding, self._compressor)


RunFailure = Literal["client_gone", "deadline_exceeded", "internal_error"]
"""Why a run gave up and forwarded the body as it came: the client left, the
deadline passed, or something unexpected raised."""


REWRITE_BATCH_BYTES = 256 * 1024
"""New blocks go to a worker in batches of about this many literal bytes, each remembered as soon as
it is back: a history too large for one deadline is then compressed over the next turns (each turn
adds to the memo) instead of being retried from zero, at a fraction of a millisecond per batch."""


def _batches(missing: list[tuple[bytes, Candidate]]) -> list[list[tuple[bytes, Candidate]]]:
    """``missing`` in order, cut into runs of about `REWRITE_BATCH_BYTES` literal bytes (at least one block)."""
    batches: list[list[tuple[bytes, Candidate]]] = []
    size = REWRITE_BATCH_BYTES
    for entry in missing:
        span = entry[1].span
        if size >= REWRITE_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += span.end - span.start
    return batches


class JobTimedOut(Exception):
    """Raised by workers when a job's deadline passes before its result is back."""


class Cancelled(Exception):
    """The client left before its body was compressed: the job is dropped."""


# When no block was rewritten, the request's reason is the most telling of
# its blocks' reasons, in this order; reasons not listed here come last.
_NO_CHANGE_PRECEDENCE: tuple[RewriteReason, ...] = (
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
        mode: CompressingMode,
        memo: RewriteMemo | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._workers = workers
        self.mode = mode
        self._memo = memo if memo is not None else RewriteMemo(DEFAULT_MEMO_BYTES)
        self._timeout = timeout

    def compress(
        self,
        body: bytes,
        endpoint: Endpoint,
        cancelled: threading.Event | None = None,
        submitted: float | None = None,
    ) -> CompressionDecision:
        """Compress one request body within the timeout, counted from ``submitted``; never raises.

        ``submitted`` is the `time.monotonic()` instant the job was handed
        to the pool: the timeout bounds what the request waits in all,
        queue included, so a body that waited its whole deadline behind
        heavy ones goes upstream unchanged at once, without reaching a
        worker. A job past its deadline yields the original body with reason
        ``deadline_exceeded``, one whose client left (``cancelled`` set)
        reason ``client_gone``, and any unexpected exception reason
        ``internal_error``: compression fails open, never closed.
        """
        started = time.perf_counter()
        deadline = (time.monotonic() if submitted is None else submitted) + self._timeout
        if time.monotonic() >= deadline:
            return self._unchanged(body, started, "passthrough", "deadline_exceeded")
        try:
            return self._compress(body, endpoint, started, deadline, cancelled or threading.Event())
        except Cancelled:
            return self._unchanged(body, started, "passthrough", "client_gone")
        except JobTimedOut:
            return self._unchanged(body, started, "passthrough", "deadline_exceeded")
        except Exception:
            return self._unchanged(body, started, "passthrough", "internal_error")

    def _compress(
        self, body: bytes, endpoint: Endpoint, started: float, deadline: float, cancelled: threading.Event
    ) -> CompressionDecision:
        if cancelled.is_set():
            raise Cancelled()
        plan = self._workers.plan(body, endpoint, self.mode, deadline)
        if isinstance(plan, NothingToDo):
            return self._unchanged(body, started, plan.decision, plan.reason, plan.model, plan.frozen_message_count)
        if cancelled.is_set():
            raise Cancelled()
        blocks, rewrites = self._rewrite(body, plan, deadline)
        new_body = splice_strings(body, sorted(rewrites, key=lambda rewrite: rewrite[0].start)) if rewrites else body
        return CompressionDecision(
            body=new_body,
            decision="compressed" if rewrites else "no_change",
            reason="blocks_rewritten" if rewrites else _no_change_reason(blocks),
            body_bytes_before=len(body),
            body_bytes_after=len(new_body),
            mode=self.mode,
            model=plan.model,
            blocks=blocks,
            frozen_message_count=plan.frozen_message_count,
            duration_ms=_ms_since(started),
        )

    def _rewrite(
        self, body: bytes, plan: Plan, deadline: float
    ) -> tuple[tuple[BlockDecision, ...], list[tuple[Span, bytes]]]:
        """A decision per candidate and the new literals: from the memo where known, else compressed now."""
        known = {candidate.key: self._memo.get(candidate.key) for candidate in plan.candidates}
        missing: dict[bytes, Candidate] = {}
        for candidate in plan.candidates:
            if known[candidate.key] is None:
                missing.setdefault(candidate.key, candidate)
        computed: dict[bytes, Rewrite] = {}
        for batch in _batches(list(missing.items())):
            if time.monotonic() >= deadline:
                # Out of time between batches: stop here rather than hand a worker a
                # batch it cannot finish (it would be killed and replaced for nothing).
                raise JobTimedOut("the deadline passed between batches")
            jobs = [BlockJob(body[c.span.start : c.span.end], plan.queries[c.query], c.call) for _, c in batch]
            rewrites = self._workers.rewrite(jobs, plan.encoding, deadline)
            for (key, _), rewrite in zip(batch, rewrites, strict=True):
                self._memo.put(key, rewrite)  # kept even if a later batch misses the deadline
                computed[key] = rewrite
        decisions: list[BlockDecision] = []
        literals: list[tuple[Span, bytes]] = []
        for candidate in plan.candidates:
            remembered = known[candidate.key]
            source: BlockSource = "compressed" if remembered is None else "memo"
            rewrite = computed[candidate.key] if remembered is None else remembered
            span = candidate.span
            decisions.append(BlockDecision(candidate.path, candidate.kind, source, rewrite, span.end - span.start))
            if rewrite.literal is not None:
                literals.append((span, rewrite.literal))
        return tuple(decisions), literals

    def _unchanged(
        self,
        body: bytes,
        started: float,
        decision: Decision,
        reason: PlanReason | RunFailure,
        model: str | None = None,
        frozen_message_count: int | None = None,
    ) -> CompressionDecision:
        return CompressionDecision(
            body=body,
            decision=decision,
            reason=reason,
            body_bytes_before=len(body),
            body_bytes_after=len(body),
            mode=self.mode,
            model=model,
            frozen_message_count=frozen_message_count,
            duration_ms=_ms_since(started),
        )


def compress_request(
    body: bytes, endpoint: Endpoint, compressor: BlockCompressor, *, mode: CompressingMode
) -> CompressionDecision:
    """Compress one body on this thread with ``compressor`` and no memo to share (tests and tools)."""
    return CompressionRunner(InlineWorkers(compressor), mode).compress(body, endpoint)


def _no_change_reason(blocks: Sequence[BlockDecision]) -> RewriteReason:
    def rank(reason: RewriteReason) -> int:
        known = reason in _NO_CHANGE_PRECEDENCE
        return _NO_CHANGE_PRECEDENCE.index(reason) if known else len(_NO_CHANGE_PRECEDENCE)

    return min((block.rewrite.reason for block in blocks), key=rank)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
