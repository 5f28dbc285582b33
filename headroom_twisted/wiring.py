"""Assembles the production service: real compressors, real SSE telemetry.

Kept apart from `service.py` so tests can build a service with fakes, and so
importing the service does not load Magika or the tokenizers.
"""

from __future__ import annotations

from typing import Any

from twisted.python.threadpool import ThreadPool
from twisted.web.http_headers import Headers

from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.pipeline import CompressionRunner
from headroom_twisted.compress.processes import CompressionProcesses
from headroom_twisted.config import Config
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.service import HeadroomService
from headroom_twisted.sse.json_usage import json_usage_for
from headroom_twisted.sse.telemetry import telemetry_for
from headroom_twisted.upstream.observer import BodyObserver
from headroom_twisted.upstream.routing import Route
from headroom_twisted.web.compression import CompressionStage
from headroom_twisted.web.proxy import ObserverFactory


def media_type(response_headers: Headers) -> bytes:
    """The response's media type without parameters: `text/event-stream`, `application/json`, ..."""
    content_type = (response_headers.getRawHeaders(b"content-type") or [b""])[0]
    return content_type.split(b";", 1)[0].strip().lower()


def metered_observers(metrics: ProxyMetrics) -> ObserverFactory:
    """SSE telemetry for `text/event-stream` responses and a usage reader for JSON
    responses of the LLM endpoints (nothing for other bodies), counted in `metrics`."""

    def observer_for(route: Route, response_headers: Headers, log: Any) -> BodyObserver | None:
        kind = media_type(response_headers)
        if kind == b"text/event-stream":
            return telemetry_for(route.endpoint, log, on_closed=metrics.sse_closed)
        if kind == b"application/json":
            return json_usage_for(route.endpoint, log, metrics.usage_reported)
        return None

    return observer_for


def build_service(config: Config, reactor: Any) -> HeadroomService:
    metrics = ProxyMetrics(reactor)
    processes = CompressionProcesses(config.threads, config.log_format, config.log_level)
    memo = RewriteMemo(config.compression_memo_bytes)
    runner = CompressionRunner(processes, config.compression, memo, config.compression_timeout)

    def compression_stage(reactor_: Any, pool: ThreadPool) -> CompressionStage:
        return CompressionStage(reactor_, pool, config, runner.compress, metrics)

    return HeadroomService(
        config,
        reactor,
        warm_up=processes.warm_up,
        on_stop=processes.stop,
        body_stage_factory=compression_stage,
        observer_for=metered_observers(metrics),
        metrics=metrics,
    )
