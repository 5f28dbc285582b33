"""The compression stage: gate on the reactor, pipeline on the thread pool, fail open.

The reactor thread only decides (cheaply, from headers and length) whether
a body may be compressed and hands the bytes to the pool; parsing, walking,
compressing and splicing all happen on a worker, except for bodies too small
to hold a compressible block (see `INLINE_BODY_BYTES`). Whatever goes wrong,
the original bytes are forwarded.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.http_headers import Headers

from headroom_twisted.compress.gate import decide
from headroom_twisted.compress.pipeline import BlockCompressor, CompressionOutcome, compress_request
from headroom_twisted.config import Config
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.routing import Route

INLINE_BODY_BYTES = 512
"""Bodies shorter than this are compressed on the reactor thread, not the pool.

No string in them reaches the block compressor's 512-byte threshold, so the
pipeline only parses and walks them (about 0.1 ms), which is cheaper than
the round trip through the thread pool and back; the outcome is the same.
"""


def header_map(headers: Headers) -> dict[str, list[bytes]]:
    """Twisted Headers as the gate wants them: lower-cased name -> raw values."""
    return {name.decode("latin-1").lower(): list(values) for name, values in headers.getAllRawHeaders()}


class CompressionStage:
    """A `BodyStage` that compresses the live zone of the three LLM endpoints."""

    def __init__(
        self,
        reactor: Any,
        pool: ThreadPool,
        config: Config,
        compressor: BlockCompressor,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        self._reactor = reactor
        self._pool = pool
        self._config = config
        self._compressor = compressor
        self._metrics = metrics

    def __call__(self, method: bytes, route: Route, headers: Headers, body: bytes, log: Any) -> Deferred[bytes]:
        decision = decide(
            method,
            route.path,
            header_map(headers),
            len(body),
            self._config.compression,
            self._config.compression_max_body_bytes,
        )
        if decision.endpoint is None:
            return succeed(body)
        path = route.path.decode("latin-1")
        if not decision.compress:
            self._record(
                log,
                "info",
                {
                    "path": path,
                    "decision": "passthrough",
                    "reason": decision.passthrough_reason,
                    "bytes_before": len(body),
                    "bytes_after": len(body),
                },
            )
            return succeed(body)
        if len(body) < INLINE_BODY_BYTES:
            working = maybeDeferred(compress_request, body, decision.endpoint, self._compressor)
        else:
            working = deferToThreadPool(
                self._reactor, self._pool, compress_request, body, decision.endpoint, self._compressor
            )
        working.addCallback(self._decided, path, log)
        working.addErrback(self._failed_open, body, path, log)
        return working

    def _decided(self, outcome: CompressionOutcome, path: str, log: Any) -> bytes:
        self._record(log, "info", {"path": path, **outcome.log_fields()})
        return outcome.body

    def _failed_open(self, failure: Failure, body: bytes, path: str, log: Any) -> bytes:
        self._record(
            log,
            "error",
            {
                "path": path,
                "decision": "passthrough",
                "reason": "internal_error",
                "error": f"{failure.type.__name__}: {failure.getErrorMessage()}",
            },
        )
        return body

    def _record(self, log: Any, level: str, fields: dict[str, Any]) -> None:
        """Log one `compression_decision` and count the same fields, so logs and metrics agree."""
        getattr(log, level)("compression_decision", **fields)
        if self._metrics is not None:
            self._metrics.compression_decided(fields)
