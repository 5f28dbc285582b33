"""Stopping the service never blocks the reactor, even with a compression job that will not end.

The body stage here runs a job on the compression pool that waits on an
event, like a compressor stuck on hostile input. Before, stopping joined
that pool on the reactor thread: the reactor froze until the job ended and
the drain deadline was never caught.
"""

from __future__ import annotations

import threading

import pytest_twisted
from structlog.testing import capture_logs
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol, connectionDone
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.http_headers import Headers

from headroom_twisted.config import build_config
from headroom_twisted.service import HeadroomService
from headroom_twisted.upstream.routing import Route

DRAIN_TIMEOUT = 0.5
JOB_GIVES_UP_AFTER = 20 * DRAIN_TIMEOUT


class StuckJob:
    """A compression job that runs until released (or gives up, so a failing test still ends)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        self.started.set()
        self.release.wait(JOB_GIVES_UP_AFTER)
        self.ended.set()

    def stage_factory(self, reactor_: object, pool: ThreadPool) -> object:
        def stage(method: bytes, route: Route, headers: Headers, body: bytes, log: object) -> Deferred[bytes]:
            working = deferToThreadPool(reactor_, pool, self.run)
            return working.addCallback(lambda _: body)

        return stage


class Client(Protocol):
    def __init__(self) -> None:
        self.received = b""
        self.closed: Deferred[None] = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.closed.callback(None)


async def until(condition: object) -> None:
    for _ in range(int(JOB_GIVES_UP_AFTER / 0.01)):
        if condition():  # type: ignore[operator]
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("timed out waiting")


@pytest_twisted.ensureDeferred
async def test_stop_keeps_the_drain_deadline_and_never_joins_a_busy_pool_on_the_reactor(upstream) -> None:
    job = StuckJob()
    on_stop_threads: list[threading.Thread] = []
    config = build_config(
        {"openai-upstream": upstream.url, "anthropic-upstream": upstream.url, "drain-timeout": str(DRAIN_TIMEOUT)},
        ["tcp:0:interface=127.0.0.1"],
        {},
    )
    service = HeadroomService(
        config,
        reactor,
        warm_up=lambda: None,
        body_stage_factory=job.stage_factory,
        on_stop=lambda: on_stop_threads.append(threading.current_thread()),
    )
    service.startService()
    try:
        client = Client()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", service.ports[0].getHost().port)
        await connectProtocol(endpoint, client)
        client.transport.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        await until(job.started.is_set)

        with capture_logs() as logs:
            await service.stopService()
            assert not job.ended.is_set(), "stopping waited for the compression job to end"
        await client.closed
        assert client.received == b"", "the aborted client got a response"
        await until(lambda: on_stop_threads)
        assert on_stop_threads[0] is not threading.main_thread(), "on_stop ran on the reactor thread"
        [timeout] = [entry for entry in logs if entry["event"] == "drain_timeout"]
        assert timeout["aborting"] == 1
        [finished] = [entry for entry in logs if entry["event"] == "request_finished"]
        assert (finished["status"], finished["outcome"]) == (None, "aborted")
        assert [entry["event"] for entry in logs].count("pools_still_stopping") == 1
        assert upstream.requests == []
    finally:
        job.release.set()
