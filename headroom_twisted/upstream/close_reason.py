"""How an upstream connection ended: closed cleanly or cut by an error.

A response body with neither Content-Length nor chunking ends when the
upstream closes the connection. Twisted's client reports that end as
`PotentialDataLoss` whether the upstream closed cleanly (FIN) or the
connection was reset mid-body, so a cut body would look whole. Each
upstream connection is wrapped so that, while Twisted delivers the loss of
the connection, `closed_cleanly()` can say which it was.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import cast

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.internet.protocol import connectionDone
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from zope.interface import implementer

_losing: ContextVar[Failure | None] = ContextVar("upstream_connection_lost_with", default=None)


def closed_cleanly() -> bool:
    """False while the loss of an upstream connection that ended in an error is being delivered.

    Read it in `connectionLost` of a response's body protocol, which Twisted
    calls from within the connection's own `connectionLost`.
    """
    reason = _losing.get()
    return reason is None or reason.check(ConnectionDone) is not None


class _ReportsLoss(ProtocolWrapper):
    def connectionLost(self, reason: Failure = connectionDone) -> None:
        token = _losing.set(reason)
        try:
            super().connectionLost(reason)
        finally:
            _losing.reset(token)


class _ReportsLossFactory(WrappingFactory):
    protocol = _ReportsLoss
    noisy = False


@implementer(IStreamClientEndpoint)
class CloseReasonEndpoint:
    """An endpoint whose connections make `closed_cleanly()` true to how they ended."""

    def __init__(self, endpoint: IStreamClientEndpoint) -> None:
        self._endpoint = endpoint

    def __repr__(self) -> str:
        """Twisted names the endpoint when the pool's factory starts and stops: say which."""
        return repr(self._endpoint)

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        return self._endpoint.connect(_ReportsLossFactory(protocolFactory)).addCallback(_unwrap)


def _unwrap(wrapper: IProtocol) -> IProtocol:
    """The pool wants the HTTP protocol itself, not the `_ReportsLoss` wrapper our factory built."""
    return cast(_ReportsLoss, wrapper).wrappedProtocol
