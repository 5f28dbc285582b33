"""Processes a benchmark starts (fake upstreams, `twistd headroom`), and stops again.

Every benchmark runs the client, the fake upstream and each proxy as
separate processes on loopback; these are the shared pieces for that.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Spawned:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""


@dataclass
class Processes:
    workdir: Path
    spawned: list[Spawned] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str]) -> Spawned:
        log_path = self.workdir / f"{name}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        spawned = Spawned(name, process, log_path)
        self.spawned.append(spawned)
        return spawned

    def stop_all(self) -> None:
        for spawned in reversed(self.spawned):
            spawned.stop()


def twistd_path() -> str:
    candidate = Path(sys.executable).with_name("twistd")
    return str(candidate) if candidate.exists() else "twistd"


def wait_until(spawned: Spawned, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if spawned.process.poll() is not None:
            raise SystemExit(f"{spawned.name} exited early:\n{spawned.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"{spawned.name} not ready at {url} after {timeout:g} s:\n{spawned.log_tail()}")


def serve_until_sigterm(protocol: Callable[[], asyncio.Protocol], port: int, backlog: int = 1024) -> None:
    """Run an asyncio server for `protocol` on HOST:port until SIGTERM (a fake upstream's main loop)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        server = await loop.create_server(protocol, HOST, port, backlog=backlog)
        async with server:
            await stop

    asyncio.run(main())
