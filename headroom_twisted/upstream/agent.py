"""The upstream HTTP client: one Agent over a keep-alive connection pool.

treq's defaults suit clients, not proxies (they buffer, follow redirects and
add gzip), so the proxy uses a plain Agent: certificate verification from
the platform trust store, no redirects, no content decoding.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IConsumer
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool
from twisted.web.iweb import IAgent, IBodyProducer
from zope.interface import implementer

_PERSISTENT_PER_HOST = 128
_CACHED_CONNECTION_TIMEOUT = 110.0


def make_agent(reactor: Any, connect_timeout: float) -> tuple[IAgent, HTTPConnectionPool]:
    """An Agent with a persistent pool; the pool is returned so a service can close it."""
    pool = HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = _PERSISTENT_PER_HOST
    pool.cachedConnectionTimeout = _CACHED_CONNECTION_TIMEOUT
    pool.retryAutomatically = False
    agent = Agent(
        reactor,
        contextFactory=BrowserLikePolicyForHTTPS(),
        connectTimeout=connect_timeout,
        pool=pool,
    )
    return agent, pool


@implementer(IBodyProducer)
class BytesProducer:
    """A request body that is already in memory, written in one go.

    The body was read whole (it may have been compressed), so a cooperative
    chunked producer would only add scheduling latency.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: IConsumer) -> Deferred[None]:
        consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        """Nothing to pause: the whole body was handed over at once."""

    def resumeProducing(self) -> None:
        """Nothing to resume."""

    def stopProducing(self) -> None:
        """Nothing to stop."""

