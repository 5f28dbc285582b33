"""The upstream connection pool: idle connections age out early, and a stale one costs no request.

An upstream closes an idle keep-alive connection on its own schedule (a
load balancer after 60 s, Node after 5 s). A request sent on such a
connection just as it closes fails with no response, and the client would
get a 502 for a race it cannot see. Two defences:

- a connection idle longer than ``keepalive`` seconds (below common upstream
  idle timeouts) is closed rather than reused;
- a request on a *reused* connection that closed before any response byte
  arrived goes out once more on a fresh connection, whatever its method:
  the upstream dropped a connection it had already given up on, so the
  request did not reach the application. On a fresh connection the same
  failure is the upstream's answer and is not retried, and once any
  response byte has arrived nothing is.

GET and HEAD on any connection are retried by `retry.request_with_one_retry`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web._newclient import HTTP11ClientProtocol, Request
from twisted.web.client import HTTPConnectionPool, RequestNotSent, RequestTransmissionFailed, ResponseNeverReceived
from twisted.web.iweb import IResponse

from headroom_twisted.upstream.retry import IDEMPOTENT


class UpstreamPool(HTTPConnectionPool):
    """Twisted's pool, with the two defences above; Twisted's own retry (GET on a cached connection) is off."""

    retryAutomatically = False

    def __init__(self, reactor: IReactorTime, keepalive: int, max_per_host: int) -> None:
        super().__init__(reactor, persistent=True)
        self.cachedConnectionTimeout = keepalive
        self.maxPersistentPerHost = max_per_host

    def getConnection(self, key: Hashable, endpoint: IStreamClientEndpoint) -> Deferred[HTTP11ClientProtocol]:
        """A cached connection comes at once (a new one only once connected): only it may be stale.

        Like Twisted's own retrying wrapper, the wrapper stands in for the
        protocol: the Agent only calls its ``request``.
        """
        offered = super().getConnection(key, endpoint)
        if not offered.called:
            return offered

        def wrap(connection: HTTP11ClientProtocol) -> HTTP11ClientProtocol:
            fresh = lambda: self._newConnection(key, endpoint)  # noqa: E731
            return cast(HTTP11ClientProtocol, ReusedConnection(connection, fresh))

        return offered.addCallback(wrap)


class ReusedConnection:
    """A connection taken from the pool: a request it loses before any response byte is sent again, fresh."""

    def __init__(self, connection: HTTP11ClientProtocol, fresh: Callable[[], Deferred[HTTP11ClientProtocol]]) -> None:
        self._connection = connection
        self._fresh = fresh

    def request(self, request: Request) -> Deferred[IResponse]:
        attempt: Deferred[IResponse] = self._connection.request(request)

        def send(connection: HTTP11ClientProtocol) -> Deferred[IResponse]:
            sent: Deferred[IResponse] = connection.request(request)
            return sent

        def again(failure: Failure) -> Deferred[IResponse] | Failure:
            if not lost_before_any_response(request, failure):
                return failure
            return self._fresh().addCallback(send)

        attempt.addErrback(again)
        return attempt


def lost_before_any_response(request: Request, failure: Failure) -> bool:
    """The connection closed before any response byte, not by a cancel, and the body can be sent again.

    GET and HEAD are left to `retry.request_with_one_retry`, so that no
    request goes out more than twice.
    """
    error = failure.value
    lost = RequestNotSent | RequestTransmissionFailed | ResponseNeverReceived
    if request.method in IDEMPOTENT or not isinstance(error, lost):
        return False
    if request.bodyProducer is not None and not getattr(request.bodyProducer, "restartable", False):
        return False
    reasons = getattr(error, "reasons", [])
    return all(reason.check(ConnectionDone, ConnectionLost) and not reason.check(CancelledError) for reason in reasons)
