"""The upstream connection pool: idle connections age out early, and a stale one costs no request.

An upstream closes an idle keep-alive connection on its own schedule (a
load balancer after 60 s, Node after 5 s). A request sent on such a
connection just as it closes fails with no response, and the client would
get a 502 for a race it cannot see. Two defences:

- a connection idle longer than ``keepalive`` seconds (below common upstream
  idle timeouts) is closed rather than reused, so the race rarely happens;
- a request whose sending failed on a *reused* connection (the upstream had
  closed it) goes out once more on a fresh one, whatever its method: the
  upstream got at most part of it and cannot have acted on it.

A POST that was sent whole and then met a close is not sent again: the
upstream may have read it and acted on it (an LLM call billed, a tool
run), and from the proxy's side that looks exactly like a stale
connection. GET and HEAD, and requests that provably never left, are
retried by `retry.request_with_one_retry`.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.web._newclient import HTTP11ClientProtocol, Request
from twisted.web.client import HTTPConnectionPool, RequestTransmissionFailed
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
    """A connection taken from the pool: a request it failed to send is sent again on a fresh one."""

    def __init__(self, connection: HTTP11ClientProtocol, fresh: Callable[[], Deferred[HTTP11ClientProtocol]]) -> None:
        self._connection = connection
        self._fresh = fresh

    def request(self, request: Request) -> Deferred[IResponse]:
        attempt: Deferred[IResponse] = self._connection.request(request)

        def send(connection: HTTP11ClientProtocol) -> Deferred[IResponse]:
            sent: Deferred[IResponse] = connection.request(request)
            return sent

        def again(failure: Failure) -> Deferred[IResponse] | Failure:
            if not lost_while_sending(request, failure):
                return failure
            return self._fresh().addCallback(send)

        attempt.addErrback(again)
        return attempt


def lost_while_sending(request: Request, failure: Failure) -> bool:
    """The connection closed while the request was being written, not by a cancel, and the body can be
    sent again.

    GET and HEAD, and a request that never left (`RequestNotSent`), are left
    to `retry.request_with_one_retry`, so that no request goes out more
    than twice.
    """
    error = failure.value
    if request.method in IDEMPOTENT or not isinstance(error, RequestTransmissionFailed):
        return False
    if request.bodyProducer is not None and not getattr(request.bodyProducer, "restartable", False):
        return False
    reasons = getattr(error, "reasons", [])
    return all(reason.check(ConnectionDone, ConnectionLost) and not reason.check(CancelledError) for reason in reasons)
