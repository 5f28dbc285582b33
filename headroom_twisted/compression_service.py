"""The compression service: the thread pool compression jobs run on, and the worker processes behind it.

A job is blocking: a pool thread runs it with plain data in and out (in
production `CompressionRunner.compress`, which hands the CPU-bound halves on
to worker processes and waits on their pipes). The service starts the pool,
loads the workers' models on it (readiness), and stops both without ever
blocking the reactor thread. It knows nothing about what a job returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, Protocol, TypeVar

import structlog
from structlog.typing import FilteringBoundLogger
from twisted.application.service import IService, Service
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.interfaces import IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from headroom_twisted.endpoints import Endpoint

Outcome = TypeVar("Outcome")


class CompressionWorkers(Protocol):
    """The worker processes a job hands work to (`CompressionProcesses`)."""

    def warm_up(self) -> None:
        """Start the workers and block until each has loaded its models."""

    def stop(self) -> None:
        """Kill the workers, without waiting for their jobs."""


class ICompressionService(IService):
    """What the root service needs of the compression service: a child to stop last, and its readiness."""

    def readiness() -> dict[str, bool]:
        """Each check by name (as `/readyz` reports them), True once it passes."""


class DaemonThread(threading.Thread):
    """A thread that does not keep the process alive once the main thread is done."""

    def __init__(
        self,
        group: None = None,
        target: Callable[..., object] | None = None,
        name: str | None = None,
        args: Iterable[object] = (),
        kwargs: Mapping[str, object] | None = None,
        *,
        daemon: bool | None = None,
    ) -> None:
        super().__init__(group, target, name, args, kwargs, daemon=True)


class CompressionThreadPool(ThreadPool):
    """The compression pool, with daemon threads.

    A job can outlive the drain deadline (its client is cut by then); a
    non-daemon thread would keep the process alive after the reactor has
    stopped, past systemd's stop timeout.
    """

    threadFactory = DaemonThread


@implementer(ICompressionService)
class CompressionService(Service, Generic[Outcome]):
    """Owns the compression thread pool and the workers; runs `job` on the pool.

    Without `workers` (tests, tools) the job needs nothing loaded: the
    warm-up is empty, and the service is ready once the pool has run it.
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        job: Callable[[bytes, Endpoint, threading.Event, float], Outcome],
        *,
        threads: int,
        workers: CompressionWorkers | None = None,
    ) -> None:
        self._reactor = reactor
        self._job = job
        self._workers = workers
        self._warmed_up = False
        self._log: FilteringBoundLogger = structlog.get_logger("headroom.service")
        self.thread_pool = CompressionThreadPool(minthreads=1, maxthreads=threads, name="headroom-compress")

    def compress(self, body: bytes, endpoint: Endpoint, cancelled: threading.Event) -> Deferred[Outcome]:
        """Run the job on the pool; the Deferred fires on the reactor thread with what it returns.

        The job also gets the `time.monotonic()` instant of this call, so its
        deadline counts the time it waited in the pool's queue.

        Setting `cancelled` (the client left) drops a job still queued and
        stops a running one at its next check; its outcome still arrives
        (a compression runner's says `client_gone`). That is why this takes
        a flag rather than being cancelled through its Deferred: cancelling
        would lose the outcome, and the caller records what became of every
        body it submitted.
        """
        submitted = time.monotonic()
        return deferToThreadPool(self._reactor, self.thread_pool, self._job, body, endpoint, cancelled, submitted)

    def readiness(self) -> dict[str, bool]:
        return {"thread_pool": bool(self.thread_pool.started), "tokenizer_and_detector": self._warmed_up}

    def startService(self) -> None:
        """Start the pool, then load the workers' models on it (seconds: never on the reactor)."""
        super().startService()
        self.thread_pool.start()
        warming = deferToThreadPool(self._reactor, self.thread_pool, self._warm_up)
        warming.addCallbacks(self._warm_up_done, self._warm_up_failed)

    def stopService(self) -> Deferred[None]:
        """Stop the pool and the workers side by side, each on a thread of its own.

        Side by side, because a pool thread may be waiting on a worker that
        only `workers.stop` ends; never on the reactor thread, because
        stopping the pool joins its threads and one may be deep in a job.
        The Deferred fires when both are done, which may be long after a
        stuck job's client was cut: whoever stops the service decides how
        long to wait for it. The threads are daemons, so they do not hold
        the process either.
        """
        super().stopService()
        stopping = [call_in_daemon_thread(self._reactor, self.thread_pool.stop)]
        if self._workers is not None:
            stopping.append(call_in_daemon_thread(self._reactor, self._workers.stop))
        stopped = gatherResults(stopping, consumeErrors=True)
        return stopped.addCallback(lambda _: None)

    def _warm_up(self) -> None:
        if self._workers is not None:
            self._workers.warm_up()

    def _warm_up_done(self, _: None) -> None:
        self._warmed_up = True
        self._log.info("ready")

    def _warm_up_failed(self, failure: Failure) -> None:
        self._log.error("warm_up_failed", error=failure.getErrorMessage())


def call_in_daemon_thread(reactor: IReactorFromThreads, work: Callable[[], None]) -> Deferred[None]:
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
