"""Worker processes that run the CPU-bound halves of the compression pipeline.

Compression is CPU-bound Python. Run on threads of the proxy's own process,
it competes with the reactor thread for the GIL: with four busy workers a
small passthrough request waited 150 ms at p99 for its turn (see
bench/reactor_responsiveness.py). In worker processes, each with its own
interpreter and a lower CPU priority, it cannot hold the reactor up at all.

Each worker is one process and one pipe, used by one compression pool thread
at a time: the thread sends a call, waits on the pipe (releasing the GIL) and
gets the result back. Only plain data crosses: a body in and a `Plan` (spans
and keys) out, then the literals of new blocks in and their `Rewrite`s out.
Owning the processes (rather than a ProcessPoolExecutor) is what makes three
promises keepable: a job past its deadline is abandoned and *its* worker
killed and replaced, readiness means every worker has loaded its models, and
a worker whose proxy died (kill -9, the OOM killer) exits by itself.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import TypeVar, TypeVarTuple, cast

import structlog
from structlog.typing import FilteringBoundLogger

from headroom_twisted.compress.pipeline import JobTimedOut
from headroom_twisted.compress.plan import NothingToDo, Plan, plan_request
from headroom_twisted.compress.rewrite import BlockJob, Rewrite, rewrite_blocks
from headroom_twisted.config import CompressingMode, LogFormat, LogLevelName
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.logging import configure_logging

WORKER_NICENESS = 5
"""How much lower than the proxy's the workers' CPU priority is: under load,
the reactor (which only moves bytes) wins the CPU."""

PARENT_CHECK_SECONDS = 1.0
"""How often a worker looks whether the proxy that started it is still alive."""

READY_TIMEOUT_SECONDS = 120.0

RESPAWN_WINDOW_SECONDS = 60.0
"""At most `size` replacement workers start at once within this window; later ones wait their turn.

A replacement costs a process start and a model load (about a core-second).
When every job overruns (a flood of bodies too large for the deadline),
replacing each killed worker at once would spend the machine on loading
models; with fewer workers, jobs wait their deadline and go upstream
unchanged instead, which is what failing open means."""

log: FilteringBoundLogger = structlog.get_logger(__name__)

Result = TypeVar("Result")
Args = TypeVarTuple("Args")


class WorkerDied(Exception):
    """A worker exited (killed, out of memory) while holding a job."""


class WorkerFailed(Exception):
    """The called function raised in the worker; the message names the exception."""


class PoolStopped(Exception):
    """The pool is stopping and takes no more jobs."""


def _serve(connection: Connection, log_format: LogFormat, log_level: LogLevelName) -> None:
    """A worker's whole life: load the models, say so, then answer calls until the pipe closes.

    Ctrl-C in a terminal reaches the whole process group; the proxy decides
    when its workers stop, so they ignore SIGINT. A watchdog thread ends the
    process if the proxy dies while a long job runs (the closed pipe ends it
    otherwise).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    configure_logging(log_format, log_level)
    os.nice(WORKER_NICENESS)
    _load_models()
    connection.send(("ready", os.getpid()))
    while True:
        try:
            function, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, object] = ("ok", function(*args))
        except Exception as error:
            reply = ("error", f"{type(error).__name__}: {error}")
        connection.send(reply)


def _load_models() -> None:
    """Import the block policy (Magika, the grammars, the tokenizers) and load its models: in a worker only.

    The proxy process never imports them (about 40 MiB it would hold for
    nothing); the worker functions below import the policy when they run.
    """
    from headroom_twisted.compress.blocks.policy import warm_up

    warm_up()


def _rewrite_with_policy(jobs: list[BlockJob], encoding: str) -> list[Rewrite]:
    """`rewrite_blocks` with the real block compressor, in the worker that runs it."""
    from headroom_twisted.compress.blocks.policy import compress_block

    return rewrite_blocks(jobs, encoding, compress_block)


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


class Worker:
    """One worker process and the proxy's end of its pipe (one caller at a time)."""

    def __init__(self, context: SpawnContext, log_format: LogFormat, log_level: LogLevelName) -> None:
        ours, theirs = context.Pipe()
        self.process = context.Process(target=_serve, args=(theirs, log_format, log_level), daemon=True)
        self.process.start()
        theirs.close()
        self._connection: Connection = ours
        self._ready = False

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the worker has loaded its models (its first message)."""
        if self._ready:
            return
        timeout = READY_TIMEOUT_SECONDS if timeout is None else timeout
        if not self._connection.poll(timeout):
            raise WorkerDied(f"worker {self.process.pid} did not load its models in {timeout:g} s")
        self._receive()
        self._ready = True

    def call(self, function: Callable[[*Args], Result], args: tuple[*Args], deadline: float) -> Result:
        """``function(*args)`` in the worker; raises JobTimedOut past ``deadline`` (monotonic)."""
        self.wait_ready(max(0.0, deadline - time.monotonic()))
        try:
            self._connection.send((function, args))
            answered = self._connection.poll(max(0.0, deadline - time.monotonic()))
        except (OSError, EOFError) as error:
            raise WorkerDied(f"worker {self.process.pid} is gone") from error
        if not answered:
            raise JobTimedOut(f"no answer from worker {self.process.pid} before the deadline")
        status, value = self._receive()
        if status == "error":
            raise WorkerFailed(value)
        return cast(Result, value)  # unpickled from the pipe: what the worker's function(*args) returned

    def kill(self) -> None:
        self._connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)

    def _receive(self) -> tuple[str, object]:
        try:
            message: tuple[str, object] = self._connection.recv()
        except (EOFError, OSError) as error:
            raise WorkerDied(f"worker {self.process.pid} exited") from error
        return message


class CompressionProcesses:
    """`size` worker processes shared by the compression pool threads (thread-safe).

    A job that overruns its deadline or whose worker dies fails (the caller
    forwards the original bytes); that worker is killed and a fresh one takes
    its place, loading its models before its first job.
    """

    def __init__(self, size: int, log_format: LogFormat = "json", log_level: LogLevelName = "info") -> None:
        self._size = size
        self._logging: tuple[LogFormat, LogLevelName] = (log_format, log_level)
        self._context = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[Worker | None] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: list[Worker] = []
        self._stopped = False
        self._warm = threading.Event()
        self._unusable = False
        self._respawns: collections.deque[float] = collections.deque()

    def warm_up(self) -> None:
        """Start every worker and wait until each has loaded its models.

        Blocks for a few seconds: call it on a pool thread, not the reactor.
        Ready means ready: this returns only when all `size` workers are.
        """
        started = [self._spawn() for _ in range(self._size)]
        try:
            for worker in started:
                worker.wait_ready()
        except WorkerDied:
            self._unusable = True  # jobs fail open at once instead of waiting for workers that never come
            self._warm.set()
            raise
        for worker in started:
            self._idle.put(worker)
        self._warm.set()
        log.info("compression_workers_ready", workers=len(started), pids=[w.process.pid for w in started])

    def plan(self, body: bytes, endpoint: Endpoint, mode: CompressingMode, deadline: float) -> Plan | NothingToDo:
        """Run `plan_request` in a worker."""
        return self._run(plan_request, (body, endpoint, mode), deadline)

    def rewrite(self, jobs: Sequence[BlockJob], encoding: str, deadline: float) -> list[Rewrite]:
        """Run `rewrite_blocks` with the real block compressor in a worker."""
        return self._run(_rewrite_with_policy, (list(jobs), encoding), deadline)

    def stop(self) -> None:
        """Kill every worker, without waiting for jobs: a busy one's job fails open. Safe to call twice.

        Killing rather than joining is what lets a stopping proxy exit within
        its drain deadline whatever the workers are doing.
        """
        with self._lock:
            self._stopped = True
            workers, self._workers = self._workers, []
        self._warm.set()
        for _ in range(self._size):
            self._idle.put(None)  # wakes a thread waiting for a worker, which then gives up
        for worker in workers:
            worker.kill()

    def _run(self, function: Callable[[*Args], Result], args: tuple[*Args], deadline: float) -> Result:
        """A request that arrives while the workers still load their models waits for them first:
        its deadline is for compressing, and starts counting once they are ready."""
        waiting_since = time.monotonic()
        if not self._warm.wait(READY_TIMEOUT_SECONDS):
            raise JobTimedOut("the compression workers are not ready")
        if self._unusable:
            raise PoolStopped("the compression workers failed to start")
        deadline += time.monotonic() - waiting_since
        remaining = deadline - time.monotonic()
        try:
            worker = self._idle.get(timeout=max(0.0, remaining))
        except queue.Empty:
            raise JobTimedOut("no worker became free before the deadline") from None
        if worker is None:
            self._idle.put(None)
            raise PoolStopped("the compression workers are stopping")
        if time.monotonic() >= deadline:
            self._idle.put(worker)  # never started: the worker is fine, nothing to kill
            raise JobTimedOut("the deadline passed before a worker took the job")
        try:
            result = worker.call(function, args, deadline)
        except (JobTimedOut, WorkerDied) as error:
            self._replace(worker, error)
            raise
        except BaseException:
            self._idle.put(worker)
            raise
        self._idle.put(worker)
        return result

    def _spawn(self) -> Worker:
        worker = Worker(self._context, *self._logging)
        with self._lock:
            self._workers.append(worker)
        return worker

    def _replace(self, worker: Worker, error: Exception) -> None:
        worker.kill()
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            stopped = self._stopped
        log.error("compression_worker_replaced", pid=worker.process.pid, error=str(error))
        if stopped:
            return
        delay = self._respawn_delay()
        if delay <= 0:
            self._idle.put(self._spawn())
            return
        log.warning("compression_worker_respawn_delayed", seconds=round(delay, 1))
        timer = threading.Timer(delay, self._respawn_later)
        timer.daemon = True
        timer.start()

    def _respawn_delay(self) -> float:
        """Seconds until a replacement may start: 0 while fewer than `size` started in the window."""
        now = time.monotonic()
        with self._lock:
            while self._respawns and now - self._respawns[0] > RESPAWN_WINDOW_SECONDS:
                self._respawns.popleft()
            start = now if len(self._respawns) < self._size else self._respawns[-self._size] + RESPAWN_WINDOW_SECONDS
            self._respawns.append(start)
        return start - now

    def _respawn_later(self) -> None:
        with self._lock:
            stopped = self._stopped
        if not stopped:
            self._idle.put(self._spawn())
