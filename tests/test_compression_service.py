"""`CompressionService`: jobs and warm-up on its pool, readiness, and a stop that never blocks the reactor.

Real threads (the pool is the point) and the real reactor, no sockets; the
job and the workers are fakes that record which thread ran them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest_twisted
from structlog.testing import capture_logs
from twisted.internet import reactor
from twisted.internet.task import deferLater

from headroom_twisted.compression_service import CompressionService
from headroom_twisted.endpoints import Endpoint

GIVE_UP_AFTER = 10.0  # seconds a stuck fake waits before ending anyway, so a failing test still ends


class Workers:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.warmed_on: list[threading.Thread] = []
        self.stopped_on: list[threading.Thread] = []

    def warm_up(self) -> None:
        self.warmed_on.append(threading.current_thread())
        if self.fail:
            raise RuntimeError("no models")

    def stop(self) -> None:
        self.stopped_on.append(threading.current_thread())


async def until(condition: Callable[[], object]) -> None:
    for _ in range(int(GIVE_UP_AFTER / 0.01)):
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("never happened")


def echo(body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> tuple[bytes, str, bool]:
    return body, threading.current_thread().name, cancelled.is_set()


@pytest_twisted.ensureDeferred
async def test_ready_once_the_workers_are_warmed_up_on_the_pool() -> None:
    workers = Workers()
    service = CompressionService(reactor, echo, threads=2, workers=workers)
    assert service.readiness() == {"thread_pool": False, "tokenizer_and_detector": False}
    service.startService()
    try:
        await until(lambda: service.readiness()["tokenizer_and_detector"])
        assert service.readiness() == {"thread_pool": True, "tokenizer_and_detector": True}
        [thread] = workers.warmed_on
        assert thread is not threading.main_thread()
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_a_failed_warm_up_is_logged_and_never_ready() -> None:
    service = CompressionService(reactor, echo, threads=1, workers=Workers(fail=True))
    with capture_logs() as logs:
        service.startService()
        try:
            await until(lambda: any(entry["event"] == "warm_up_failed" for entry in logs))
        finally:
            await service.stopService()
    assert service.readiness()["tokenizer_and_detector"] is False


@pytest_twisted.ensureDeferred
async def test_the_job_runs_on_the_pool_with_the_callers_flag() -> None:
    service = CompressionService(reactor, echo, threads=1)
    service.startService()
    try:
        cancelled = threading.Event()
        cancelled.set()
        body, thread_name, flagged = await service.compress(b"{}", Endpoint.CHAT, cancelled)
        assert (body, flagged) == (b"{}", True)
        assert thread_name.startswith("PoolThread-headroom-compress-")
    finally:
        await service.stopService()


@pytest_twisted.ensureDeferred
async def test_stopping_with_a_stuck_job_stops_pool_and_workers_off_the_reactor_thread() -> None:
    started, release = threading.Event(), threading.Event()

    def stuck(body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> bytes:
        started.set()
        release.wait(GIVE_UP_AFTER)
        return body

    workers = Workers()
    service = CompressionService(reactor, stuck, threads=1, workers=workers)
    service.startService()
    working = service.compress(b"{}", Endpoint.CHAT, threading.Event())
    await until(started.is_set)
    stopped: list[None] = []
    service.stopService().addCallback(stopped.append)  # returns at once: nothing joined here
    try:
        await until(lambda: workers.stopped_on)
        assert workers.stopped_on[0] is not threading.main_thread()
        assert stopped == [], "the pool stopped while its job still ran"
    finally:
        release.set()
    assert await working == b"{}"
    await until(lambda: stopped)
