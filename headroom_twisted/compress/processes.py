"""Worker processes that run the compression pipeline.

Compression is CPU-bound Python. Run on threads of the proxy's own process,
it competes with the reactor thread for the GIL: with four busy workers a
small passthrough request waited 150 ms at p99 for its turn (see
bench/reactor_responsiveness.py). In worker processes, each with its own
interpreter and a lower CPU priority, it cannot hold the reactor up at all.

The proxy's compression thread pool still bounds how many jobs run at once:
each pool thread hands work to a worker and waits for the result (the wait
releases the GIL). Only plain data crosses the process boundary: a body in
and a `Plan` (spans and keys) out, then the literals of new blocks in and
their `Rewrite`s out. The memo and the splice stay in the proxy.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import structlog

from headroom_twisted.compress.blocks import compress_block, warm_up
from headroom_twisted.compress.gate import Endpoint
from headroom_twisted.compress.plan import NothingToDo, Plan, plan_request
from headroom_twisted.compress.rewrite import BlockJob, Rewrite, rewrite_blocks
from headroom_twisted.logging import configure_logging

WORKER_NICENESS = 5
"""How much lower than the proxy's the workers' CPU priority is: under load,
the reactor (which only moves bytes) wins the CPU."""

log = structlog.get_logger(__name__)

T = TypeVar("T")


def _start_worker(log_format: str, log_level: str) -> None:
    """Runs once in each new worker: same log format, lower priority, models loaded.

    Ctrl-C in a terminal reaches the whole process group; the proxy decides
    when its workers stop, so they ignore SIGINT.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(log_format, log_level)
    os.nice(WORKER_NICENESS)
    warm_up()


def _worker_pid() -> int:
    return os.getpid()


class CompressionProcesses:
    """A replaceable pool of `size` worker processes (thread-safe)."""

    def __init__(self, size: int, log_format: str = "json", log_level: str = "info") -> None:
        self._size = size
        self._logging = (log_format, log_level)
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None

    def warm_up(self) -> None:
        """Start every worker and wait until each has loaded its models.

        Blocks for about a second: call it on a pool thread, not the reactor.
        Submitting one job per worker at once makes the executor start them all.
        """
        executor = self._current()
        jobs = [executor.submit(_worker_pid) for _ in range(self._size)]
        pids = {job.result() for job in jobs}
        log.info("compression_workers_ready", workers=len(pids))

    def plan(self, body: bytes, endpoint: Endpoint, mode: str) -> Plan | NothingToDo:
        """Run `plan_request` in a worker and wait for the plan."""
        return self._run(plan_request, body, endpoint, mode)

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str) -> list[Rewrite]:
        """Run `rewrite_blocks` with the real block compressor in a worker and wait."""
        return self._run(rewrite_blocks, list(jobs), encoding, compress_block)

    def _run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in a worker and wait for its result.

        A worker that dies (killed, out of memory) breaks the whole executor;
        it is replaced for the next request and this one fails (open).
        """
        executor = self._current()
        try:
            return executor.submit(function, *args).result()
        except BrokenProcessPool:
            self._discard(executor)
            raise

    def stop(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self._size,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start_worker,
                    initargs=self._logging,
                )
            return self._executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        log.error("compression_workers_broken", replacing=True)
        broken.shutdown(wait=False, cancel_futures=True)
