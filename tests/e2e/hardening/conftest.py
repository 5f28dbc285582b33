"""Fixtures for the hardening battery: one fake upstream per module, reset before each test."""

from __future__ import annotations

import pytest
import pytest_twisted
from hardening_support import echo_upstream
from http_fakes import FakeUpstream, start_upstream


@pytest.fixture(scope="module")
def fake() -> FakeUpstream:
    """A recording upstream on the test reactor; the module's daemon points at it."""
    upstream = pytest_twisted.blockon(start_upstream())
    yield upstream
    pytest_twisted.blockon(upstream.stop())


@pytest.fixture(autouse=True)
def _fresh_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        upstream: FakeUpstream = request.getfixturevalue("fake")
        upstream.handler = echo_upstream
        upstream.requests.clear()


@pytest.fixture(autouse=True)
def _daemon_survives(request: pytest.FixtureRequest) -> None:
    """After each test of a module with a long-lived `daemon`: it still runs and answers /healthz.

    A module may add checks of its own (the upstream-fault module also sends
    a request through it).
    """
    daemon = request.getfixturevalue("daemon") if "daemon" in request.fixturenames else None
    yield
    if daemon is not None:
        assert daemon.alive(), daemon.log_text()[-3000:]
        assert daemon.healthz() == 200
