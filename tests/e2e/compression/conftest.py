"""Fixtures for the end-to-end live-zone tests: a production proxy, and proxies with a chosen compressor."""

from __future__ import annotations

import pytest
from e2e_support import start_proxy_with, stop_all
from http_fakes import FakeUpstream, RunningProxy


@pytest.fixture
def live(make_proxy) -> RunningProxy:
    """The proxy as `twistd headroom` wires it: real compressors, live_zone mode."""
    return make_proxy(production=True, compression="live_zone")


@pytest.fixture(params=["live_zone", "stable"])
def either_mode(make_proxy, request) -> RunningProxy:
    """The production proxy in each compressing mode, for the reference behaviours both must keep."""
    return make_proxy(production=True, compression=request.param)


@pytest.fixture
def proxy_with(upstream: FakeUpstream):
    """`proxy_with(compressor, **options)`: a proxy whose compression stage uses `compressor`."""
    started: list[RunningProxy] = []

    def make(compressor, **options: str) -> RunningProxy:
        proxy = start_proxy_with(upstream.url, compressor, **options)
        started.append(proxy)
        return proxy

    yield make
    stop_all(started)
