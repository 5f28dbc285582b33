"""The root service: ordered start, graceful drain on stop.

Start: listening sockets (synchronously, so a busy port stops twistd with a
clear error), then the thread pool, then warm-up of the tokenizer and the
content detector on the pool; /readyz turns 200 when that is done, and
systemd is told READY=1 once the sockets listen.

Stop (SIGTERM): stop accepting at once and end keep-alive (idle connections
close, busy ones say `Connection: close` and close after their response);
give in-flight requests (streams too) up to --drain-timeout seconds, abort
what is left at that deadline, then stop the pools. The pools stop on a
thread of their own, never on the reactor (a pool thread may be deep in a
compression job), and the stop waits for them only until the same deadline.
"""

from __future__ import annotations

import functools
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, TimeoutError, gatherResults, maybeDeferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.internet.threads import deferToThreadPool
from twisted.logger import ILogObserver
from twisted.python.components import Componentized
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from headroom_twisted import systemd
from headroom_twisted.config import Config
from headroom_twisted.endpoints import label_for_path, path_of, provider_for_path
from headroom_twisted.logging import StructlogObserver
from headroom_twisted.metrics import ProxyMetrics
from headroom_twisted.upstream.agent import make_agent
from headroom_twisted.web.budget import BodyBudget
from headroom_twisted.web.local import HealthResource, ReadyResource
from headroom_twisted.web.observability import DashboardResource, MetricsResource, StatsResource
from headroom_twisted.web.proxy import (
    BodyStage,
    InFlight,
    ObserverFactory,
    ProxyResource,
    forward_unchanged,
    no_observer,
)
from headroom_twisted.web.request import ProxyRequest, ProxySite
from headroom_twisted.web.root import RootResource


class HeadroomService(MultiService):
    """Owns the listening ports, the compression thread pool and the upstream pool."""

    def __init__(
        self,
        config: Config,
        reactor: Any,
        *,
        warm_up: Callable[[], None],
        body_stage_factory: Callable[[Any, ThreadPool], BodyStage] | None = None,
        observer_for: ObserverFactory = no_observer,
        metrics: ProxyMetrics | None = None,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.config = config
        self._reactor = reactor
        self._warm_up = warm_up
        self._on_stop = on_stop
        self._log = structlog.get_logger("headroom.service")
        self.thread_pool = CompressionThreadPool(minthreads=1, maxthreads=config.threads, name="headroom-compress")
        self.metrics = metrics if metrics is not None else ProxyMetrics(reactor)
        self.metrics.watch_thread_pool(self.thread_pool)
        self.agent, self._http_pool = make_agent(reactor, config.connect_timeout)
        self.in_flight = InFlight()
        self._warmed_up = False
        self.ports: list[IListeningPort] = []
        body_stage = body_stage_factory(reactor, self.thread_pool) if body_stage_factory else forward_unchanged
        proxy = ProxyResource(
            config=config,
            agent=self.agent,
            clock=reactor,
            in_flight=self.in_flight,
            metrics=self.metrics,
            body_stage=body_stage,
            observer_for=observer_for,
        )
        root = RootResource(
            proxy,
            {
                b"/healthz": HealthResource(),
                b"/readyz": ReadyResource(self.readiness),
                b"/metrics": MetricsResource(self.metrics),
                b"/stats": StatsResource(self.metrics),
                b"/dashboard": DashboardResource(self.metrics),
            },
        )
        self.site = ProxySite(
            root,
            max_body_bytes=config.max_body_bytes,
            body_budget=BodyBudget(config.max_inflight_body_bytes),
            on_refused=self._log_refused,
            metrics=self.metrics,
        )

    def setServiceParent(self, parent: Any) -> None:
        """Under twistd, the parent is the Application: give it our JSON log observer.

        twistd reads the Application's ILogObserver component when it starts
        logging, which puts Twisted's own events on the same JSON stream.
        """
        if isinstance(parent, Componentized) and parent.getComponent(ILogObserver) is None:
            parent.setComponent(ILogObserver, StructlogObserver())
        super().setServiceParent(parent)

    def readiness(self) -> dict[str, bool]:
        return {
            "thread_pool": bool(self.thread_pool.started),
            "tokenizer_and_detector": self._warmed_up,
            "listening": bool(self.ports),
        }

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        raise_open_file_limit(self._log)
        for description in self.config.listen:
            self.ports.append(self._listen(description))
        self._log.info(
            "listening",
            endpoints=[str(port.getHost()) for port in self.ports],
            openai_upstream=self.config.openai_upstream.origin + self.config.openai_upstream.base_path,
            anthropic_upstream=self.config.anthropic_upstream.origin + self.config.anthropic_upstream.base_path,
            compression=self.config.compression,
        )

    def startService(self) -> None:
        if not self.ports:
            self.privilegedStartService()
        super().startService()
        self.thread_pool.start()
        systemd.notify(b"READY=1\nSTATUS=listening")
        warming = deferToThreadPool(self._reactor, self.thread_pool, self._warm_up)
        warming.addCallbacks(self._warm_up_done, self._warm_up_failed)

    def stopService(self) -> Deferred[None]:
        systemd.notify(b"STOPPING=1")
        super().stopService()
        deadline = self._reactor.seconds() + self.config.drain_timeout
        ports, self.ports = self.ports, []
        closing_ports = gatherResults([maybeDeferred(port.stopListening) for port in ports])
        self.site.start_draining()
        stopped = self._drain()
        stopped.addCallback(lambda _: self._stop_pools(deadline))
        stopped.addCallback(lambda _: closing_ports)
        return stopped

    def _listen(self, description: str) -> IListeningPort:
        """Listen now or raise, so a bad endpoint or a busy port fails startup."""
        failures: list[Failure] = []
        ports: list[IListeningPort] = []
        try:
            listening = serverFromString(self._reactor, description).listen(self.site)
        except Exception as error:  # a description Twisted cannot use, e.g. no inherited socket
            raise SystemExit(f"headroom: cannot listen on {description!r}: {error!r}") from None
        listening.addCallbacks(ports.append, failures.append)
        if failures:
            raise SystemExit(f"headroom: cannot listen on {description!r}: {failures[0].getErrorMessage()}")
        if not ports:
            raise SystemExit(f"headroom: listening on {description!r} did not complete at startup")
        return ports[0]

    def _drain(self) -> Deferred[None]:
        idle = self.in_flight.when_idle()
        if idle.called:
            return idle
        self._log.info("draining", in_flight=len(self.in_flight), timeout_s=self.config.drain_timeout)
        idle.addTimeout(self.config.drain_timeout, self._reactor)
        idle.addErrback(self._drain_timed_out)
        return idle

    def _drain_timed_out(self, failure: Failure) -> None:
        failure.trap(TimeoutError)
        self._log.warning("drain_timeout", aborting=len(self.in_flight), timeout_s=self.config.drain_timeout)
        self.in_flight.abort_all()

    def _stop_pools(self, deadline: float) -> Deferred[None]:
        """Stop the pools off the reactor thread; wait for them no later than `deadline`.

        The thread pool and `on_stop` (the worker processes) stop side by
        side: a pool thread may be waiting on a worker that only `on_stop`
        ends. A job still running past the deadline is abandoned: its client
        was already cut, and the pool's threads are daemons, so they do not
        hold the process either.
        """
        stopping = gatherResults(
            [
                call_in_daemon_thread(self._reactor, self.thread_pool.stop),
                call_in_daemon_thread(self._reactor, self._on_stop),
                self._http_pool.closeCachedConnections(),
            ],
            consumeErrors=True,
        )
        waited: Deferred[None] = Deferred()
        deadline_call = self._reactor.callLater(max(0.0, deadline - self._reactor.seconds()), waited.callback, None)
        stopping.addBoth(self._pools_stopped, deadline_call)
        waited.addCallback(self._pools_waited, stopping)
        return waited

    def _pools_waited(self, _: None, stopping: Deferred[None]) -> None:
        if not stopping.called:
            self._log.warning("pools_still_stopping", timeout_s=self.config.drain_timeout)

    def _pools_stopped(self, result: object, deadline_call: IDelayedCall) -> None:
        if isinstance(result, Failure):
            self._log.error("pools_stop_failed", error=result.getErrorMessage())
        if deadline_call.active():
            deadline_call.reset(0)

    def _warm_up_done(self, _: object) -> None:
        self._warmed_up = True
        self._log.info("ready")

    def _warm_up_failed(self, failure: Failure) -> None:
        self._log.error("warm_up_failed", error=failure.getErrorMessage())

    def _log_refused(self, request: ProxyRequest, status: int, reason: str, size: int) -> None:
        # Refused before the request line reached the Request: the channel still holds it.
        method = getattr(request.channel, "_command", b"") or b""
        path = path_of(getattr(request.channel, "_path", b"/") or b"/")
        provider = provider_for_path(path).value
        self.metrics.request_finished(
            provider, label_for_path(path), method, status, time.monotonic() - request.started
        )
        self._log.warning(
            "request_finished",
            request_id=(request.request_id or b"").decode("ascii"),
            method=method.decode("latin-1"),
            path=path.decode("utf-8", "replace"),
            provider=provider,
            status=status,
            outcome="refused",
            reason=reason,
            bytes_in=size,
            limit=self.config.max_inflight_body_bytes if status == 503 else self.config.max_body_bytes,
        )


class CompressionThreadPool(ThreadPool):
    """The compression pool, with daemon threads.

    A job can outlive the drain deadline (its client is cut by then); a
    non-daemon thread would keep the process alive after the reactor has
    stopped, past systemd's stop timeout.
    """

    threadFactory = functools.partial(threading.Thread, daemon=True)


def call_in_daemon_thread(reactor: Any, work: Callable[[], None]) -> Deferred[None]:
    """Run blocking `work` on a new daemon thread; the Deferred fires on the reactor thread.

    Not the reactor's own thread pool: Twisted joins that pool while the
    reactor shuts down, so `work` still waiting on a busy job there would
    hold up the very shutdown it is part of.
    """
    done: Deferred[None] = Deferred()

    def run() -> None:
        try:
            work()
        except BaseException:
            reactor.callFromThread(done.errback, Failure())
        else:
            reactor.callFromThread(done.callback, None)

    threading.Thread(target=run, name="headroom-stop-pools", daemon=True).start()
    return done


def raise_open_file_limit(log: Any) -> None:
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
