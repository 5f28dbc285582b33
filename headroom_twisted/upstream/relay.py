"""The body protocol that streams an upstream response to the client.

Each chunk is written to the client as it arrives, never buffered whole.
Backpressure runs through `UpstreamReadControl`: when the client's socket
buffer fills, Twisted pauses it, which pauses reading from the upstream, so
a slow client holds at most a socket buffer's worth of the response. A copy
of each chunk goes to an optional `BodyObserver` (the SSE telemetry) after
the client write, so the observer can never delay or alter the bytes.

A body the upstream does not finish (idle timeout, reset, a connection
closed by an error before a connection-delimited body was whole) is never
finished towards the client: the relay hands the cut to `on_cut`, which
decides what the client sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol, cast

from structlog.typing import FilteringBoundLogger
from twisted.internet import protocol
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime, ITransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.server import Request
from zope.interface import implementer

from headroom_twisted.upstream.close_reason import closed_cleanly
from headroom_twisted.upstream.observer import BodyObserver, StreamEnd

UpstreamCut = Literal["timeout", "reset"]
"""How `RelayReports.upstream_error` names a body the upstream did not finish: the idle
timer ran out, or the connection ended early."""


class RelayReports(Protocol):
    """Where the relay reports streams opening and closing and bodies cut short (the metrics)."""

    def stream_opened(self) -> None: ...

    def stream_closed(self) -> None: ...

    def upstream_error(self, kind: UpstreamCut) -> None: ...


def _upstream_producer(transport: ITransport | None) -> IPushProducer | None:
    """A body protocol's transport as what it is: the upstream connection's push producer.

    `IResponse.deliverBody` connects the protocol to a `TransportProxyProducer`,
    which provides `IPushProducer` only, though `Protocol.transport` is
    declared `ITransport`; pausing, resuming and stopping is all a body
    protocol does with it.
    """
    return cast(IPushProducer | None, transport)


@implementer(IPushProducer)
class UpstreamReadControl:
    """Registered on the client request; forwards pause/resume to the upstream socket.

    It also stops the idle timer while paused: a slow client is not an idle upstream.
    """

    def __init__(self, relay: ResponseRelay) -> None:
        self._relay = relay

    def pauseProducing(self) -> None:
        self._relay.pause_upstream()

    def resumeProducing(self) -> None:
        self._relay.resume_upstream()

    def stopProducing(self) -> None:
        self._relay.stop_upstream()


class ResponseRelay(protocol.Protocol):
    """Relays one upstream response body to one client request."""

    def __init__(
        self,
        request: Request,
        *,
        clock: IReactorTime,
        idle_timeout: float,
        observer: BodyObserver | None,
        log: FilteringBoundLogger,
        on_cut: Callable[[str], None],
        reports: RelayReports | None = None,
    ) -> None:
        self._request = request
        self._on_cut = on_cut
        self._clock = clock
        self._idle_timeout = idle_timeout
        self._observer = observer
        self._log = log
        self._reports = reports
        self._idle_call: IDelayedCall | None = None
        self._client_gone = False
        self._timed_out = False
        self._paused = False
        self.bytes_out = 0

    def connectionMade(self) -> None:
        self._request.registerProducer(UpstreamReadControl(self), True)
        self._arm_idle_timer()
        if self._reports is not None:
            self._reports.stream_opened()

    def dataReceived(self, data: bytes) -> None:
        if self._client_gone:
            return
        self._arm_idle_timer()
        self._request.write(data)
        self.bytes_out += len(data)
        self._observe(data)

    def connectionLost(self, reason: Failure = Failure(ResponseDone())) -> None:
        self._cancel_idle_timer()
        if self._client_gone:
            end = StreamEnd.CLIENT_DISCONNECTED
        else:
            self._request.unregisterProducer()
            cause = self._cut_by(reason)
            if cause is None:
                end = StreamEnd.COMPLETE
                self._request.finish()
            else:
                end = StreamEnd.TRUNCATED
                self._log.warning("upstream_body_truncated", reason=cause, bytes_out=self.bytes_out)
                if self._reports is not None:
                    self._reports.upstream_error("timeout" if self._timed_out else "reset")
                self._on_cut(cause)
        if self._reports is not None:
            self._reports.stream_closed()
        self._finish_observer(end)

    def _cut_by(self, reason: Failure) -> str | None:
        """Why the body is incomplete, or None when the upstream finished it."""
        if self._timed_out:
            return "idle_timeout"
        if reason.check(ResponseDone):
            return None
        if reason.check(PotentialDataLoss):
            # A connection-delimited body: whole only if the connection closed cleanly.
            return None if closed_cleanly() else "reset"
        return reason.getErrorMessage()

    def client_disconnected(self) -> None:
        """The client went away: stop reading and drop the upstream connection now."""
        self._client_gone = True
        self.stop_upstream()

    def pause_upstream(self) -> None:
        self._paused = True
        self._cancel_idle_timer()
        upstream = _upstream_producer(self.transport)
        if upstream is not None:
            upstream.pauseProducing()

    def resume_upstream(self) -> None:
        self._paused = False
        self._arm_idle_timer()
        upstream = _upstream_producer(self.transport)
        if upstream is not None:
            upstream.resumeProducing()

    def stop_upstream(self) -> None:
        upstream = _upstream_producer(self.transport)
        if upstream is not None:
            upstream.stopProducing()

    def _arm_idle_timer(self) -> None:
        if self._paused:
            return
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.reset(self._idle_timeout)
        else:
            self._idle_call = self._clock.callLater(self._idle_timeout, self._idle_expired)

    def _cancel_idle_timer(self) -> None:
        if self._idle_call is not None and self._idle_call.active():
            self._idle_call.cancel()
        self._idle_call = None

    def _idle_expired(self) -> None:
        self._idle_call = None
        self._timed_out = True
        self.stop_upstream()

    def _observe(self, data: bytes) -> None:
        if self._observer is None:
            return
        try:
            self._observer.chunk(data)
        except Exception:
            self._drop_observer("chunk")

    def _finish_observer(self, end: StreamEnd) -> None:
        if self._observer is None:
            return
        try:
            self._observer.finished(end)
        except Exception:
            self._drop_observer("finished")

    def _drop_observer(self, where: str) -> None:
        """An observer bug must never reach the byte path: log once, stop observing."""
        self._log.error("body_observer_failed", where=where, exc_info=True)
        self._observer = None


class DiscardBody(protocol.Protocol):
    """For a response nobody will read (the client left): drop the connection at once."""

    def connectionMade(self) -> None:
        upstream = _upstream_producer(self.transport)
        if upstream is not None:
            upstream.stopProducing()
