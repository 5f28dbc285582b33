"""SIGTERM through the real daemon: stop accepting, end keep-alive, drain, and keep the deadline.

Each test starts its own daemon (the signal ends it) with `--drain-timeout=2`.
Order is asserted, not latency: what must happen before what.
"""

from __future__ import annotations

import signal
import time

import pytest_twisted
from hardening_support import Daemon, RawClient, connect, parse_response, sleep, start_daemon
from twisted.internet import reactor
from twisted.internet.error import ConnectionRefusedError
from twisted.web.server import NOT_DONE_YET, Request

DRAIN_TIMEOUT = 2.0  # what start_daemon passes
SLOW_ANSWER = 1.0


def answer_slowly_on_slow_paths(request: Request, recorded: object) -> object:
    if not request.uri.startswith(b"/v1/slow"):
        return b"fast"

    def finish() -> None:
        request.write(b"slow")
        request.finish()

    reactor.callLater(SLOW_ANSWER, finish)
    return NOT_DONE_YET


def never_answer(request: Request, recorded: object) -> object:
    return NOT_DONE_YET


async def wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        await sleep(0.02)
    assert condition(), "timed out waiting"  # type: ignore[operator]


async def refused(port: int) -> bool:
    try:
        client = await connect(port)
    except ConnectionRefusedError:
        return True
    client.transport.abortConnection()
    return False


def wait_exit(daemon: Daemon, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while daemon.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not daemon.alive(), "the daemon outlived its drain deadline"
    return time.monotonic()


@pytest_twisted.ensureDeferred
async def test_sigterm_stops_accepting_and_ends_keep_alive_while_in_flight_requests_finish(fake) -> None:
    fake.handler = answer_slowly_on_slow_paths
    daemon = start_daemon(fake.url)
    try:
        idle = await connect(daemon.port)
        idle.transport.write(b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for(lambda: idle.received.endswith(b"fast"))
        busy = await connect(daemon.port)
        busy.transport.write(b"GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_for(lambda: any(r.uri == b"/v1/slow" for r in fake.requests))

        daemon.process.send_signal(signal.SIGTERM)
        await wait_for(lambda: idle.closed.called)
        assert not busy.received, "the idle keep-alive connection stayed open until the drain was over"
        refused_in_flight = False
        while not busy.received and not refused_in_flight:
            refused_in_flight = await refused(daemon.port)
            await sleep(0.02)
        assert refused_in_flight, "new connections were still accepted while a request was draining"

        await wait_for(lambda: busy.closed.called)
        response = parse_response(bytes(busy.received))
        assert (response.status, response.body, response.complete) == (200, b"slow", True)
        assert response.header(b"connection") == [b"close"]
        wait_exit(daemon, DRAIN_TIMEOUT * 5)
        events = [event["event"] for event in daemon.events()]
        assert "draining" in events and "drain_timeout" not in events
    finally:
        daemon.stop()


@pytest_twisted.ensureDeferred
async def test_sigterm_aborts_what_is_left_at_the_drain_deadline(fake) -> None:
    """Before, the deadline's timeout was never caught: no `drain_timeout`, nothing aborted."""
    fake.handler = never_answer
    daemon = start_daemon(fake.url)
    try:
        hung: RawClient = await connect(daemon.port)
        hung.transport.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-request-id: hung-1\r\nContent-Length: 2\r\n\r\n{}"
        )
        await wait_for(lambda: len(fake.requests) == 1)
        signalled = time.monotonic()
        daemon.process.send_signal(signal.SIGTERM)
        assert await hung.wait_closed(DRAIN_TIMEOUT * 5)
        assert bytes(hung.received) == b""
        exited = wait_exit(daemon, DRAIN_TIMEOUT * 5)
        assert exited - signalled < DRAIN_TIMEOUT * 5
        events = daemon.events()
        [timeout] = [event for event in events if event["event"] == "drain_timeout" and "aborting" in event]
        assert timeout["aborting"] == 1
        [finished] = [e for e in events if e["event"] == "request_finished" and e.get("request_id") == "hung-1"]
        assert (finished["status"], finished["outcome"]) == (None, "aborted")
    finally:
        daemon.stop()
