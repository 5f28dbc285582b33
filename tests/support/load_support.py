"""Real daemons and the paced fake upstream (bench/soak.py) as subprocesses, for load tests.

Everything here is blocking and reactor-free: the upstream and the daemons
run in their own processes, the test drives them with plain sockets and
threads, so a busy test process cannot slow the system under test's clock.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon_support import EXEC_AS_SOCKET_ACTIVATED, TWISTD_MAIN

ROOT = Path(__file__).resolve().parents[2]
SOAK = ROOT / "bench" / "soak.py"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], describe: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, describe()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200: {describe()}")


@dataclass
class Spawned:
    process: subprocess.Popen[bytes]
    log_path: str

    def log_text(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def events(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def finished_requests(self, path: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == "request_finished" and e.get("path") == path]

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def remove_log(self) -> None:
        os.unlink(self.log_path)


def spawn(argv: list[str], pass_fds: tuple[int, ...] = ()) -> Spawned:
    log_fd, log_path = tempfile.mkstemp(prefix="headroom-load-", suffix=".log")
    process = subprocess.Popen(
        argv,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        cwd="/",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(log_fd)
    return Spawned(process, log_path)


def start_upstream() -> tuple[Spawned, int]:
    """bench/soak.py's paced upstream: `?sse=`, `?delay=`, and a JSON echo of the body's size and SHA-256."""
    port = free_port()
    upstream = spawn([sys.executable, str(SOAK), "--serve-upstream", str(port)])
    wait_http(f"http://{HOST}:{port}/__soak/stats", upstream.process, upstream.log_text)
    return upstream, port


def daemon_args(upstream_port: int, *extra: str) -> list[str]:
    return [
        "-n",
        "--pidfile=",
        "headroom",
        f"--openai-upstream=http://{HOST}:{upstream_port}",
        f"--anthropic-upstream=http://{HOST}:{upstream_port}",
        *extra,
    ]


def start_daemon(upstream_port: int, *extra: str) -> tuple[Spawned, int]:
    port = free_port()
    daemon = spawn(
        [
            sys.executable,
            "-c",
            TWISTD_MAIN,
            *daemon_args(upstream_port, f"--listen=tcp:{port}:interface={HOST}", *extra),
        ]
    )
    wait_http(f"http://{HOST}:{port}/readyz", daemon.process, daemon.log_text)
    return daemon, port


def start_socket_activated(listener: socket.socket, upstream_port: int, *extra: str) -> Spawned:
    """A daemon serving on `listener`, inherited as fd 3 the way systemd passes it."""
    fd = listener.fileno()
    argv = [sys.executable, "-c", EXEC_AS_SOCKET_ACTIVATED, str(fd)]
    argv += daemon_args(upstream_port, "--listen=systemd:domain=INET:index=0", *extra)
    return spawn(argv, pass_fds=(fd,))


def shared_listener(backlog: int = 1024) -> socket.socket:
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(backlog)
    return listener


def post(port: int, target: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
    """One POST on a fresh connection (Connection: close); returns status and body."""
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head + body)
        raw = bytearray()
        while chunk := sock.recv(65536):
            raw += chunk
    head_bytes, _, rest = bytes(raw).partition(b"\r\n\r\n")
    if not head_bytes.startswith(b"HTTP/1.1 "):
        raise ConnectionError(f"no HTTP response: {bytes(raw)[:100]!r}")
    status = int(head_bytes.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head_bytes.lower():
        sys.path.insert(0, str(SOAK.parent))
        from soak import dechunk

        body_out = dechunk(rest)
        if body_out is None:
            raise ConnectionError("chunked body cut off")
        return status, body_out
    return status, rest
