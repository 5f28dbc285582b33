"""End-to-end fixtures: a recording fake upstream and an in-process proxy on loopback.

Both run on the real reactor (pytest-twisted) over real sockets, so these
tests exercise the same code paths as `twistd headroom`. Every test under
`tests/e2e/` is marked `slow`: `pytest -m "not slow"` runs the in-memory suite alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from http_fakes import FakeUpstream, RunningProxy, start_proxy, start_upstream

E2E = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.slow)


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
