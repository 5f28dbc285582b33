"""`ResponseRelay` in memory: an upstream `StringTransport`, a fake client request, a `Clock`.

Each test drives the relay the way Twisted would (`makeConnection`,
`dataReceived`, `connectionLost`, the client request's producer calls) and
checks one promise: bytes in order, backpressure to the upstream socket, an
idle upstream cut, a connection-delimited body judged by how the connection
closed, a client that leaves stopping the upstream, and observers that can
never break the byte path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import structlog
from prometheus_client import generate_latest
from structlog.testing import capture_logs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IPushProducer, IStreamClientEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from zope.interface import implementer

from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.close_reason import CloseReasonEndpoint
from headroom_twisted.upstream.observer import StreamEnd
from headroom_twisted.upstream.relay import RelayReports, ResponseRelay

IDLE = 30.0


class ClientRequest:
    """What the relay uses of the client's `Request`: a producer slot, write and finish."""

    def __init__(self) -> None:
        self.producer: IPushProducer | None = None
        self.streaming: bool | None = None
        self.written: list[bytes] = []
        self.finished = False

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        assert self.producer is None
        self.producer, self.streaming = producer, streaming

    def unregisterProducer(self) -> None:
        self.producer = None

    def write(self, data: bytes) -> None:
        assert not self.finished
        self.written.append(data)

    def finish(self) -> None:
        assert not self.finished
        self.finished = True


@dataclass
class Reports:
    """A `RelayReports` that records what it was told."""

    calls: list[str] = field(default_factory=list)

    def stream_opened(self) -> None:
        self.calls.append("opened")

    def stream_closed(self) -> None:
        self.calls.append("closed")

    def upstream_error(self, kind: str) -> None:
        self.calls.append(f"error:{kind}")


@dataclass
class Observer:
    """A body observer that records, or raises where told to."""

    raise_in: str | None = None
    chunks: list[bytes] = field(default_factory=list)
    ends: list[StreamEnd] = field(default_factory=list)

    def chunk(self, data: bytes) -> None:
        if self.raise_in == "chunk":
            raise RuntimeError("observer bug")
        self.chunks.append(data)

    def finished(self, end: StreamEnd) -> None:
        if self.raise_in == "finished":
            raise RuntimeError("observer bug")
        self.ends.append(end)


@dataclass
class Relayed:
    """One relay wired to its fakes, connected to an upstream `StringTransport`."""

    observer: Observer | None = field(default_factory=Observer)
    reports: RelayReports = field(default_factory=Reports)
    clock: Clock = field(default_factory=Clock)
    request: ClientRequest = field(default_factory=ClientRequest)
    upstream: StringTransport = field(default_factory=StringTransport)
    cuts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.relay = ResponseRelay(
            self.request,
            clock=self.clock,
            idle_timeout=IDLE,
            observer=self.observer,
            log=structlog.get_logger().bind(request_id="req-relay"),
            on_cut=self.cuts.append,
            reports=self.reports,
        )
        self.relay.makeConnection(self.upstream)

    @property
    def reported(self) -> list[str]:
        assert isinstance(self.reports, Reports)
        return self.reports.calls


def test_chunks_go_to_the_client_in_order_and_the_body_finishes_on_response_done() -> None:
    relayed = Relayed()
    for chunk in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
        relayed.relay.dataReceived(chunk)
    relayed.relay.connectionLost(Failure(ResponseDone()))
    assert relayed.request.written == [b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]
    assert relayed.request.finished and relayed.request.producer is None
    assert relayed.relay.bytes_out == sum(map(len, relayed.request.written))
    assert relayed.cuts == []
    assert relayed.observer is not None
    assert relayed.observer.chunks == relayed.request.written and relayed.observer.ends == [StreamEnd.COMPLETE]
    assert relayed.reported == ["opened", "closed"]


def test_a_full_client_pauses_the_upstream_and_the_idle_timer() -> None:
    relayed = Relayed()
    producer = relayed.request.producer
    assert producer is not None and relayed.request.streaming is True
    producer.pauseProducing()
    assert relayed.upstream.producerState == "paused"
    relayed.clock.advance(IDLE * 10)
    assert relayed.upstream.producerState == "paused" and relayed.cuts == []
    producer.resumeProducing()
    assert relayed.upstream.producerState == "producing"
    relayed.clock.advance(IDLE - 1)
    assert relayed.upstream.producerState == "producing"
    relayed.clock.advance(1)
    assert relayed.upstream.producerState == "stopped"


def test_an_idle_upstream_is_cut_and_reported_as_idle_timeout() -> None:
    relayed = Relayed()
    relayed.clock.advance(IDLE - 1)
    relayed.relay.dataReceived(b"data: late\n\n")  # a chunk restarts the timer
    relayed.clock.advance(IDLE - 1)
    assert relayed.upstream.producerState == "producing"
    relayed.clock.advance(1)
    assert relayed.upstream.producerState == "stopped"
    with capture_logs() as logs:
        relayed.relay.connectionLost(Failure(ConnectionLost()))  # what Twisted delivers after stopProducing
    assert relayed.cuts == ["idle_timeout"]
    assert not relayed.request.finished and relayed.request.producer is None
    assert relayed.reported == ["opened", "error:timeout", "closed"]
    assert relayed.observer is not None and relayed.observer.ends == [StreamEnd.TRUNCATED]
    assert [(e["event"], e["reason"], e["bytes_out"]) for e in logs] == [
        ("upstream_body_truncated", "idle_timeout", len(b"data: late\n\n"))
    ]
    assert relayed.clock.getDelayedCalls() == []


def test_an_upstream_that_fails_mid_body_is_a_reset_cut() -> None:
    relayed = Relayed()
    relayed.relay.dataReceived(b"partial")
    relayed.relay.connectionLost(Failure(ConnectionLost("connection reset by peer")))
    [cut] = relayed.cuts
    assert "connection reset by peer" in cut
    assert relayed.reported == ["opened", "error:reset", "closed"]
    assert not relayed.request.finished


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """Connects a factory's protocol to a `StringTransport`; keeps it to deliver its loss later."""

    def __init__(self) -> None:
        self.connected: IProtocol | None = None

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        protocol = protocolFactory.buildProtocol(None)
        assert protocol is not None
        protocol.makeConnection(StringTransport())
        self.connected = protocol
        return succeed(protocol)


class ConnectionDelimitedBody(Protocol):
    """Stands in for Twisted's HTTP client: it ends a body without a length with `PotentialDataLoss`."""

    relay: ResponseRelay

    def connectionLost(self, reason: Failure = Failure(ConnectionDone())) -> None:
        self.relay.connectionLost(Failure(PotentialDataLoss()))


@pytest.mark.parametrize(
    ("how", "finished", "cuts"),
    [(ConnectionDone(), True, []), (ConnectionLost("reset"), False, ["reset"])],
)
def test_a_connection_delimited_body_is_whole_only_if_the_connection_closed_cleanly(
    how: Exception, finished: bool, cuts: list[str]
) -> None:
    relayed = Relayed()
    endpoint = MemoryEndpoint()
    CloseReasonEndpoint(endpoint).connect(Factory.forProtocol(ConnectionDelimitedBody)).addCallback(
        lambda body: setattr(body, "relay", relayed.relay)
    )
    relayed.relay.dataReceived(b'{"ok": true}')
    assert endpoint.connected is not None
    endpoint.connected.connectionLost(Failure(how))
    assert relayed.request.finished is finished
    assert relayed.cuts == cuts
    assert relayed.observer is not None
    assert relayed.observer.ends == [StreamEnd.COMPLETE if finished else StreamEnd.TRUNCATED]


def test_a_client_that_leaves_stops_the_upstream_and_nothing_more_is_written() -> None:
    relayed = Relayed()
    relayed.relay.dataReceived(b"first")
    relayed.relay.client_disconnected()
    assert relayed.upstream.producerState == "stopped"
    relayed.relay.dataReceived(b"too late")
    relayed.relay.connectionLost(Failure(ConnectionLost()))
    assert relayed.request.written == [b"first"] and not relayed.request.finished
    assert relayed.cuts == []
    assert relayed.reported == ["opened", "closed"]
    assert relayed.observer is not None and relayed.observer.ends == [StreamEnd.CLIENT_DISCONNECTED]


def test_the_client_channel_stopping_its_producer_stops_the_upstream() -> None:
    relayed = Relayed()
    assert relayed.request.producer is not None
    relayed.request.producer.stopProducing()
    assert relayed.upstream.producerState == "stopped"


@pytest.mark.parametrize("where", ["chunk", "finished"])
def test_an_observer_that_raises_never_reaches_the_byte_path(where: str) -> None:
    observer = Observer(raise_in=where)
    relayed = Relayed(observer=observer)
    with capture_logs() as logs:
        relayed.relay.dataReceived(b"one")
        relayed.relay.dataReceived(b"two")
        relayed.relay.connectionLost(Failure(ResponseDone()))
    assert relayed.request.written == [b"one", b"two"] and relayed.request.finished
    assert relayed.reported == ["opened", "closed"]
    assert [(e["event"], e["where"]) for e in logs] == [("body_observer_failed", where)]
    assert observer.ends == []
    assert observer.chunks == ([] if where == "chunk" else [b"one", b"two"])


def test_the_metrics_are_a_relay_report() -> None:
    metrics = ProxyMetrics(Clock(), process_collectors=False)
    relayed = Relayed(reports=metrics)
    text = generate_latest(metrics.registry).decode()
    assert "headroom_active_streams 1.0" in text
    relayed.clock.advance(IDLE)
    relayed.relay.connectionLost(Failure(ConnectionLost()))
    text = generate_latest(metrics.registry).decode()
    assert "headroom_active_streams 0.0" in text
    assert 'headroom_upstream_errors_total{kind="timeout"} 1.0' in text
