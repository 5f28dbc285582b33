"""`/metrics`, `/stats` and `/dashboard`: local endpoints that read the service's `ProxyMetrics`.

They answer only on the proxy's own listener (exact paths, GET/HEAD, see
`RootResource`) and show aggregates only: no prompts, headers or keys.
"""

from __future__ import annotations

import orjson
from prometheus_client.exposition import choose_encoder
from twisted.web.resource import Resource
from twisted.web.server import Request

from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.web.dashboard import render_dashboard


def _no_store(request: Request, content_type: bytes) -> None:
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"cache-control", b"no-store")


class MetricsResource(Resource):
    """`/metrics`: Prometheus text (or OpenMetrics when the scraper asks for it)."""

    isLeaf = True

    def __init__(self, metrics: ProxyMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        accept = (request.getHeader(b"accept") or b"").decode("latin-1")
        encoder, content_type = choose_encoder(accept)
        _no_store(request, content_type.encode("latin-1"))
        output: bytes = encoder(self._metrics.registry)
        return output


class StatsResource(Resource):
    """`/stats`: the savings since start as JSON."""

    isLeaf = True

    def __init__(self, metrics: ProxyMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        _no_store(request, b"application/json")
        return orjson.dumps(self._metrics.snapshot())


class DashboardResource(Resource):
    """`/dashboard`: the same numbers as one self-contained HTML page."""

    isLeaf = True

    def __init__(self, metrics: ProxyMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        _no_store(request, b"text/html; charset=utf-8")
        request.setHeader(
            b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
        )
        request.setHeader(b"x-frame-options", b"DENY")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return render_dashboard(self._metrics.snapshot()).encode("utf-8")
