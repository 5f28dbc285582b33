"""The upstream HTTP client: one Agent over a keep-alive connection pool.

treq's defaults suit clients, not proxies (they buffer, follow redirects and
add gzip), so the proxy uses a plain Agent: certificate verification from
the platform trust store, no redirects, no content decoding.

The Agent's own endpoint factory builds a new endpoint for every request,
IDNA-encoding the host name each time; that was a measurable share of a
small request's cost. The proxy only ever talks to its configured
upstreams, so each origin's endpoint is built once and reused (an endpoint
can connect any number of times; the pool decides when it must). Its
connections report whether they closed cleanly (`close_reason`).
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IConsumer,
    IReactorPluggableNameResolver,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.web.client import URI, Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.error import SchemeNotSupported
from twisted.web.iweb import IAgent, IAgentEndpointFactory, IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

from headroom_twisted.upstream.close_reason import CloseReasonEndpoint
from headroom_twisted.upstream.pool import UpstreamPool

_PERSISTENT_PER_HOST = 128


class IUpstreamReactor(IReactorTCP, IReactorTime, IReactorPluggableNameResolver):
    """The reactor the upstream client needs, for type checking only (as treq's ``_ITreqReactor``).

    `HostnameEndpoint` connects over TCP, times out with delayed calls and
    resolves names; the pool expires idle connections with delayed calls.
    """


def make_agent(reactor: IUpstreamReactor, connect_timeout: float, keepalive: int) -> tuple[IAgent, HTTPConnectionPool]:
    """An Agent with a persistent pool; the pool is returned so a service can close it.

    An idle connection is reused for ``keepalive`` seconds, then closed.
    """
    pool = UpstreamPool(reactor, keepalive, _PERSISTENT_PER_HOST)
    endpoints = OriginEndpoints(reactor, BrowserLikePolicyForHTTPS(), connect_timeout)
    agent = Agent.usingEndpointFactory(reactor, endpoints, pool=pool)
    return agent, pool


@implementer(IAgentEndpointFactory)
class OriginEndpoints:
    """TCP for http, TLS over TCP for https, as Agent does; one endpoint per origin, kept."""

    def __init__(self, reactor: IUpstreamReactor, tls_policy: IPolicyForHTTPS, connect_timeout: float) -> None:
        self._reactor = reactor
        self._tls_policy = tls_policy
        self._connect_timeout = connect_timeout
        self._endpoints: dict[tuple[bytes, bytes, int], IStreamClientEndpoint] = {}

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        origin = (uri.scheme, uri.host, uri.port)
        endpoint = self._endpoints.get(origin)
        if endpoint is None:
            endpoint = self._endpoints[origin] = self._build(uri)
        return endpoint

    def _build(self, uri: URI) -> IStreamClientEndpoint:
        tcp = HostnameEndpoint(self._reactor, uri.host.decode("ascii"), uri.port, timeout=self._connect_timeout)
        if uri.scheme == b"http":
            return CloseReasonEndpoint(tcp)
        if uri.scheme == b"https":
            return CloseReasonEndpoint(wrapClientTLS(self._tls_policy.creatorForNetloc(uri.host, uri.port), tcp))
        raise SchemeNotSupported(f"Unsupported scheme: {uri.scheme!r}")


BODY_SLICE_BYTES = 1024 * 1024
"""How much of a request body is handed to the transport at a time."""


@implementer(IBodyProducer)
class BytesProducer:
    """A request body already in memory, handed to the upstream transport a slice at a time.

    Written in one go, the transport would join the whole body into its own
    send buffer: a second copy of every large upload, held until it is sent.
    In slices paced by the transport's pause and resume, at most about one
    slice is copied at a time; a body up to one slice is still one write.
    Restartable: a retried request produces the body again from the start.
    """

    restartable = True
    """What `pool.lost_while_sending` asks before sending a body again."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)
        self._consumer: IConsumer | None = None
        self._done: Deferred[None] | None = None
        self._offset = 0
        self._paused = False

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        self._consumer, self._offset, self._paused = consumer, 0, False
        self._done = Deferred()
        done = self._done
        self._write()
        return done

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._done is not None:
            self._write()

    def stopProducing(self) -> None:
        """Stop for good; the Deferred from `startProducing` then never fires (IBodyProducer)."""
        self._done = None
        self._consumer = None

    def _write(self) -> None:
        while not self._paused and self._consumer is not None and self._offset < self.length:
            end = self._offset + BODY_SLICE_BYTES
            whole = self._offset == 0 and end >= self.length
            self._consumer.write(self._body if whole else self._body[self._offset : end])
            self._offset = end
        if self._offset >= self.length and self._done is not None:
            # Twisted's consumer holds this producer: keeping it too would make a
            # cycle that holds the whole body until a full garbage collection.
            done, self._done, self._consumer = self._done, None, None
            done.callback(None)
