"""One client connection to a `ProxySite`, in memory: no socket, no reactor run.

Bytes go in through the channel's `dataReceived`; what the proxy writes
back collects on a `StringTransport`. That transport only records a
`loseConnection` or `abortConnection`, so a test delivers the close itself
(`close_as_asked`) once it has checked the proxy asked for it.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.server import Site

CLIENT = IPv4Address("TCP", "127.0.0.1", 50000)


class SiteClient:
    """A connected client of `site`, as the proxy sees it."""

    def __init__(self, site: Site, peer: IPv4Address = CLIENT) -> None:
        self.transport = StringTransport(peerAddress=peer)
        self.channel: HTTPChannel = site.buildProtocol(peer)
        self.channel.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    @property
    def closing(self) -> bool:
        """The proxy asked to close (StringTransport only records it)."""
        return bool(self.transport.disconnecting)

    def close_as_asked(self) -> None:
        """Deliver the clean close the proxy asked for."""
        self.channel.connectionLost(Failure(ConnectionDone()))

    def leave(self, reason: Failure) -> None:
        """The client goes away on its own."""
        self.channel.connectionLost(reason)
