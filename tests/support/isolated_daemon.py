"""Run `twistd headroom` in a loopback-only network namespace under strace, and report.

Run as ``unshare --net python isolated_daemon.py WAIT_SECONDS`` (root, or a
user namespace that allows it). Inside, it brings ``lo`` up, starts a fake
upstream on loopback, starts the daemon under ``strace -f`` with a fresh
``HOME`` and without the telemetry opt-outs in its environment (so the
package itself must set them), sends one compressible request, waits, stops
the daemon, and prints one JSON report on stdout: every ``connect``/``sendto``
to a non-loopback address, every file under ``HOME``, every stdout or stderr
line that is not JSON, and the upstream's view of the request.

Standard library only: it runs in a namespace where nothing else is set up.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_support import TWISTD_MAIN  # noqa: E402
from tool_outputs import service_health_chat  # noqa: E402

_INET_CALL = re.compile(r"(connect|sendto|sendmsg)\(.*sa_family=AF_INET6?, (?P<address>[^}]*)\}")
_LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.')


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every POST with a small chat completion and remembers the body size."""

    received: list[int] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Upstream.received.append(len(body))
        reply = b'{"id":"c1","object":"chat.completion","choices":[],"usage":{"prompt_tokens":1}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the report is the only output."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("daemon never became ready")


def main(wait_seconds: float) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    home = Path(tempfile.mkdtemp(prefix="headroom-home-"))
    trace = home.parent / f"{home.name}.strace"
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if k not in ("ORT_DISABLE_TELEMETRY", "DO_NOT_TRACK")}
    environment.update(HOME=str(home), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    daemon = subprocess.Popen(
        [
            *("strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)),
            *(sys.executable, "-c", TWISTD_MAIN, "-n", "--pidfile=", "headroom"),
            f"--listen=tcp:{port}:interface=127.0.0.1",
            f"--openai-upstream=http://127.0.0.1:{upstream.server_address[1]}",
            "--threads=1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment,
        cwd=home,
    )
    try:
        _wait_ready(port, time.monotonic() + 120)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=service_health_chat(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            status = response.status
        time.sleep(wait_seconds)
    finally:
        # strace would only detach on SIGTERM; the daemon it started is its one child.
        traced = Path(f"/proc/{daemon.pid}/task/{daemon.pid}/children").read_text().split()[0]
        os.kill(int(traced), signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    lines = [line for line in (out + err).decode("utf-8", "replace").splitlines() if line.strip()]
    report = {
        "status": status,
        "upstream_bodies": _Upstream.received,
        "sent_body": len(service_health_chat()),
        "outbound": [line for line in trace.read_text().splitlines() if _is_outbound(line)],
        "files_under_home": sorted(str(p.relative_to(home)) for p in home.rglob("*")),
        "non_json_lines": [line for line in lines if not _is_json_object(line)],
        "log_lines": len(lines),
    }
    print(json.dumps(report))


def _is_outbound(strace_line: str) -> bool:
    match = _INET_CALL.search(strace_line)
    return match is not None and not _LOOPBACK.search(match.group("address"))


def _is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


if __name__ == "__main__":
    main(float(sys.argv[1]))
