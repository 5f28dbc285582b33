"""Scale-out: several processes on one listening socket, and compression deterministic across them."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from load_support import (
    HOST,
    Spawned,
    free_port,
    post,
    shared_listener,
    start_socket_activated,
    start_upstream,
    wait_http,
)

CORPUS = Path(__file__).resolve().parents[3] / "bench" / "corpus"
SAMPLES = {
    "json": ("dpkg_packages_json.txt", "Which versions of openssl and zlib1g are installed?"),
    "log": ("pytest_failures.txt", "Which tests failed and why?"),
    "search": ("grep_deprecationwarning.txt", "Where is DeprecationWarning emitted?"),
    "diff": ("git_diff_requests_tests.txt", "How did the tests change?"),
}


def chat_body(kind: str) -> bytes:
    name, question = SAMPLES[kind]
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "run", "arguments": "{}"}}
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": "call_1", "content": (CORPUS / name).read_text()},
    ]
    return json.dumps({"model": "gpt-4o", "messages": messages}).encode()


@pytest.fixture(scope="module")
def two_processes() -> Iterator[tuple[int, list[tuple[Spawned, int]]]]:
    """Two daemons on one inherited socket (like N instances of headroom@.service), each also on its own port."""
    upstream, upstream_port = start_upstream()
    listener = shared_listener()
    shared_port = listener.getsockname()[1]
    daemons = []
    try:
        for _ in range(2):
            own_port = free_port()
            daemon = start_socket_activated(listener, upstream_port, f"--listen=tcp:{own_port}:interface={HOST}")
            daemons.append((daemon, own_port))
        for daemon, own_port in daemons:
            wait_http(f"http://{HOST}:{own_port}/readyz", daemon.process, daemon.log_text)
        yield shared_port, daemons
    finally:
        for daemon, _ in daemons:
            daemon.stop()
            daemon.remove_log()
        upstream.stop()
        upstream.remove_log()
        listener.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_two_processes_send_byte_identical_upstream_bodies(two_processes, kind: str) -> None:
    _, daemons = two_processes
    body = chat_body(kind)
    seen = []
    for _, own_port in daemons:
        status, answer = post(own_port, "/v1/chat/completions", body)
        assert status == 200
        seen.append(json.loads(answer))
    assert seen[0]["sha256"] == seen[1]["sha256"]
    assert seen[0]["bytes"] < len(body), "the sample was not compressed, so the test shows nothing"


@pytest.mark.slow
def test_both_processes_accept_from_the_shared_socket(two_processes) -> None:
    shared_port, daemons = two_processes
    failures: list[str] = []

    def client() -> None:
        for _ in range(40):
            try:
                status, _ = post(shared_port, "/v1/chat/completions?delay=0.01", b"{}")
                if status != 200:
                    failures.append(f"status {status}")
            except OSError as error:
                failures.append(repr(error))

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    served = [len(daemon.finished_requests("/v1/chat/completions")) for daemon, _ in daemons]
    assert all(count > 0 for count in served), served
    assert sum(served) >= 320


@pytest.mark.slow
@pytest.mark.parametrize("agent", ["codex", "claude-code"])
def test_a_session_alternating_between_two_daemons_reaches_the_upstream_as_one_process_would(
    two_processes, agent: str
) -> None:
    """Behind a load balancer without affinity, every turn is what one process would have sent,
    so the upstream history never changes between turns (no prefix break, see tests/compress/stable)."""
    from stable_support import session

    from headroom_twisted.compress.blocks.policy import compress_block
    from headroom_twisted.compress.pipeline import compress_request

    _, daemons = two_processes
    for number, turn in enumerate(session(agent)):
        status, answer = post(daemons[number % 2][1], turn.path, turn.body)
        assert status == 200
        expected = compress_request(turn.body, turn.endpoint, compress_block, mode="stable").body
        assert json.loads(answer)["sha256"] == hashlib.sha256(expected).hexdigest()
