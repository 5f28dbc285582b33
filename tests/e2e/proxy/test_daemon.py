"""`twistd -n headroom` as a real process: config errors, JSON logs, SIGTERM drain, packaging."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import pytest_twisted
import treq
from daemon_support import EXEC_AS_SOCKET_ACTIVATED, TWISTD_MAIN
from http_fakes import http_client
from process_tree import alive, descendants
from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.web.server import NOT_DONE_YET, Request

ROOT = Path(__file__).resolve().parents[3]
TWISTD = [sys.executable, "-c", TWISTD_MAIN]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def twistd(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*TWISTD, "-n", "--pidfile=", "headroom", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd="/",
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--threads=zero"], {}, "bad value for --threads"),
        (["--compression=maybe"], {}, "bad value for --compression"),
        ([], {"HEADROOM_MAX_BODY_BYTES": "12XB"}, "bad value for HEADROOM_MAX_BODY_BYTES"),
        (["--openai-upstream=ftp://x"], {}, "bad value for --openai-upstream"),
        (["--listen=nonsense"], {}, "bad value for --listen"),
    ],
)
def test_bad_option_is_one_clear_line_and_nonzero_exit(args: list[str], env: dict[str, str], message: str) -> None:
    process = twistd(*args, env=env)
    out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err.decode()


def test_flag_wins_over_environment() -> None:
    from headroom_twisted.config import build_config

    config = build_config({"threads": "3"}, [], {"HEADROOM_THREADS": "9", "HEADROOM_IDLE_TIMEOUT": "5"})
    assert config.threads == 3
    assert config.idle_timeout == 5.0
    assert config.max_body_bytes == 100 * 1024 * 1024


def test_busy_port_stops_startup() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = twistd(f"--listen=tcp:{port}:interface=127.0.0.1")
        out, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert b"cannot listen" in out + err


async def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, process.stderr.read() if process.stderr else b""
        try:
            response = await http_client().get(url + "/healthz")
            await treq.content(response)
            if response.code == 200:
                return
        except Exception:
            pass
        await deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("proxy never became healthy")


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_sigterm_lets_in_flight_request_finish_and_logs_json(upstream) -> None:
    def slow(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/json")

        def finish() -> None:
            request.write(b'{"done": true}')
            request.finish()

        reactor.callLater(1.0, finish)
        return NOT_DONE_YET

    upstream.handler = slow
    port = free_port()
    process = twistd(
        f"--listen=tcp:{port}:interface=127.0.0.1",
        f"--openai-upstream={upstream.url}",
        "--drain-timeout=10",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_healthy(url, process)
        pending = http_client().post(
            url + "/v1/chat/completions",
            data=b'{"messages": []}',
            headers={
                b"authorization": [b"Bearer sk-live-supersecretvalue1234"],
                b"content-type": [b"application/json"],
            },
        )
        await deferLater(reactor, 0.3, lambda: None)
        process.send_signal(signal.SIGTERM)
        response = await pending
        assert response.code == 200
        assert await treq.content(response) == b'{"done": true}'
    finally:
        out, err = process.communicate(timeout=30)
    # twistd re-raises the signal that stopped it; systemd counts SIGTERM as a clean exit.
    assert process.returncode in (0, -signal.SIGTERM), err.decode()
    events = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    finished = [event for event in events if event["event"] == "request_finished" and event["path"] != "/healthz"]
    assert len(finished) == 1 and finished[0]["status"] == 200
    assert {"request_id", "method", "path", "status", "upstream", "bytes_in", "bytes_out", "duration_ms"} <= set(
        finished[0]
    )
    assert any(event["event"] == "draining" for event in events)
    assert any(event["event"] == "twisted_log" for event in events)
    assert b"supersecretvalue" not in out + err


@pytest.mark.slow
def test_wheel_ships_the_dropin_without_shadowing_twisted(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next(tmp_path.glob("headroom_twisted-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "twisted/plugins/headroom.py" in names
    assert "twisted/__init__.py" not in names and "twisted/plugins/__init__.py" not in names
    assert "headroom_twisted/tap.py" in names


@pytest_twisted.ensureDeferred
@pytest.mark.parametrize(("mode", "with_workers"), [("off", False), ("stable", True)])
async def test_worker_processes_run_only_when_something_can_be_compressed(mode: str, with_workers: bool) -> None:
    """`--compression off` starts no worker process and loads no model; a compressing mode does."""
    port = free_port()
    process = twistd("--listen", f"tcp:{port}:interface=127.0.0.1", "--compression", mode, "--threads", "1")
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            try:
                response = await http_client().get(url + "/readyz")
                await treq.content(response)
                if response.code == 200:
                    break
            except Exception:
                pass
            await deferLater(reactor, 0.1, lambda: None)
        else:
            raise AssertionError("proxy never became ready")
        children = {pid for pid in descendants(process.pid) if alive(pid)}
        assert bool(children) is with_workers, children
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_twistd_help_lists_headroom() -> None:
    result = subprocess.run([*TWISTD, "--help"], capture_output=True, cwd="/", timeout=60)
    assert b"headroom" in result.stdout


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_systemd_socket_activation_serves_on_the_inherited_socket(upstream) -> None:
    """What headroom.socket hands over: fd 3, LISTEN_FDS=1, LISTEN_PID=the service's pid."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                EXEC_AS_SOCKET_ACTIVATED,
                str(listener.fileno()),
                "-n",
                "--pidfile=",
                "headroom",
                "--listen=systemd:domain=INET:index=0",
                f"--openai-upstream={upstream.url}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(listener.fileno(),),
            cwd="/",
        )
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_healthy(url, process)
        response = await http_client().post(url + "/v1/chat/completions", data=b"{}")
        assert await treq.content(response) == b'{"ok": true}'
    finally:
        process.terminate()
        process.communicate(timeout=30)
