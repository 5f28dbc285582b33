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
