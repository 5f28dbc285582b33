"""The proxy resource: one `ProxyExchange` per request, from client body to upstream and back.

The exchange owns the lifecycle of a request: route it, let the body stage
(compression) prepare the body, send it upstream, relay the response, and
log one `request_finished` event with what the client really got. It never
sends a status to the client before it has the upstream's, and an upstream
that fails before the first body byte still gets the client a 502 or 504.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Protocol, cast

import structlog
from structlog.typing import FilteringBoundLogger
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.error import TimeoutError as ConnectTimeoutError
from twisted.internet.interfaces import IReactorTime, ITCPTransport
from twisted.python.failure import Failure
from twisted.web.client import ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IAgent, IResponse
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from headroom_twisted.config import Config
from headroom_twisted.endpoints import Provider, path_of, provider_for_path
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.agent import BytesProducer
from headroom_twisted.upstream.headers import client_request_id, client_response_headers, upstream_request_headers
from headroom_twisted.upstream.observer import BodyObserver
from headroom_twisted.upstream.relay import DiscardBody, ResponseRelay
from headroom_twisted.upstream.retry import request_with_one_retry
from headroom_twisted.upstream.routing import BadRequestTarget, Route, route
from headroom_twisted.web.errors import proxy_error_body
from headroom_twisted.web.request import ProxyRequest

_METHODS_WITH_BODY = frozenset({b"POST", b"PUT", b"PATCH"})
# Responses that have no body; Twisted's client reports their length as 0,
# which is no length the upstream sent.
_NO_BODY_STATUSES = frozenset({204, 304})


class BodyStage(Protocol):
    """Takes the client's body and gives the body to forward (the compression seam)."""

    def __call__(
        self, method: bytes, route: Route, headers: Headers, body: bytes, log: FilteringBoundLogger
    ) -> Deferred[bytes]: ...


ObserverFactory = Callable[[Route, Headers, FilteringBoundLogger], "BodyObserver | None"]


def forward_unchanged(
    method: bytes, route: Route, headers: Headers, body: bytes, log: FilteringBoundLogger
) -> Deferred[bytes]:
    return succeed(body)


def no_observer(route: Route, response_headers: Headers, log: FilteringBoundLogger) -> BodyObserver | None:
    return None


class UpstreamTimeout(Exception):
    """No response headers from the upstream within --idle-timeout."""


class InFlight:
    """The exchanges in progress, so a stopping service can wait for them."""

    def __init__(self) -> None:
        self._exchanges: set[ProxyExchange] = set()
        self._idle_waiters: list[Deferred[None]] = []

    def __len__(self) -> int:
        return len(self._exchanges)

    def add(self, exchange: ProxyExchange) -> None:
        self._exchanges.add(exchange)

    def discard(self, exchange: ProxyExchange) -> None:
        self._exchanges.discard(exchange)
        if not self._exchanges:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_idle(self) -> Deferred[None]:
        if not self._exchanges:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        return waiter

    def abort_all(self) -> None:
        for exchange in list(self._exchanges):
            exchange.abort()


class ProxyResource(Resource):
    """Every path that is not local lands here."""

    isLeaf = True

    def __init__(
        self,
        *,
        config: Config,
        agent: IAgent,
        clock: IReactorTime,
        in_flight: InFlight,
        metrics: ProxyMetrics,
        body_stage: BodyStage = forward_unchanged,
        observer_for: ObserverFactory = no_observer,
    ) -> None:
        super().__init__()
        self.config = config
        self.agent = agent
        self.clock = clock
        self.in_flight = in_flight
        self.metrics = metrics
        self.body_stage = body_stage
        self.observer_for = observer_for
        self.log: FilteringBoundLogger = structlog.get_logger("headroom.proxy")

    def render(self, request: ProxyRequest) -> int:
        ProxyExchange(self, request).start()
        return NOT_DONE_YET


class ProxyExchange:
    """One client request relayed to one upstream request."""

    def __init__(self, resource: ProxyResource, request: ProxyRequest) -> None:
        self._resource = resource
        self._request = request
        self._config = resource.config
        self._client_gone = False
        self._cut_by_proxy: str | None = None  # "truncated" or "aborted" when the proxy closed the client
        self._upstream_call: Deferred[IResponse] | None = None
        self._relay: ResponseRelay | None = None
        self._error_bytes = 0
        self._route: Route | None = None
        self._stage: Deferred[bytes] | None = None
        request_id = client_request_id(request.requestHeaders) or uuid.uuid4().hex.encode()
        self._request_id = request_id
        self._log = resource.log.bind(request_id=request_id.decode("ascii"))

    def start(self) -> None:
        request = self._request
        self._resource.in_flight.add(self)
        request.notifyFinish().addBoth(self._request_done)
        try:
            self._route = route(request.uri, self._config)
        except BadRequestTarget as refused:
            provider = provider_for_path(path_of(request.uri))
            self._respond_error(provider, 400, str(refused), "bad_request_target")
            return
        body = request.body()
        stage = self._resource.body_stage(request.method, self._route, request.requestHeaders, body, self._log)
        self._stage = stage
        stage.addCallback(self._send_upstream)
        stage.addErrback(self._stage_cancelled)
        stage.addErrback(self._internal_error)

    def abort(self) -> None:
        """Drop the client connection now (the drain deadline has passed)."""
        self._cut_by_proxy = "aborted"
        self._abort_client()

    def _stage_cancelled(self, failure: Failure) -> None:
        """The client left while its body was in the stage: nothing to send, nothing went wrong."""
        failure.trap(CancelledError)

    def _send_upstream(self, body: bytes) -> None:
        self._stage = None
        if self._client_gone:
            return
        assert self._route is not None
        request = self._request
        peer = request.getClientAddress()
        headers = upstream_request_headers(
            request.requestHeaders,
            request_id=self._request_id,
            client_ip=getattr(peer, "host", "unknown").encode("ascii", "replace"),
            proto=b"https" if request.isSecure() else b"http",
        )
        has_body = bool(body) or request.method in _METHODS_WITH_BODY
        call = request_with_one_retry(
            self._resource.agent,
            request.method,
            self._route.url,
            headers,
            BytesProducer(body) if has_body else None,
            self._log,
        )
        call.addTimeout(self._config.idle_timeout, self._resource.clock, onTimeoutCancel=self._headers_timed_out)
        self._upstream_call = call
        call.addCallbacks(self._got_response, self._upstream_failed)
        call.addErrback(self._internal_error)

    def _headers_timed_out(self, result: object, timeout: float) -> Failure:
        return Failure(UpstreamTimeout(f"no response from the upstream within {timeout:g} s"))

    def _got_response(self, response: IResponse) -> None:
        self._upstream_call = None
        if self._client_gone:
            response.deliverBody(DiscardBody())
            return
        assert self._route is not None
        request = self._request
        request.setResponseCode(response.code, response.phrase)
        request.responseHeaders = client_response_headers(response.headers, request_id=self._request_id)
        if self._keeps_upstream_length(response):
            # Twisted's client keeps Content-Length out of response.headers; restoring
            # it keeps the client's framing as the upstream sent it (no re-chunking).
            request.setHeader(b"content-length", b"%d" % response.length)
        observer = self._resource.observer_for(self._route, response.headers, self._log)
        self._relay = ResponseRelay(
            request,
            clock=self._resource.clock,
            idle_timeout=self._config.idle_timeout,
            observer=observer,
            log=self._log,
            on_cut=self._upstream_cut,
            reports=self._resource.metrics,
        )
        response.deliverBody(self._relay)

    def _keeps_upstream_length(self, response: IResponse) -> bool:
        """Whether `response.length` is the length the upstream announced.

        For HEAD it is 0 while the upstream's Content-Length (the GET body's
        size) is already among the headers; 204 and 304 carry no length.
        """
        return (
            response.length is not UNKNOWN_LENGTH
            and self._request.method != b"HEAD"
            and response.code not in _NO_BODY_STATUSES
        )

    def _upstream_failed(self, failure: Failure) -> None:
        self._upstream_call = None
        if self._client_gone:
            return
        assert self._route is not None
        if failure.check(UpstreamTimeout, ConnectTimeoutError):
            status, code, kind = 504, "upstream_timeout", "timeout"
            message = f"upstream {self._route.upstream.host} did not answer in time: {failure.getErrorMessage()}"
        else:
            status, code = 502, "upstream_unreachable"
            # Connected, then dropped before a response (ResponseNeverReceived/Failed): a reset.
            kind = "reset" if failure.check(ResponseNeverReceived, ResponseFailed) else "connect"
            message = f"upstream {self._route.upstream.host} unreachable: {_describe(failure)}"
        self._log.warning("upstream_error", kind=kind, status=status, error=_describe(failure))
        self._resource.metrics.upstream_error(kind)
        self._respond_error(self._route.provider, status, message, code)

    def _upstream_cut(self, cause: str) -> None:
        """The upstream body ended early: an error if the client has seen nothing, else a visible cut."""
        assert self._route is not None
        request = self._request
        if not request.startedWriting:
            self._relay = None
            if cause == "idle_timeout":
                status, code = 504, "upstream_timeout"
                message = f"upstream {self._route.upstream.host} sent headers, then nothing within the idle timeout"
            else:
                status, code = 502, "upstream_unreachable"
                message = f"upstream {self._route.upstream.host} dropped the connection before the body"
            self._respond_error(self._route.provider, status, message, code)
            return
        self._cut_by_proxy = "truncated"
        if request.chunked or request.responseHeaders.hasHeader(b"content-length"):
            request.loseConnection()  # a short body or a missing last chunk tells the client
        else:
            self._abort_client()  # a connection-delimited body: only a reset tells the client

    def _internal_error(self, failure: Failure) -> None:
        self._log.error("proxy_internal_error", error=_describe(failure), exc_info=failure.value)
        if self._client_gone or self._request.startedWriting or self._relay is not None:
            self._abort_client()
            return
        provider = self._route.provider if self._route else Provider.OPENAI
        self._respond_error(provider, 502, "the proxy failed to relay this request", "proxy_internal_error")

    def _respond_error(self, provider: Provider, status: int, message: str, code: str) -> None:
        request = self._request
        body = proxy_error_body(provider, message, code)
        request.setResponseCode(status)
        request.responseHeaders = Headers(
            {
                b"content-type": [b"application/json"],
                b"content-length": [str(len(body)).encode("ascii")],
                b"x-request-id": [self._request_id],
            }
        )
        self._error_bytes = len(body)
        request.write(body)
        request.finish()

    def _abort_client(self) -> None:
        transport = self._request.channel.transport if self._request.channel is not None else None
        if transport is not None:
            # Every listener (tcp:, ssl:, unix:, systemd:) gives the channel a
            # stream connection, and all of Twisted's provide ITCPTransport; the
            # memory transports of the tests (StringTransport) declare only
            # ITransport but abort the same way, so this is a cast, not a check.
            cast(ITCPTransport, transport).abortConnection()

    def _request_done(self, result: object) -> None:
        """Fires when the response is finished or the client connection is lost."""
        if isinstance(result, Failure):
            self._client_gone = True
            if self._stage is not None:
                self._stage.cancel()
            if self._upstream_call is not None:
                self._upstream_call.cancel()
            if self._relay is not None:
                self._relay.client_disconnected()
        self._resource.in_flight.discard(self)
        self._log_finished()

    def _log_finished(self) -> None:
        request = self._request
        route_ = self._route
        seconds = time.monotonic() - request.started
        # The status the client received: none at all if it left (or was cut) before the first byte.
        status = request.code if request.startedWriting else None
        if self._cut_by_proxy is not None:
            outcome = self._cut_by_proxy
        else:
            outcome = "client_disconnected" if self._client_gone else "complete"
        self._resource.metrics.request_finished(
            route_.provider.value if route_ else None,
            route_.label if route_ else None,
            request.method,
            status,
            seconds,
        )
        self._log.info(
            "request_finished",
            method=request.method.decode("ascii", "replace"),
            path=(route_.path if route_ else path_of(request.uri)).decode("utf-8", "replace"),
            status=status,
            outcome=outcome,
            upstream=route_.upstream.host if route_ else None,
            provider=route_.provider.value if route_ else None,
            bytes_in=request.body_bytes_received,
            bytes_out=self._relay.bytes_out if self._relay else self._error_bytes,
            client_disconnected=outcome == "client_disconnected",
            duration_ms=round(seconds * 1000, 3),
        )


def _describe(failure: Failure) -> str:
    reasons = getattr(failure.value, "reasons", None)
    if reasons:
        return "; ".join(reason.getErrorMessage() for reason in reasons)
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"
