"""The real daemon as a subprocess, a recording fake upstream, and a raw loopback HTTP client.

The daemon runs as `twistd -n headroom` does, except that its client limits
(timeouts that have no command-line option, `ClientLimits`) can be set before
twistd starts, so timeout behaviour can be tested in seconds, not minutes.
Its stdout (JSON logs) goes to a file, never a pipe that could fill and
block it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from twisted.web.server import Request

_TWISTD_WITH_LIMITS = (
    "import functools, json, resource, sys\n"
    "from headroom_twisted import wiring\n"
    "from headroom_twisted.web.request import ClientLimits\n"
    "setup = json.loads(sys.argv[1])\n"
    "limits = ClientLimits(**setup['limits'])\n"
    "wiring.build_service = functools.partial(wiring.build_service, limits=limits)\n"
    "if setup['nofile_soft']:\n"
    "    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
    "    resource.setrlimit(resource.RLIMIT_NOFILE, (setup['nofile_soft'], hard))\n"
    "sys.argv = ['twistd', *sys.argv[2:]]\n"
    "from twisted.scripts.twistd import run\n"
    "run()\n"
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def sleep(seconds: float) -> None:
    await deferLater(reactor, seconds, lambda: None)


@dataclass
class Daemon:
    """One `twistd -n headroom` process on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.process.poll() is None

    def healthz(self) -> int:
        """GET /healthz with a blocking client (the daemon needs nothing from the test reactor)."""
        with urllib.request.urlopen(self.url + "/healthz", timeout=5) as response:
            return int(response.status)

    def log_text(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as log:
            return log.read()

    def events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.log_text().splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def rss_kib(self) -> int:
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        os.unlink(self.log_path)


def start_daemon(
    upstream_url: str,
    *args: str,
    limits: dict[str, float] | None = None,
    nofile_soft: int | None = None,
) -> Daemon:
    """Start the daemon pointed at `upstream_url` for both providers and wait for /healthz."""
    port = free_port()
    log_fd, log_path = tempfile.mkstemp(prefix="headroom-hardening-", suffix=".log")

    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _TWISTD_WITH_LIMITS,
            json.dumps({"limits": limits or {}, "nofile_soft": nofile_soft}),
            "-n",
            "--pidfile=",
            "headroom",
            f"--listen=tcp:{port}:interface=127.0.0.1",
            f"--openai-upstream={upstream_url}",
            f"--anthropic-upstream={upstream_url}",
            "--drain-timeout=2",
            *args,
        ],
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        cwd="/",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(log_fd)
    daemon = Daemon(process, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert daemon.alive(), daemon.log_text()
        try:
            if daemon.healthz() == 200:
                return daemon
        except OSError:
            time.sleep(0.1)
    daemon.stop()
    raise AssertionError("daemon never became healthy")


def echo_upstream(request: Request, recorded: Any) -> bytes:
    """The default fake answer: marks itself and says what it received."""
    request.setHeader(b"content-type", b"application/json")
    request.setHeader(b"x-fake-upstream", b"1")
    return json.dumps({"sha256": sha256(recorded.body), "uri": recorded.uri.decode("latin-1")}).encode()


@dataclass
class RawResponse:
    status: int
    phrase: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    complete: bool  # the body framing ended cleanly

    def header(self, name: bytes) -> list[bytes]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def parse_response(data: bytes) -> RawResponse:
    """Parse one HTTP/1.1 response as received on the wire (Content-Length or chunked)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    _, status, phrase = (lines[0].split(b" ", 2) + [b""])[:3]
    headers = [tuple(part.strip() for part in line.split(b":", 1)) for line in lines[1:]]
    response = RawResponse(int(status), phrase, headers, b"", False)  # type: ignore[arg-type]
    length = response.header(b"content-length")
    if length:
        response.body = rest[: int(length[0])]
        response.complete = len(rest) >= int(length[0])
    elif b"chunked" in b"".join(response.header(b"transfer-encoding")).lower():
        body = b""
        while True:
            size_line, sep, rest = rest.partition(b"\r\n")
            if not sep:
                break
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                response.complete = True
                break
            body += rest[:size]
            rest = rest[size + 2 :]
        response.body = body
    else:
        response.body = rest
        response.complete = True
    return response


class RawClient(Protocol):
    """Sends bytes as given and records every byte received, with arrival times."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.arrivals: list[tuple[float, bytes]] = []
        self.closed: Deferred[float] = Deferred()
        self.close_reason: Failure | None = None

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.arrivals.append((time.monotonic(), data))

    def connectionLost(self, reason: Failure) -> None:
        self.close_reason = reason
        self.closed.callback(time.monotonic())

    async def wait_closed(self, timeout: float) -> bool:
        """True if the peer closed within `timeout`; aborts the connection otherwise."""
        deadline = time.monotonic() + timeout
        while not self.closed.called and time.monotonic() < deadline:
            await sleep(0.02)
        if not self.closed.called:
            self.transport.abortConnection()
            return False
        return True


async def connect(port: int) -> RawClient:
    client = RawClient()
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
    return client


async def exchange(port: int, payload: bytes, timeout: float = 10.0) -> bytes:
    """Send `payload` (which should ask for `Connection: close`) and return all bytes until close."""
    client = await connect(port)
    client.transport.write(payload)
    await client.wait_closed(timeout)
    return bytes(client.received)


def request_bytes(
    method: str,
    target: bytes,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> bytes:
    head = [b"%s %s HTTP/1.1" % (method.encode(), target), b"Host: 127.0.0.1", b"Connection: close"]
    head += [name + b": " + value for name, value in headers or []]
    if body or method in ("POST", "PUT", "PATCH"):
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def send(port: int, method: str, target: bytes, body: bytes = b"", **kwargs: Any) -> RawResponse:
    return parse_response(await exchange(port, request_bytes(method, target, body, **kwargs)))


def assert_provider_error(response: RawResponse, target: bytes, statuses: set[int]) -> None:
    """A proxy-made error: the status expected and the JSON shape the provider's SDKs parse."""
    assert response.status in statuses, (response.status, response.body[:300])
    assert response.header(b"x-fake-upstream") == []
    assert response.header(b"content-type") == [b"application/json"]
    payload = response.json()
    path = target.split(b"?", 1)[0]
    if path == b"/v1/messages" or path.startswith(b"/v1/messages/"):
        assert payload["type"] == "error" and payload["error"]["type"] == "api_error", payload
        assert isinstance(payload["error"]["message"], str)
    else:
        assert payload["error"]["type"] == "proxy_error", payload
        assert isinstance(payload["error"]["message"], str) and isinstance(payload["error"]["code"], str)


@dataclass
class Traffic:
    """Normal requests sent while something hostile is going on, and what came back."""

    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    async def one(self, port: int) -> None:
        started = time.monotonic()
        response = await send(port, "POST", b"/v1/chat/completions", b'{"model": "m", "messages": []}')
        self.seconds.append(time.monotonic() - started)
        self.statuses.append(response.status)
