"""The root service: ordered start, graceful drain on stop.

Start: listening sockets (in `privilegedStartService`, so they bind before
twistd drops privileges and a busy port stops twistd with a clear error),
then the compression thread pool, then warm-up of the tokenizer and the
content detector on the pool; /readyz turns 200 when that is done, and
systemd is told READY=1 once the sockets listen.

Stop (SIGTERM): stop accepting at once and end keep-alive (idle connections
close, busy ones say `Connection: close` and close after their response);
give in-flight requests (streams too) up to --drain-timeout seconds, abort
what is left at that deadline, then stop the pools. The pools stop on a
thread of their own, never on the reactor (a pool thread may be deep in a
compression job), and the stop waits for them only until the same deadline.

The root is a MultiService of three children, started in this order: the
`Listeners`, the `DrainService` and the compression service. MultiService
would stop them all at once; the root stops them in the phases above.
"""

from __future__ import annotations

import resource

import structlog
from structlog.typing import FilteringBoundLogger
from twisted.application.service import IServiceCollection, MultiService, Service
from twisted.internet.defer import Deferred, TimeoutError, gatherResults, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IListeningPort, IReactorTime
from twisted.logger import ILogObserver
from twisted.python.components import Componentized
from twisted.python.failure import Failure
from twisted.web.client import HTTPConnectionPool

from headroom_twisted import systemd
from headroom_twisted.compression_service import ICompressionService
from headroom_twisted.config import Config
from headroom_twisted.listening import Listeners
from headroom_twisted.logging import StructlogObserver
from headroom_twisted.web.proxy import InFlight
from headroom_twisted.web.request import ProxySite


class DrainService(Service):
    """Ends the client side of a stopping proxy: keep-alive at once, in-flight requests by the deadline."""

    def __init__(self, site: ProxySite, in_flight: InFlight, clock: IReactorTime, timeout: float) -> None:
        self.in_flight = in_flight
        self._site = site
        self._clock = clock
        self._timeout = timeout
        self._log: FilteringBoundLogger = structlog.get_logger("headroom.service")

    def stopService(self) -> Deferred[None]:
        """Fires when nothing is in flight: at once, when the last request ends, or at the deadline."""
        super().stopService()
        self._site.start_draining()
        idle = self.in_flight.when_idle()
        if idle.called:
            return idle
        self._log.info("draining", in_flight=len(self.in_flight), timeout_s=self._timeout)
        idle.addTimeout(self._timeout, self._clock)
        idle.addErrback(self._timed_out)
        return idle

    def _timed_out(self, failure: Failure) -> None:
        failure.trap(TimeoutError)
        self._log.warning("drain_timeout", aborting=len(self.in_flight), timeout_s=self._timeout)
        self.in_flight.abort_all()


def readiness(compression: ICompressionService, listeners: Listeners) -> dict[str, bool]:
    """The `/readyz` checks: the pool and the workers' models loaded, and the sockets listening."""
    return {**compression.readiness(), "listening": bool(listeners.ports)}


class HeadroomService(MultiService):
    """Listens, drains and stops the pools in order; reports readiness and what is in flight."""

    def __init__(
        self,
        config: Config,
        clock: IReactorTime,
        *,
        listeners: Listeners,
        drain: DrainService,
        compression: ICompressionService,
        upstream_pool: HTTPConnectionPool,
    ) -> None:
        super().__init__()
        self._config = config
        self._clock = clock
        self._listeners = listeners
        self._drain = drain
        self._compression = compression
        self._upstream_pool = upstream_pool
        self._privileged_started = False
        self._log: FilteringBoundLogger = structlog.get_logger("headroom.service")
        for child in (listeners, drain, compression):
            self.addService(child)

    @property
    def ports(self) -> list[IListeningPort]:
        return self._listeners.ports

    @property
    def in_flight(self) -> InFlight:
        return self._drain.in_flight

    def readiness(self) -> dict[str, bool]:
        return readiness(self._compression, self._listeners)

    def setServiceParent(self, parent: IServiceCollection) -> None:
        """Under twistd, the parent is the Application: give it our JSON log observer.

        twistd reads the Application's ILogObserver component when it starts
        logging, which puts Twisted's own events on the same JSON stream.
        """
        if isinstance(parent, Componentized) and parent.getComponent(ILogObserver) is None:
            parent.setComponent(ILogObserver, StructlogObserver())
        super().setServiceParent(parent)

    def privilegedStartService(self) -> None:
        raise_open_file_limit(self._log)
        super().privilegedStartService()
        self._privileged_started = True
        config = self._config
        self._log.info(
            "listening",
            endpoints=[str(port.getHost()) for port in self.ports],
            openai_upstream=config.openai_upstream.origin + config.openai_upstream.base_path,
            anthropic_upstream=config.anthropic_upstream.origin + config.anthropic_upstream.base_path,
            compression=config.compression,
        )

    def startService(self) -> None:
        if not self._privileged_started:
            self.privilegedStartService()
        super().startService()
        systemd.notify(b"READY=1\nSTATUS=listening")

    def stopService(self) -> Deferred[None]:
        systemd.notify(b"STOPPING=1")
        Service.stopService(self)  # not MultiService's: that stops every child at once
        deadline = self._clock.seconds() + self._config.drain_timeout
        closing = self._listeners.stopService()
        stopped = self._drain.stopService()
        stopped.addCallback(lambda _: self._stop_pools(deadline))
        stopped.addCallback(lambda _: closing)
        return stopped

    def _stop_pools(self, deadline: float) -> Deferred[None]:
        """Stop the compression service and the upstream pool; wait for them no later than `deadline`.

        A job still running past the deadline is abandoned: its client was
        already cut, and the pool's threads are daemons, so they do not hold
        the process either.
        """
        stopping = gatherResults(
            [maybeDeferred(self._compression.stopService), self._upstream_pool.closeCachedConnections()],
            consumeErrors=True,
        )
        waited: Deferred[None] = Deferred()
        deadline_call = self._clock.callLater(max(0.0, deadline - self._clock.seconds()), waited.callback, None)
        stopping.addBoth(self._pools_stopped, deadline_call)
        waited.addCallback(self._pools_waited, stopping)
        return waited

    def _pools_waited(self, _: None, stopping: Deferred[list[object]]) -> None:
        if not stopping.called:
            self._log.warning("pools_still_stopping", timeout_s=self._config.drain_timeout)

    def _pools_stopped(self, result: object, deadline_call: IDelayedCall) -> None:
        if isinstance(result, Failure):
            self._log.error("pools_stop_failed", error=result.getErrorMessage())
        if deadline_call.active():
            deadline_call.reset(0)


def raise_open_file_limit(log: FilteringBoundLogger) -> None:
    """Raise the soft RLIMIT_NOFILE to the hard limit.

    Every client costs a descriptor and every relayed request a second one.
    Run by hand, a shell's soft limit of 1024 stops the daemon accepting (and
    reaching upstreams) at about a thousand idle clients; the hard limit is
    what the operator allows. Under systemd the unit's LimitNOFILE sets both.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        log.warning("open_file_limit_unchanged", soft=soft, hard=hard, error=str(error))
        return
    log.info("open_file_limit_raised", soft=soft, now=hard)
