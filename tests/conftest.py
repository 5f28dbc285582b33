"""Shared fixtures: a recording fake upstream and an in-process proxy on loopback.

Both run on the real reactor (pytest-twisted) over real sockets, so the tests
exercise the same code paths as `twistd headroom`.
"""

from __future__ import annotations

import os
import sys

import pytest
import pytest_twisted

sys.path.insert(0, os.path.dirname(__file__))

from http_fakes import FakeUpstream, RunningProxy, start_proxy, start_upstream  # noqa: E402


@pytest.fixture
def upstream() -> FakeUpstream:
    fake = pytest_twisted.blockon(start_upstream())
    yield fake
    pytest_twisted.blockon(fake.stop())


@pytest.fixture
def make_proxy(upstream: FakeUpstream):
    """`make_proxy(production=False, **options)` starts a proxy pointed at the fake upstream."""
    started: list[RunningProxy] = []

    def make(production: bool = False, **options: str) -> RunningProxy:
        proxy = start_proxy(upstream.url, production=production, **options)
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        pytest_twisted.blockon(proxy.stop())


@pytest.fixture
def proxy(make_proxy) -> RunningProxy:
    return make_proxy()
