"""The listening endpoints: one `strports.service` per --listen description.

Each listens in `privilegedStartService`, so under twistd a port below 1024
is bound before privileges are dropped, and a port that cannot be had (busy,
or a socket-activated description with no inherited socket) stops startup
with one clear line and a non-zero exit, not a traceback or a daemon that
runs without it.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorCore, IStreamServerEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer


class Listeners(MultiService):
    """The --listen endpoints, as children; knows the ports they have open."""

    def __init__(self, reactor: IReactorCore) -> None:
        super().__init__()
        self._reactor = reactor
        self._ports: list[IListeningPort] = []

    def listen(self, description: str, factory: IProtocolFactory) -> None:
        """Serve `factory` on `description` once started; a description no endpoint can be made of fails now."""
        try:
            service = strports.service(description, factory, reactor=self._reactor)
        except Exception as error:  # e.g. a systemd: description with no inherited socket
            raise SystemExit(f"headroom: cannot listen on {description!r}: {error!r}") from None
        # strports makes listening failures raise from privilegedStartService; this says which endpoint failed.
        service.endpoint = _StartupEndpoint(description, service.endpoint, self._ports.append)
        self.addService(service)

    @property
    def ports(self) -> list[IListeningPort]:
        """The ports accepting connections: none before start, nor once stopping."""
        return list(self._ports)

    def stopService(self) -> Deferred[None]:
        """Stop accepting on every port at once; fires when they are all closed."""
        self._ports.clear()
        return maybeDeferred(super().stopService).addCallback(lambda _: None)


@implementer(IStreamServerEndpoint)
class _StartupEndpoint:
    """An endpoint whose failure to listen ends startup with a line naming it, and that reports its port."""

    def __init__(
        self, description: str, endpoint: IStreamServerEndpoint, listening: Callable[[IListeningPort], None]
    ) -> None:
        self._description = description
        self._endpoint = endpoint
        self._listening = listening

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        listening: Deferred[IListeningPort] = maybeDeferred(self._endpoint.listen, protocolFactory)
        return listening.addCallbacks(self._listened, self._cannot_listen)

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self._listening(port)
        return port

    def _cannot_listen(self, failure: Failure) -> IListeningPort:
        raise SystemExit(f"headroom: cannot listen on {self._description!r}: {failure.getErrorMessage()}")
