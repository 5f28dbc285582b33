"""Prometheus metrics and the `/stats` aggregation, behind one recorder per service.

`ProxyMetrics` is passed explicitly to the places that already log the
events it counts (the proxy exchange, the compression stage, the relay, the
site's channels), and is handed the records those events are logged from
(a `CompressionDecision`, an SSE `StreamSummary`, a JSON `ResponseUsage`),
so a metric and its log event always come from the same record. Each service owns its own `CollectorRegistry`,
never the global default one, so several services in one process (tests)
do not collide. Every hook is a few dictionary lookups and additions on the
reactor thread; the thread pool is read only when Prometheus scrapes.

Label values are bounded: endpoints and methods map onto fixed sets, models
are capped (see `headroom_twisted.stats`).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from twisted.internet.interfaces import IReactorTime
from twisted.python.threadpool import ThreadPool

from headroom_twisted.compress.decision import CompressionDecision
from headroom_twisted.endpoints import label_for_path
from headroom_twisted.sse.state import Usage
from headroom_twisted.sse.summary import ResponseUsage, StreamSummary
from headroom_twisted.stats import SavingsStats, StatsSnapshot, capped_key

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
COMPRESSION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


INVALID_LABEL = "invalid"
"""The endpoint label of a request that never had a route (a target the proxy refused)."""


def endpoint_label(path: str | None) -> str:
    """The bounded label of a logged path (`Route.label`); `invalid` for no route."""
    return INVALID_LABEL if path is None else label_for_path(path.encode("latin-1"))


def status_class(status: int | None) -> str:
    """`2xx`..`5xx`, or `client_closed` when the client left before any status was sent."""
    return f"{status // 100}xx" if status else "client_closed"


RequestChildren = tuple[Counter, Histogram, str, str]
"""The request counter and duration histogram for one label set, and its endpoint and status class labels."""


class ThreadPoolCollector(Collector):
    """Queue depth and workers of the compression pool, read at scrape time."""

    def __init__(self, pool: ThreadPool) -> None:
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool
        yield GaugeMetricFamily(
            "headroom_threadpool_queue_depth", "Compression jobs waiting for a worker.", value=pool.q.qsize()
        )
        yield GaugeMetricFamily(
            "headroom_threadpool_busy_workers", "Compression workers running a job.", value=len(pool.working)
        )
        yield GaugeMetricFamily("headroom_threadpool_workers", "Compression worker threads alive.", value=pool.workers)
        yield GaugeMetricFamily(
            "headroom_threadpool_max_workers", "Size limit of the compression pool (--threads).", value=pool.max
        )


class ProxyMetrics:
    """The one recorder the proxy's pieces report to; owns the registry and the stats."""

    def __init__(self, clock: IReactorTime, *, process_collectors: bool = True) -> None:
        self._clock = clock
        self.registry = CollectorRegistry()
        self.stats = SavingsStats(started=clock.seconds())
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        registry = self.registry
        self._requests = Counter(
            "headroom_requests",
            "Proxied requests by route, method and status class.",
            ["provider", "endpoint", "method", "status_class"],
            registry=registry,
        )
        self._request_seconds = Histogram(
            "headroom_request_duration_seconds",
            "Time from request received to response finished (streams included).",
            ["provider", "endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self._upstream_errors = Counter(
            "headroom_upstream_errors",
            "Upstream failures: connect (unreachable), timeout, reset (dropped before or during the body).",
            ["kind"],
            registry=registry,
        )
        self._decisions = Counter(
            "headroom_compression_decisions",
            "compression_decision events by endpoint, decision and reason.",
            ["endpoint", "decision", "reason"],
            registry=registry,
        )
        block_labels = ["endpoint", "compressor"]
        self._tokens_before = Counter(
            "headroom_compression_tokens_before",
            "Tokens of blocks at their first compression, as the client sent them.",
            block_labels,
            registry=registry,
        )
        self._tokens_after = Counter(
            "headroom_compression_tokens_after",
            "Tokens of blocks at their first compression, as forwarded upstream.",
            block_labels,
            registry=registry,
        )
        self._bytes_before = Counter(
            "headroom_compression_bytes_before",
            "Bytes of live-zone string literals as the client sent them.",
            block_labels,
            registry=registry,
        )
        self._bytes_after = Counter(
            "headroom_compression_bytes_after",
            "Bytes of live-zone string literals as forwarded upstream.",
            block_labels,
            registry=registry,
        )
        self._compression_seconds = Histogram(
            "headroom_compression_duration_seconds",
            "Time the compression pipeline spent on one request body (on the thread pool).",
            ["endpoint"],
            buckets=COMPRESSION_BUCKETS,
            registry=registry,
        )
        self._connections = Gauge("headroom_open_connections", "Client connections open now.", registry=registry)
        self._streams = Gauge(
            "headroom_active_streams", "Upstream response bodies being relayed to clients now.", registry=registry
        )
        self._sse = Counter(
            "headroom_sse_streams",
            "Event streams by provider and how they ended.",
            ["provider", "ended"],
            registry=registry,
        )
        self._usage = Counter(
            "headroom_provider_usage_tokens",
            "Token usage the provider reported in event streams (kind: input, output, cached).",
            ["provider", "model", "kind"],
            registry=registry,
        )
        self._models: dict[str, None] = {}
        # Labelled children looked up once per label set: `labels()` costs more than the increment.
        self._request_children: dict[tuple[str, str, bytes, int | None], RequestChildren] = {}
        self._block_children: dict[tuple[str, str], tuple[Counter, Counter, Counter, Counter]] = {}

    def watch_thread_pool(self, pool: ThreadPool) -> None:
        self.registry.register(ThreadPoolCollector(pool))

    def snapshot(self) -> StatsSnapshot:
        """The `/stats` payload."""
        return self.stats.snapshot(self._clock.seconds())

    # Hooks, one per logged event.

    def request_finished(
        self, provider: str | None, label: str | None, method: bytes, status: int | None, seconds: float
    ) -> None:
        """Count one `request_finished`; `label` is the route's (None: the target had no route)."""
        key = (provider or "none", label or INVALID_LABEL, method, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children_for(*key)
        requests, request_seconds, endpoint, status_label = children
        requests.inc()
        request_seconds.observe(seconds)
        self.stats.request_finished(endpoint, status_label)

    def _request_children_for(self, provider: str, endpoint: str, method: bytes, status: int | None) -> RequestChildren:
        method_label = method.decode("latin-1")
        if method_label not in KNOWN_METHODS:
            method_label = "other"
        status_label = status_class(status)
        children = (
            self._requests.labels(provider, endpoint, method_label, status_label),
            self._request_seconds.labels(provider, endpoint),
            endpoint,
            status_label,
        )
        if len(self._request_children) < 4096:  # keys hold raw methods: bounded like any cache
            self._request_children[(provider, endpoint, method, status)] = children
        return children

    def upstream_error(self, kind: str) -> None:
        self._upstream_errors.labels(kind).inc()
        self.stats.upstream_error(kind)

    def compression_decided(self, decision: CompressionDecision, endpoint: str) -> None:
        """Count one `compression_decision`; `endpoint` is the route's label.

        Per-block counters cover the blocks compressed for this request, the
        ones the event lists; only a pipeline run has a duration to observe.
        """
        self._decisions.labels(endpoint, decision.decision, decision.reason).inc()
        for block in decision.fresh_blocks:
            rewrite = block.rewrite
            tokens_before, tokens_after, bytes_before, bytes_after = self._block_counters(endpoint, rewrite.strategy)
            if rewrite.tokens_before is not None and rewrite.tokens_after is not None:
                tokens_before.inc(rewrite.tokens_before)
                tokens_after.inc(rewrite.tokens_after)
            bytes_before.inc(block.literal_bytes_before)
            bytes_after.inc(block.literal_bytes_after)
        if decision.duration_ms is not None:
            self._compression_seconds.labels(endpoint).observe(decision.duration_ms / 1000.0)
        self.stats.compression_decided(self._clock.seconds(), endpoint, decision)

    def _block_counters(self, endpoint: str, compressor: str) -> tuple[Counter, Counter, Counter, Counter]:
        """Tokens before and after, literal bytes before and after: the children for one label pair."""
        children = self._block_children.get((endpoint, compressor))
        if children is None:
            children = self._block_children[(endpoint, compressor)] = (
                self._tokens_before.labels(endpoint, compressor),
                self._tokens_after.labels(endpoint, compressor),
                self._bytes_before.labels(endpoint, compressor),
                self._bytes_after.labels(endpoint, compressor),
            )
        return children

    def connection_opened(self) -> None:
        self._connections.inc()

    def connection_closed(self) -> None:
        self._connections.dec()

    def stream_opened(self) -> None:
        self._streams.inc()

    def stream_closed(self) -> None:
        self._streams.dec()

    def sse_closed(self, summary: StreamSummary) -> None:
        """Count one `sse_stream_closed`: how the stream ended and the usage it reported."""
        self._sse.labels(summary.provider, summary.ended).inc()
        self._count_usage(summary.provider, summary.digest.model, summary.digest.usage)
        self.stats.stream_closed(summary)

    def usage_reported(self, report: ResponseUsage) -> None:
        """Count one `response_usage`: usage a JSON (not streamed) response reported."""
        self._count_usage(report.provider, report.model, report.usage)
        self.stats.usage_reported(report)

    def _count_usage(self, provider: str, model: str | None, usage: Usage) -> None:
        model_label = capped_key(self._models, model)
        self._models.setdefault(model_label, None)
        for kind, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_tokens),
            ("cache_creation", usage.cache_creation_tokens),
        ):
            if count:
                self._usage.labels(provider, model_label, kind).inc(count)
