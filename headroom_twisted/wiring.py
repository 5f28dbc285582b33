"""The composition root: builds every piece of the proxy once and hands each the others it needs.

`build_service` is what `twistd headroom` runs: real compressors in worker
processes, real SSE telemetry. `assemble` builds the rest around a given
compression service and body stage, so tests build the same service with a
fake job, no worker processes, or no compression at all.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path

from structlog.typing import FilteringBoundLogger
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.web.http_headers import Headers

from headroom_twisted.compress.decision import CompressionDecision
from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.memo_store import MemoStore
from headroom_twisted.compress.pipeline import CompressionRunner
from headroom_twisted.compress.processes import CompressionProcesses
from headroom_twisted.compression_service import CompressionService
from headroom_twisted.config import Config
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.listening import Listeners
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.service import DrainService, HeadroomService, readiness
from headroom_twisted.sse.json_usage import json_usage_for
from headroom_twisted.sse.telemetry import telemetry_for
from headroom_twisted.upstream.agent import IUpstreamReactor, make_agent
from headroom_twisted.upstream.observer import BodyObserver
from headroom_twisted.upstream.routing import Route
from headroom_twisted.web.budget import BodyBudget
from headroom_twisted.web.compression import CompressionStage
from headroom_twisted.web.local import HealthResource, LocalOnly, ReadyResource
from headroom_twisted.web.observability import DashboardResource, MetricsResource, StatsResource
from headroom_twisted.web.proxy import BodyStage, InFlight, ObserverFactory, ProxyResource, no_observer
from headroom_twisted.web.request import ClientLimits, ProxySite
from headroom_twisted.web.root import RootResource


class IProxyReactor(IUpstreamReactor, IReactorCore, IReactorFromThreads):
    """The reactor the proxy runs on, by the interfaces its parts use it through (for type checking only).

    Time for every timer, TCP and name resolution for the upstream client,
    the core for `strports`, and calls from threads for the compression pool.
    """


def media_type(response_headers: Headers) -> bytes:
    """The response's media type without parameters: `text/event-stream`, `application/json`, ..."""
    content_type = (response_headers.getRawHeaders(b"content-type") or [b""])[0]
    return content_type.split(b";", 1)[0].strip().lower()


def metered_observers(metrics: ProxyMetrics) -> ObserverFactory:
    """SSE telemetry for `text/event-stream` responses and a usage reader for JSON
    responses of the LLM endpoints (nothing for other bodies), counted in `metrics`."""

    def observer_for(route: Route, response_headers: Headers, log: FilteringBoundLogger) -> BodyObserver | None:
        kind = media_type(response_headers)
        if kind == b"text/event-stream":
            return telemetry_for(route.endpoint, log, on_closed=metrics.sse_closed)
        if kind == b"application/json":
            return json_usage_for(route.endpoint, log, metrics.usage_reported)
        return None

    return observer_for


def mode_off_job(body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> CompressionDecision:
    """The job of `--compression off`: the body as it is, with the reason the gate gives.

    The gate turns every body away (`mode_off`) before it reaches a job, so
    this only keeps the pipeline from ever being built in a mode it has no
    meaning for.
    """
    return CompressionDecision.without_pipeline(body, "passthrough", "mode_off")


STORED_MEMO_FACTOR = 8
"""The memo file in the state directory holds up to this many times ``--compression-memo-bytes``."""


def compression_service(config: Config, reactor: IProxyReactor) -> CompressionService[CompressionDecision]:
    """The pipeline in worker processes; with `--compression off`, no pipeline and no workers.

    Off, nothing is ever compressed, so no worker process is started and no
    model loaded (measured: 5 processes and about 800 MiB for nothing), and
    `/readyz` turns 200 as soon as the listeners and the empty pool are up.
    """
    if config.compression == "off":
        return CompressionService(reactor, mode_off_job, threads=1)
    processes = CompressionProcesses(config.threads, config.log_format, config.log_level)
    store = None
    if config.state_dir and config.compression_memo_bytes:
        path = Path(config.state_dir) / "memo.sqlite3"
        store = MemoStore(path, STORED_MEMO_FACTOR * config.compression_memo_bytes)
    memo = RewriteMemo(config.compression_memo_bytes, store)
    runner = CompressionRunner(processes, config.compression, memo, config.compression_timeout)
    return CompressionService(reactor, runner.compress, threads=config.threads, workers=processes)


def build_service(config: Config, reactor: IProxyReactor, *, limits: ClientLimits = ClientLimits()) -> HeadroomService:
    """The production service: the compression pipeline in worker processes, metered SSE telemetry."""
    metrics = ProxyMetrics(reactor)
    compression = compression_service(config, reactor)
    return assemble(
        config, reactor, compression, metrics=metrics, observer_for=metered_observers(metrics), limits=limits
    )


def assemble(
    config: Config,
    reactor: IProxyReactor,
    compression: CompressionService[CompressionDecision],
    *,
    metrics: ProxyMetrics | None = None,
    body_stage: BodyStage | None = None,
    observer_for: ObserverFactory = no_observer,
    limits: ClientLimits = ClientLimits(),
) -> HeadroomService:
    """The service around `compression`: the upstream agent, the resource tree, the site, listening, the drain.

    `body_stage` defaults to the compression stage over `compression`.
    """
    metrics = metrics if metrics is not None else ProxyMetrics(reactor)
    metrics.watch_thread_pool(compression.thread_pool)
    agent, upstream_pool = make_agent(reactor, config.connect_timeout, config.upstream_keepalive)
    in_flight = InFlight()
    listeners = Listeners(reactor)
    proxy = ProxyResource(
        config=config,
        agent=agent,
        clock=reactor,
        in_flight=in_flight,
        metrics=metrics,
        body_stage=body_stage if body_stage is not None else CompressionStage(compression, config, metrics),
        observer_for=observer_for,
    )
    root = RootResource(
        proxy,
        {
            b"/healthz": HealthResource(),
            b"/readyz": ReadyResource(functools.partial(readiness, compression, listeners)),
            b"/metrics": LocalOnly(MetricsResource(metrics), config.local_hosts),
            b"/stats": LocalOnly(StatsResource(metrics), config.local_hosts),
            b"/dashboard": LocalOnly(DashboardResource(metrics), config.local_hosts),
        },
    )
    site = ProxySite(
        root,
        reactor=reactor,
        limits=limits,
        max_body_bytes=config.max_body_bytes,
        body_budget=BodyBudget(config.max_inflight_body_bytes, config.max_inflight_body_bytes_per_client),
        metrics=metrics,
    )
    for description in config.listen:
        listeners.listen(description, site)
    return HeadroomService(
        config,
        reactor,
        listeners=listeners,
        drain=DrainService(site, in_flight, reactor, config.drain_timeout),
        compression=compression,
        upstream_pool=upstream_pool,
    )
