"""A hypothesis fuzz of request methods, targets and bodies through the real daemon.

Every answer is either the upstream's (which echoes the SHA-256 of the body
it received, so passthrough is checked byte for byte) or an error the proxy
made, in the JSON shape of the provider the path belongs to; the daemon
stays up. The fake upstream here runs on its own thread with the standard
library's HTTP server, because pytest-twisted runs test bodies on the reactor
greenlet, where a hypothesis example cannot wait on a Deferred.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from hardening_support import (
    Daemon,
    assert_provider_error,
    parse_response,
    request_bytes,
    sha256,
    start_daemon,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

COMPRESSIBLE = ["/v1/chat/completions", "/v1/messages", "/v1/responses"]
LOCAL = {b"/healthz", b"/readyz", b"/metrics", b"/stats", b"/dashboard"}


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        _Echo.received.append((self.command, self.path, body))
        payload = json.dumps({"sha256": sha256(body), "uri": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-fake-upstream", "1")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def daemon() -> Daemon:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    running = start_daemon(f"http://127.0.0.1:{server.server_address[1]}")
    yield running
    running.stop()
    server.shutdown()
    server.server_close()


def blocking_send(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(payload)
        received = bytearray()
        while chunk := sock.recv(65536):
            received += chunk
    return bytes(received)


_TARGET_CHARS = st.sampled_from(
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/?%")
)
_PATHS = st.one_of(
    st.builds(lambda tail: "/" + tail, st.text(_TARGET_CHARS, max_size=60)),
    st.builds(lambda base, tail: base + tail, st.sampled_from(COMPRESSIBLE), st.text(_TARGET_CHARS, max_size=20)),
    st.sampled_from([*COMPRESSIBLE, "/v1/messages/count_tokens", "/v1/messages?beta=true"]),
    st.text(_TARGET_CHARS, min_size=1, max_size=20),
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
_BODIES = st.one_of(
    st.binary(max_size=400),
    st.builds(lambda doc: json.dumps(doc).encode(), _JSON),
    st.builds(lambda doc: json.dumps(doc, ensure_ascii=False).encode()[:400], _JSON),
    st.builds(
        lambda content, role: json.dumps({"model": "m", "messages": [{"role": role, "content": content}]}).encode(),
        st.text(max_size=200),
        st.sampled_from(["user", "tool", "assistant", 7]),
    ),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]), path=_PATHS, body=_BODIES)
def test_fuzz_every_answer_is_the_upstreams_or_a_provider_shaped_error(
    daemon: Daemon, method: str, path: str, body: bytes
) -> None:
    target = path.encode()
    if target.split(b"?", 1)[0] in LOCAL:
        return
    _Echo.received.clear()
    payload = request_bytes(method, target, body, headers=[(b"content-type", b"application/json")])
    response = parse_response(blocking_send(daemon.port, payload))
    assert response.complete
    if response.header(b"x-fake-upstream"):
        assert response.status == 200
        assert response.json()["sha256"] == sha256(body), (method, path)
        assert [(m, b) for m, _, b in _Echo.received] == [(method, body)]
    else:
        assert_provider_error(response, target, {400})
        assert _Echo.received == []
    assert daemon.alive()


def test_daemon_still_healthy_after_the_fuzz(daemon: Daemon) -> None:
    assert daemon.healthz() == 200
    assert "Traceback" not in daemon.log_text()
