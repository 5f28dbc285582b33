"""Graceful restart under load on a socket-activated listener, as `systemctl restart` with headroom.socket.

The test plays systemd: it owns the listening socket and hands it to
process A as fd 3; under a steady stream of requests it starts process B
on the same socket, then sends A SIGTERM. A stops accepting, finishes
what it holds, and exits; the queue of the shared socket never closes, so
no client sees a refusal.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from load_support import HOST, post, shared_listener, start_socket_activated, start_upstream, wait_http

BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}'


def open_keep_alive(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=30)
    sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    return sock


def slow_request_on(sock: socket.socket, delay: float) -> bytes:
    head = (
        f"POST /v1/chat/completions?delay={delay} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(BODY)}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock.sendall(head + BODY)
    return head


def read_all(sock: socket.socket) -> bytes:
    raw = bytearray()
    while chunk := sock.recv(65536):
        raw += chunk
    sock.close()
    return bytes(raw)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_handover_between_two_processes_refuses_nothing_and_finishes_in_flight() -> None:
    upstream, upstream_port = start_upstream()
    listener = shared_listener()
    port = listener.getsockname()[1]
    spawned = [upstream]
    try:
        a = start_socket_activated(listener, upstream_port, "--drain-timeout=20")
        spawned.append(a)
        wait_http(f"http://{HOST}:{port}/readyz", a.process, a.log_text)
        # Keep-alive connections accepted by A (the only process yet); the slow requests go on them later.
        held_by_a = [open_keep_alive(port) for _ in range(4)]

        outcomes: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def steady_client() -> None:
            while not stop.is_set():
                try:
                    status, body = post(port, "/v1/chat/completions?delay=0.02", BODY, timeout=30)
                    outcome = "ok" if status == 200 and json.loads(body)["bytes"] == len(BODY) else f"status {status}"
                except (OSError, ValueError) as error:
                    outcome = repr(error)
                with lock:
                    outcomes.append(outcome)

        clients = [threading.Thread(target=steady_client) for _ in range(6)]
        for thread in clients:
            thread.start()
        try:
            time.sleep(1.0)
            b = start_socket_activated(listener, upstream_port)
            spawned.append(b)
            deadline = time.monotonic() + 60
            while '"event":"ready"' not in b.log_text().replace(" ", "") and time.monotonic() < deadline:
                assert b.process.poll() is None, b.log_text()
                time.sleep(0.1)
            for sock in held_by_a:
                slow_request_on(sock, 2.0)
            time.sleep(0.3)
            a.process.send_signal(15)
            handed_over_at = len(outcomes)
            a.process.wait(timeout=40)
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=40)

        slow = [read_all(sock) for sock in held_by_a]
        failures = [outcome for outcome in outcomes if outcome != "ok"]
        assert not failures, failures[:5]
        assert len(outcomes) > handed_over_at + 20, "too few requests after the handover to show anything"
        for raw in slow:
            assert raw.startswith(b"HTTP/1.1 200"), raw[:200]
            assert json.loads(raw.partition(b"\r\n\r\n")[2])["bytes"] == len(BODY)
        served_by_a = a.finished_requests("/v1/chat/completions")
        served_by_b = b.finished_requests("/v1/chat/completions")
        assert sum(1 for event in served_by_a if event["duration_ms"] >= 2000) == 4
        assert served_by_a and served_by_b
        assert any(event["event"] == "draining" for event in a.events())
        assert a.process.returncode in (0, -15), a.log_text()[-2000:]
    finally:
        for process in reversed(spawned):
            process.stop()
            process.remove_log()
        listener.close()
