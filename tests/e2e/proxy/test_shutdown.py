"""Stopping the service never blocks the reactor, even with a compression job that will not end.

The body stage here runs a job on the compression pool that waits on an
event, like a compressor stuck on hostile input. Before, stopping joined
that pool on the reactor thread: the reactor froze until the job ended and
the drain deadline was never caught. The workers' stop must run off the
reactor thread too.
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
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers

from headroom_twisted.compression_service import CompressionService
from headroom_twisted.config import build_config
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.upstream.routing import Route
from headroom_twisted.wiring import assemble

DRAIN_TIMEOUT = 0.5
JOB_GIVES_UP_AFTER = 20 * DRAIN_TIMEOUT


class StuckJob:
    """A compression job that runs until released (or gives up, so a failing test still ends)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.ended = threading.Event()

    def run(self, body: bytes, endpoint: Endpoint, cancelled: threading.Event, submitted: float) -> None:
        self.started.set()
        self.release.wait(JOB_GIVES_UP_AFTER)
        self.ended.set()


class Workers:
    """Worker processes that load nothing and record the thread that stops them."""

    def __init__(self) -> None:
        self.stopped_on: list[threading.Thread] = []

    def warm_up(self) -> None:
        pass

    def stop(self) -> None:
        self.stopped_on.append(threading.current_thread())


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
    workers = Workers()
    config = build_config(
        {"openai-upstream": upstream.url, "anthropic-upstream": upstream.url, "drain-timeout": str(DRAIN_TIMEOUT)},
        ["tcp:0:interface=127.0.0.1"],
        {},
    )
    compression = CompressionService(reactor, job.run, threads=config.threads, workers=workers)

    def stage(method: bytes, route: Route, headers: Headers, body: bytes, log: object) -> Deferred[bytes]:
        working = compression.compress(body, Endpoint.CHAT, threading.Event())
        return working.addCallback(lambda _: body)

    service = assemble(config, reactor, compression, body_stage=stage)
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
        await until(lambda: workers.stopped_on)
        assert workers.stopped_on[0] is not threading.main_thread(), "the workers were stopped on the reactor thread"
        [timeout] = [entry for entry in logs if entry["event"] == "drain_timeout"]
        assert timeout["aborting"] == 1
        [finished] = [entry for entry in logs if entry["event"] == "request_finished"]
        assert (finished["status"], finished["outcome"]) == (None, "aborted")
        assert [entry["event"] for entry in logs].count("pools_still_stopping") == 1
        assert upstream.requests == []
    finally:
        job.release.set()
