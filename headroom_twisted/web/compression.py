"""The compression stage: gate on the reactor, pipeline off it, fail open.

The reactor thread only decides (cheaply, from headers and length) whether
a body may be compressed and hands the bytes to the compression service;
parsing, walking, compressing and splicing all happen in the job its pool
threads run (in production, `CompressionRunner.compress`, which hands the
CPU-bound halves on to worker processes). Whatever goes wrong, the original
bytes are forwarded.
"""

from __future__ import annotations

import threading
from typing import Protocol

from structlog.typing import FilteringBoundLogger
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from headroom_twisted.compress.blocks.threshold import MIN_BLOCK_BYTES
from headroom_twisted.compress.decision import CompressionDecision
from headroom_twisted.config import Config
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.routing import Route
from headroom_twisted.web.gate import decide


class Compression(Protocol):
    """Where the stage sends a body to be compressed off the reactor thread (a `CompressionService`)."""

    def compress(self, body: bytes, endpoint: Endpoint, cancelled: threading.Event) -> Deferred[CompressionDecision]:
        """The decision, fired on the reactor thread; setting `cancelled` drops the job if it is still queued."""


def _deliver_unless_cancelled(outcome: bytes | Failure, result: Deferred[bytes]) -> None:
    """Pass the job's outcome on, unless the client left and ``result`` was already cancelled."""
    if result.called:
        return
    if isinstance(outcome, Failure):
        result.errback(outcome)
    else:
        result.callback(outcome)


class CompressionStage:
    """A `BodyStage` that compresses the tool outputs of the three LLM endpoints."""

    def __init__(self, compression: Compression, config: Config, metrics: ProxyMetrics | None = None) -> None:
        self._compression = compression
        self._config = config
        self._metrics = metrics

    def __call__(
        self, method: bytes, route: Route, headers: Headers, body: bytes, log: FilteringBoundLogger
    ) -> Deferred[bytes]:
        decision = decide(
            method,
            route.endpoint,
            headers,
            len(body),
            self._config.compression,
            self._config.compression_max_body_bytes,
        )
        if decision.endpoint is None:
            return succeed(body)
        if decision.passthrough_reason is not None:
            self._record(
                log, route, CompressionDecision.without_pipeline(body, "passthrough", decision.passthrough_reason)
            )
            return succeed(body)
        if len(body) < MIN_BLOCK_BYTES:
            # No string in it can reach the block threshold (a JSON literal never
            # decodes to more UTF-8 bytes than it spans), so skip the round trip.
            self._record(log, route, CompressionDecision.without_pipeline(body, "no_change", "below_threshold"))
            return succeed(body)
        cancelled = threading.Event()
        working = self._compression.compress(body, decision.endpoint, cancelled)
        forwarded = working.addCallback(self._decided, route, log).addErrback(self._failed_open, body, route, log)
        # Cancelling (the client left) flags the job: dropped if still queued, logged as client_gone.
        result: Deferred[bytes] = Deferred(lambda _: cancelled.set())
        forwarded.addBoth(_deliver_unless_cancelled, result)
        return result

    def _decided(self, decision: CompressionDecision, route: Route, log: FilteringBoundLogger) -> bytes:
        self._record(log, route, decision)
        return decision.body

    def _failed_open(self, failure: Failure, body: bytes, route: Route, log: FilteringBoundLogger) -> bytes:
        error = f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
        self._record(log, route, CompressionDecision.failed_open(body, error))
        return body

    def _record(self, log: FilteringBoundLogger, route: Route, decision: CompressionDecision) -> None:
        """Log one `compression_decision` and count the same record, so logs and metrics agree."""
        log_at = log.error if decision.error is not None else log.info
        log_at("compression_decision", path=route.path.decode("latin-1"), **decision.log_fields())
        if self._metrics is not None:
            self._metrics.compression_decided(decision, route.label)
