"""The root service in memory: start order, readiness, and the drain on stop, on a Clock.

The pieces are the real ones (listeners made by `strports`, the site, the
proxy resource, the drain) on a `MemoryReactorClock`, with the upstream
behind `treq.testing`'s in-memory agent; only the compression service is a
fake whose stop the test finishes (or not). Nothing listens on a socket and
no test waits for real time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from site_client import SiteClient
from structlog.testing import capture_logs
from treq.testing import RequestTraversalAgent
from twisted.application.service import Application, Service
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import ILogObserver
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from headroom_twisted import systemd
from headroom_twisted.compression_service import ICompressionService
from headroom_twisted.config import build_config
from headroom_twisted.listening import Listeners
from headroom_twisted.logging import StructlogObserver
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.service import DrainService, HeadroomService
from headroom_twisted.web.proxy import InFlight, ProxyResource
from headroom_twisted.web.request import ProxySite

DRAIN_TIMEOUT = 10.0


@implementer(IListeningPort)
@dataclass
class Port:
    address: IPv4Address
    listening: bool = True

    def startListening(self) -> None:
        self.listening = True

    def stopListening(self) -> None:
        self.listening = False

    def getHost(self) -> IPv4Address:
        return self.address


class Reactor(MemoryReactorClock):
    """A memory reactor whose ports say whether they still listen (or that refuses to listen)."""

    def __init__(self, busy: bool = False) -> None:
        super().__init__()
        self.busy = busy
        self.ports: list[Port] = []

    def listenTCP(self, port: int, factory: object, backlog: int = 50, interface: str = "") -> Port:
        if self.busy:
            raise CannotListenError(interface, port, OSError(98, "Address already in use"))
        super().listenTCP(port, factory, backlog, interface)
        self.ports.append(Port(IPv4Address("TCP", interface or "0.0.0.0", port)))
        return self.ports[-1]


@implementer(ICompressionService)
class Compression(Service):
    """The compression service's outside: ready once started; stopped when the test says so."""

    def __init__(self, reactor: Reactor) -> None:
        self._reactor = reactor
        self.stopping: Deferred[None] | None = None
        self.stop_asked_at: float | None = None

    def readiness(self) -> dict[str, bool]:
        return {"thread_pool": bool(self.running), "tokenizer_and_detector": bool(self.running)}

    def stopService(self) -> Deferred[None]:
        super().stopService()
        self.stop_asked_at = self._reactor.seconds()
        self.stopping = Deferred()
        return self.stopping


@dataclass
class Upstream(Resource):
    """Holds every request open until the test answers it."""

    held: list[Request] = field(default_factory=list)
    isLeaf = True

    def __post_init__(self) -> None:
        Resource.__init__(self)

    def render(self, request: Request) -> int:
        self.held.append(request)
        return NOT_DONE_YET


@dataclass
class Proxy:
    reactor: Reactor = field(default_factory=Reactor)
    upstream: Upstream = field(default_factory=Upstream)

    def __post_init__(self) -> None:
        self.config = build_config(
            {
                "openai-upstream": "http://openai.test",
                "anthropic-upstream": "http://anthropic.test",
                "drain-timeout": str(DRAIN_TIMEOUT),
            },
            ["tcp:8787:interface=127.0.0.1"],
            {},
        )
        self.agent = RequestTraversalAgent(self.upstream)
        self.in_flight = InFlight()
        proxy = ProxyResource(
            config=self.config,
            agent=self.agent,
            clock=self.reactor,
            in_flight=self.in_flight,
            metrics=ProxyMetrics(self.reactor, process_collectors=False),
        )
        self.site = ProxySite(proxy, reactor=self.reactor, max_body_bytes=self.config.max_body_bytes)
        self.listeners = Listeners(self.reactor)
        for description in self.config.listen:
            self.listeners.listen(description, self.site)
        self.compression = Compression(self.reactor)
        self.service = HeadroomService(
            self.config,
            self.reactor,
            listeners=self.listeners,
            drain=DrainService(self.site, self.in_flight, self.reactor, DRAIN_TIMEOUT),
            compression=self.compression,
            upstream_pool=HTTPConnectionPool(self.reactor),
        )

    def client(self) -> SiteClient:
        return SiteClient(self.site)

    def busy_client(self) -> SiteClient:
        """A client whose request is with the upstream, unanswered."""
        client = self.client()
        client.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        self.agent.flush()
        return client

    def answer_upstream(self) -> None:
        for request in self.upstream.held:
            request.setHeader(b"content-length", b"2")
            request.write(b"{}")
            request.finish()
        self.agent.flush()


def fired(deferred: Deferred[None]) -> list[None]:
    """Fills when `deferred` has its result (`called` is already True while it waits on another)."""
    results: list[None] = []
    deferred.addCallback(results.append)
    return results


@pytest.fixture
def notified(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    sent: list[bytes] = []

    def notify(message: bytes) -> bool:
        sent.append(message)
        return True

    monkeypatch.setattr(systemd, "notify", notify)
    return sent


def test_start_listens_first_then_starts_the_pools_and_tells_systemd(notified: list[bytes]) -> None:
    proxy = Proxy()
    proxy.service.privilegedStartService()  # what twistd does before dropping privileges
    assert [port.listening for port in proxy.reactor.ports] == [True]
    assert not proxy.compression.running
    assert notified == []
    proxy.service.startService()
    assert proxy.compression.running
    assert len(proxy.reactor.ports) == 1, "listened twice"
    assert notified == [b"READY=1\nSTATUS=listening"]


def test_readiness_reports_the_pools_and_the_sockets(notified: list[bytes]) -> None:
    proxy = Proxy()
    assert proxy.service.readiness() == {"thread_pool": False, "tokenizer_and_detector": False, "listening": False}
    proxy.service.startService()
    assert proxy.service.readiness() == {"thread_pool": True, "tokenizer_and_detector": True, "listening": True}
    proxy.service.stopService()
    assert proxy.service.readiness()["listening"] is False


def test_stop_ends_keep_alive_waits_for_in_flight_then_stops_the_pools(notified: list[bytes]) -> None:
    proxy = Proxy()
    proxy.service.startService()
    idle = proxy.client()
    busy = proxy.busy_client()
    assert len(proxy.in_flight) == 1

    stopped = fired(proxy.service.stopService())
    assert notified[-1] == b"STOPPING=1"
    assert [port.listening for port in proxy.reactor.ports] == [False]
    assert idle.transport.disconnecting, "an idle keep-alive connection stayed open"
    assert not busy.transport.disconnecting
    assert proxy.compression.stop_asked_at is None, "the pools stopped while a request was in flight"

    proxy.reactor.advance(DRAIN_TIMEOUT / 2)
    proxy.answer_upstream()
    assert b"HTTP/1.1 200" in busy.transport.value()
    assert b"connection: close" in busy.transport.value().lower()
    assert busy.transport.disconnecting and not busy.transport.disconnected
    busy.close_as_asked()
    assert proxy.compression.stop_asked_at == DRAIN_TIMEOUT / 2
    assert not stopped, "stopped before the pools did"
    assert proxy.compression.stopping is not None
    proxy.compression.stopping.callback(None)
    proxy.reactor.advance(0)  # the next turn of the reactor, long before the deadline
    assert stopped


def test_what_is_in_flight_at_the_deadline_is_aborted_and_the_pools_get_no_longer(notified: list[bytes]) -> None:
    proxy = Proxy()
    proxy.service.startService()
    busy = proxy.busy_client()
    with capture_logs() as logs:
        stopped = fired(proxy.service.stopService())
        proxy.reactor.advance(DRAIN_TIMEOUT - 0.01)
        assert not busy.transport.disconnected
        proxy.reactor.advance(0.01)
        assert busy.transport.disconnected, "the request in flight was not aborted at the deadline"
        assert proxy.compression.stop_asked_at == DRAIN_TIMEOUT
        proxy.reactor.advance(0)
    assert stopped, "the stop waited for pools past the drain deadline"
    events = [entry["event"] for entry in logs]
    assert events.count("draining") == 1
    [timeout] = [entry for entry in logs if entry["event"] == "drain_timeout"]
    assert timeout["aborting"] == 1
    assert events.count("pools_still_stopping") == 1


def test_pools_that_stop_slowly_are_waited_for_until_the_drain_deadline(notified: list[bytes]) -> None:
    proxy = Proxy()
    proxy.service.startService()
    with capture_logs() as logs:
        stopped = fired(proxy.service.stopService())  # nothing in flight: straight to the pools
        assert proxy.compression.stop_asked_at == 0
        proxy.reactor.advance(DRAIN_TIMEOUT - 0.01)
        assert not stopped
        proxy.reactor.advance(0.01)
    assert stopped
    assert [entry["event"] for entry in logs] == ["pools_still_stopping"]


def test_a_port_that_cannot_be_had_stops_startup_with_one_clear_line() -> None:
    proxy = Proxy(reactor=Reactor(busy=True))
    with pytest.raises(SystemExit) as stopped:
        proxy.service.privilegedStartService()
    message = str(stopped.value)
    assert message.startswith("headroom: cannot listen on 'tcp:8787:interface=127.0.0.1': ")
    assert "Address already in use" in message


def test_an_endpoint_that_cannot_be_made_stops_startup_with_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LISTEN_FDS", raising=False)
    proxy = Proxy()
    with pytest.raises(SystemExit) as stopped:
        proxy.listeners.listen("systemd:domain=INET:index=0", proxy.site)  # no socket was inherited
    assert str(stopped.value).startswith("headroom: cannot listen on 'systemd:domain=INET:index=0': ")


def test_under_twistd_the_application_logs_through_structlog() -> None:
    application = Application("headroom")
    Proxy().service.setServiceParent(application)
    assert isinstance(ILogObserver(application), StructlogObserver)
