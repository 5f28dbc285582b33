"""The worker processes: ready means ready, deadlines replace the worker, orphans exit by themselves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from process_tree import alive, descendants
from structlog.testing import capture_logs

from headroom_twisted.compress.pipeline import CompressionRunner, JobTimedOut
from headroom_twisted.compress.processes import CompressionProcesses
from headroom_twisted.endpoints import Endpoint

pytestmark = pytest.mark.slow
BODY = b'{"model": "gpt-5", "messages": [{"role": "tool", "tool_call_id": "a", "content": "' + b"x" * 2000 + b'"}]}'


@pytest.fixture
def pool():
    processes = CompressionProcesses(2)
    with capture_logs() as logs:
        processes.warm_up()
    processes.ready_logs = logs
    yield processes
    processes.stop()


def test_ready_only_when_every_worker_has_loaded_its_models(pool) -> None:
    [ready] = [entry for entry in pool.ready_logs if entry["event"] == "compression_workers_ready"]
    assert ready["workers"] == 2 and len(set(ready["pids"])) == 2
    assert all(os.path.exists(f"/proc/{pid}") for pid in ready["pids"])


def test_a_job_past_its_deadline_fails_and_its_worker_is_replaced(pool) -> None:
    with capture_logs() as logs, pytest.raises(JobTimedOut):
        pool._run(time.sleep, (30,), time.monotonic() + 0.5)
    [replaced] = [entry for entry in logs if entry["event"] == "compression_worker_replaced"]
    for _ in range(100):
        if not os.path.exists(f"/proc/{replaced['pid']}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{replaced['pid']}")
    runner = CompressionRunner(pool, "stable")
    outcomes = [runner.compress(BODY, Endpoint.CHAT) for _ in range(4)]
    assert all(outcome.reason != "internal_error" for outcome in outcomes)


def test_the_runner_forwards_the_original_bytes_past_the_deadline(pool) -> None:
    class SlowWorkers:
        def plan(self, body, endpoint, mode, deadline):
            return pool._run(time.sleep, (30,), deadline)

    body = BODY
    outcome = CompressionRunner(SlowWorkers(), "stable", timeout=0.3).compress(body, Endpoint.CHAT)
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", "deadline_exceeded")


ORPHAN_PARENT = textwrap.dedent(
    """
    import sys, time
    from headroom_twisted.compress.processes import CompressionProcesses
    pool = CompressionProcesses(2)
    pool.warm_up()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def test_workers_and_their_helpers_exit_when_the_proxy_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert any(line.strip() == "ready" for line in iter(parent.stdout.readline, ""))
        orphans = descendants(parent.pid)
        assert len(orphans) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        for _ in range(200):
            if not any(os.path.exists(f"/proc/{pid}") and alive(pid) for pid in orphans):
                break
            time.sleep(0.05)
        assert [pid for pid in orphans if os.path.exists(f"/proc/{pid}") and alive(pid)] == []
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_killed_while_idle_costs_one_job_and_is_replaced(pool) -> None:
    victim = pool._workers[0].process.pid
    os.kill(victim, signal.SIGKILL)
    time.sleep(0.2)
    runner = CompressionRunner(pool, "stable")
    reasons = [runner.compress(BODY, Endpoint.CHAT).reason for _ in range(6)]
    assert reasons.count("internal_error") <= 1
    assert reasons[-1] != "internal_error"
    assert all(worker.process.pid != victim for worker in pool._workers)


def test_workers_that_cannot_start_make_jobs_fail_open_at_once(monkeypatch) -> None:
    processes = CompressionProcesses(1)
    monkeypatch.setattr("headroom_twisted.compress.processes.READY_TIMEOUT_SECONDS", 0.01)
    with pytest.raises(Exception, match="did not load"):
        processes.warm_up()
    body = BODY
    outcome = CompressionRunner(processes, "stable", timeout=30).compress(body, Endpoint.CHAT)
    processes.stop()
    assert outcome.body is body
    assert (outcome.decision, outcome.reason) == ("passthrough", "internal_error")  # not deadline_exceeded


def test_replacements_beyond_size_per_window_wait_their_turn(monkeypatch) -> None:
    """A flood of overruns must not spend the machine on loading models: `size` at once, then one by one."""
    from headroom_twisted.compress import processes

    class Dummy:
        class process:
            pid = 0

        def kill(self) -> None:
            """Nothing to kill."""

    monkeypatch.setattr(processes, "RESPAWN_WINDOW_SECONDS", 0.5)
    pool = CompressionProcesses(2)
    monkeypatch.setattr(pool, "_spawn", Dummy)
    with capture_logs() as logs:
        started = time.monotonic()
        for _ in range(5):
            pool._replace(Dummy(), JobTimedOut("overran"))
        assert pool._idle.qsize() == 2, "only `size` replacements start at once"
        while pool._idle.qsize() < 5 and time.monotonic() - started < 30:
            time.sleep(0.05)
        assert pool._idle.qsize() == 5 and time.monotonic() - started >= 1.0, "the last waited two windows"
    assert [entry["event"] for entry in logs].count("compression_worker_respawn_delayed") == 3
