"""Hostile and odd request bodies, targets and headers against the real daemon.

Each case ends in a clear error or a faithful passthrough (the SHA-256 the
upstream received equals the one the client sent), and the daemon keeps
serving. The daemon starts with a soft RLIMIT_NOFILE of 1024, the usual
shell default, as `twistd -n headroom` run by hand would get.
"""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
import pytest_twisted
from hardening_support import (
    Daemon,
    RawClient,
    Traffic,
    assert_provider_error,
    connect,
    exchange,
    parse_response,
    send,
    sha256,
    sleep,
    start_daemon,
)
from twisted.internet.defer import Deferred, gatherResults

COMPRESSIBLE = [b"/v1/chat/completions", b"/v1/messages", b"/v1/responses"]


@pytest.fixture(scope="module")
def daemon(fake) -> Daemon:
    running = start_daemon(fake.url, nofile_soft=1024)
    yield running
    running.stop()


def _no_tracebacks(daemon: Daemon) -> None:
    text = daemon.log_text()
    assert "RecursionError" not in text
    assert "Traceback" not in text


async def _passthrough(daemon: Daemon, fake, target: bytes, body: bytes, request_id: str | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if request_id:
        headers.append((b"x-request-id", request_id.encode()))
    response = await send(daemon.port, "POST", target, body, headers=headers)
    assert response.status == 200, response.body[:300]
    assert response.header(b"x-fake-upstream") == [b"1"]
    assert response.json()["sha256"] == sha256(body)
    assert fake.last.body == body


def _decisions(daemon: Daemon, request_id: str) -> list[dict]:
    return [
        e for e in daemon.events() if e.get("event") == "compression_decision" and e.get("request_id") == request_id
    ]


MALFORMED = [
    b"",
    b"{",
    b'{"messages": [',
    b'{"messages": [{"role": "user", "content": "hi"}]',
    b'{"a": 1,}',
    b"[1, 2, 3]]",
    b"{'single': 'quotes'}",
    b'{"a": "unterminated}',
    b'{"a": tru}',
    b"\x00\x01\x02\xff" * 64,
    b'{"a": 1} trailing',
    b"\xef\xbb\xbf{}",
    b"   \n\t  ",
    b'{"a": "\\x41"}',
    b'{"a": "tab\tinside"}',
]


@pytest.mark.parametrize("target", COMPRESSIBLE)
@pytest_twisted.ensureDeferred
async def test_malformed_json_is_forwarded_untouched(daemon: Daemon, fake, target: bytes) -> None:
    for body in MALFORMED:
        await _passthrough(daemon, fake, target, body)


@pytest_twisted.ensureDeferred
async def test_json_nested_100000_levels_is_passthrough_without_recursion_error(daemon: Daemon, fake) -> None:
    depth = 100_000
    bodies = [
        b"[" * depth + b"]" * depth,
        b'{"a":' * depth + b"1" + b"}" * depth,
        b'{"model": "gpt-4o", "messages": [{"role": "tool", "tool_call_id": "x", "content": '
        + b"[" * depth
        + b"]" * depth
        + b"}]}",
        b'{"model": "m", "messages": [{"role": "user", "content": "'
        + b"x" * 4000
        + b'"}], "meta": '
        + b"[" * depth
        + b"]" * depth
        + b"}",
    ]
    for index, body in enumerate(bodies):
        request_id = f"deep-{index}-{uuid.uuid4().hex}"
        await _passthrough(daemon, fake, b"/v1/chat/completions", body, request_id)
        await sleep(0.05)
        decisions = _decisions(daemon, request_id)
        assert [d["decision"] for d in decisions] == ["passthrough"], decisions
        assert decisions[0]["reason"] == "too_deep", decisions
    _no_tracebacks(daemon)


def _tool_log(marker: str) -> str:
    lines = [f"[{i:04d}] compiling module_{i % 7}.c ... ok {marker}" for i in range(400)]
    lines[200] = f"error: undefined reference to `frobnicate' {marker}"
    return "\n".join(lines)


def _chat_body(tool_literal: bytes, extra: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """A chat body whose latest tool message content is `tool_literal`; returns (head, literal, tail)."""
    head = (
        b'{"model": "gpt-4o", ' + extra + b'"messages": [{"role": "user", "content": "why does the build fail?"}, '
        b'{"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", '
        b'"function": {"name": "build", "arguments": "{}"}}]}, '
        b'{"role": "tool", "tool_call_id": "c1", "content": '
    )
    tail = b"}]}"
    return head, tool_literal, tail


async def _faithful_outside_live_zone(daemon: Daemon, fake, head: bytes, literal: bytes, tail: bytes) -> str:
    """Send; the upstream body equals the sent one except inside the tool literal. Returns the decision."""
    body = head + literal + tail
    request_id = f"lz-{uuid.uuid4().hex}"
    response = await send(
        daemon.port,
        "POST",
        b"/v1/chat/completions",
        body,
        headers=[(b"content-type", b"application/json"), (b"x-request-id", request_id.encode())],
    )
    assert response.status == 200 and response.header(b"x-fake-upstream") == [b"1"]
    received = fake.last.body
    assert response.json()["sha256"] == sha256(received)
    assert received.startswith(head) and received.endswith(tail)
    await sleep(0.05)
    decisions = _decisions(daemon, request_id)
    assert len(decisions) == 1, decisions
    if received != body:
        assert decisions[0]["decision"] == "compressed"
        json.loads(received)  # a rewritten body is still JSON
    return str(decisions[0]["decision"])


@pytest_twisted.ensureDeferred
async def test_invalid_utf8_and_lone_surrogates_in_strings(daemon: Daemon, fake) -> None:
    small = [
        b'{"messages": [{"role": "user", "content": "bad \xff\xfe bytes"}]}',
        b'{"messages": [{"role": "user", "content": "overlong \xc0\xaf"}]}',
        b'{"messages": [{"role": "user", "content": "encoded surrogate \xed\xa0\x80"}]}',
        b'{"messages": [{"role": "user", "content": "lone \\ud800 high"}]}',
        b'{"messages": [{"role": "user", "content": "lone \\udfff low"}]}',
        b'{"messages": [{"role": "user", "content": "reversed \\udc00\\ud800"}]}',
        b'{"messages": [{"role": "user", "content": "truncated \\ud8"}]}',
    ]
    for target in COMPRESSIBLE:
        for body in small:
            await _passthrough(daemon, fake, target, body)
    # A large, compressible tool output carrying the same defects.
    for defect in (b"\\ud800", b"\\udfff", b"\xff\xfe", b"\xed\xa0\x80"):
        text = json.dumps(_tool_log("x")).encode().replace(b"x", defect, 50)
        head, literal, tail = _chat_body(text)
        await _faithful_outside_live_zone(daemon, fake, head, literal, tail)
        # ...and outside the live zone, where it must survive even when the block is rewritten.
        head, literal, tail = _chat_body(json.dumps(_tool_log("y")).encode(), b'"note": "' + defect + b'", ')
        decision = await _faithful_outside_live_zone(daemon, fake, head, literal, tail)
        if defect.startswith(b"\\"):
            assert decision == "compressed"  # an escaped lone surrogate elsewhere does not stop compression
    _no_tracebacks(daemon)


EXOTIC_NUMBERS = b'"n": [1e400, -1e400, 1E+2, 1.0, -0, -0.0, 0e0, 1.5e-99999, 123456789012345678901234567890, %s]' % (
    b"9" * 5000
)


@pytest_twisted.ensureDeferred
async def test_huge_numbers_and_exotic_spellings(daemon: Daemon, fake) -> None:
    for target in COMPRESSIBLE:
        for body in (
            b"{" + EXOTIC_NUMBERS + b"}",
            b'{"n": NaN, "m": Infinity, "o": -Infinity}',
            b'{"temperature": 1e400, "messages": []}',
            b'{"a": 0x10, "b": 01, "c": .5, "d": +1}',
            b'{"n": ' + b"1" * 100_000 + b"}",
            b'{"n": 1e' + b"9" * 1000 + b"}",
        ):
            await _passthrough(daemon, fake, target, body)
    # Exotic spellings next to a compressible block stay byte for byte.
    head, literal, tail = _chat_body(
        json.dumps(_tool_log("z")).encode(), b'"temperature": 1.0E+0, "x": -0.0, "y": 1e400, '
    )
    assert await _faithful_outside_live_zone(daemon, fake, head, literal, tail) == "compressed"
    head, literal, tail = _chat_body(json.dumps(_tool_log("z")).encode(), EXOTIC_NUMBERS + b", ")
    # A 5,000-digit integer is past Python's int parsing limit: the body is not compressed, only forwarded.
    assert await _faithful_outside_live_zone(daemon, fake, head, literal, tail) == "passthrough"
    _no_tracebacks(daemon)


@pytest_twisted.ensureDeferred
async def test_duplicate_keys_never_rewrite_the_wrong_copy(daemon: Daemon, fake) -> None:
    first = json.dumps(_tool_log("first")).encode()
    second = json.dumps(_tool_log("second")).encode()
    duplicated = [
        # Two `messages` arrays: parsers disagree on which one counts.
        b'{"model": "gpt-4o", "messages": [{"role": "tool", "tool_call_id": "a", "content": '
        + first
        + b'}], "messages": [{"role": "tool", "tool_call_id": "a", "content": '
        + second
        + b"}]}",
        # Two `content` keys in the live message.
        b'{"model": "gpt-4o", "messages": [{"role": "tool", "tool_call_id": "a", "content": '
        + first
        + b', "content": '
        + second
        + b"}]}",
        # Two `role` keys: one parser sees a tool message, another a user message.
        b'{"model": "gpt-4o", "messages": [{"role": "assistant", "role": "tool", "tool_call_id": "a", "content": '
        + first
        + b"}]}",
    ]
    for body in duplicated:
        await _passthrough(daemon, fake, b"/v1/chat/completions", body)
    await _passthrough(daemon, fake, b"/v1/messages", b'{"a": 1, "a": 2, "a": {"a": 3, "a": 4}}')
    _no_tracebacks(daemon)


@pytest_twisted.ensureDeferred
async def test_absolute_form_uri_and_forged_host_never_reach_another_host(daemon: Daemon, fake) -> None:
    canary = socket.socket()
    canary.bind(("127.0.0.1", 0))
    canary.listen(16)
    canary.setblocking(False)
    elsewhere = b"127.0.0.1:%d" % canary.getsockname()[1]
    try:
        cases = [
            (b"http://" + elsewhere + b"/v1/models?x=1", [], b"/v1/models?x=1"),
            (b"https://" + elsewhere + b"/v1/messages", [], b"/v1/messages"),
            (b"HTTP://" + elsewhere, [], b"/"),
            (b"http://" + elsewhere + b"?q=1", [], b"/?q=1"),
            (b"/v1/models", [(b"Host", elsewhere)], b"/v1/models"),
            (b"http://user:pw@" + elsewhere + b"/v1/models", [(b"Host", elsewhere)], b"/v1/models"),
            (b"//" + elsewhere + b"/v1/models", [(b"Host", elsewhere)], b"//" + elsewhere + b"/v1/models"),
            (b"/@" + elsewhere + b"/v1/models", [], b"/@" + elsewhere + b"/v1/models"),
            (b"http://" + elsewhere + b"@127.0.0.2/v1/models", [], b"/v1/models"),
            (b"/v1/models#@" + elsewhere, [(b"Host", b"")], b"/v1/models"),  # a fragment is never sent
        ]
        for target, headers, expected_uri in cases:
            fake.requests.clear()
            payload = b"GET " + target + b" HTTP/1.1\r\n"
            if not headers:
                payload += b"Host: " + elsewhere + b"\r\n"
            payload += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
            payload += b"Connection: close\r\n\r\n"
            response = parse_response(await exchange(daemon.port, payload))
            assert response.status == 200 and response.header(b"x-fake-upstream") == [b"1"], target
            assert [r.uri for r in fake.requests] == [expected_uri], target
            assert fake.last.header(b"host") == [fake.url.split("//")[1].encode()]
        fake.requests.clear()
        for target in (b"127.0.0.1:443", elsewhere):
            payload = b"CONNECT " + target + b" HTTP/1.1\r\nHost: " + elsewhere + b"\r\nConnection: close\r\n\r\n"
            response = parse_response(await exchange(daemon.port, payload))
            assert_provider_error(response, b"/", {400})
        # `*` is not a path: refused in the provider's shape, never forwarded.
        response = await send(daemon.port, "CONNECT", b"*")
        assert_provider_error(response, b"/", {400})
        assert fake.requests == []
        with pytest.raises(BlockingIOError):
            canary.accept()
    finally:
        canary.close()


INJECTIONS = [
    b"X-Test: a\nX-Injected: bare-lf\r\n",
    b"X-Test: a\rX-Injected: bare-cr\r\n",
    b"X-Test: a\r\n X-Injected: folded\r\n",
    b"X-Test: a\r\n\tX-Injected: folded-tab\r\n",
    b"X-Test: a\x00X-Injected: nul\r\n",
    b"X-Test: a%0d%0aX-Injected: encoded\r\n",
    b"X Test: a\r\n",
    b"X-Test : a\r\nX-Injected-Name\r\n",
]


@pytest.mark.parametrize("injection", INJECTIONS)
@pytest_twisted.ensureDeferred
async def test_crlf_in_header_values_never_splits_an_upstream_header(daemon: Daemon, fake, injection: bytes) -> None:
    payload = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        + injection
        + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    )
    response = parse_response(await exchange(daemon.port, payload))
    assert response.status in (200, 400), response
    for recorded in fake.requests:
        names = [name.lower() for name, _ in recorded.headers.getAllRawHeaders()]
        assert b"x-injected" not in names and b"x-injected-name" not in names, names
        assert recorded.uri == b"/v1/chat/completions"
        for _, values in recorded.headers.getAllRawHeaders():
            assert all(b"\r" not in value and b"\n" not in value for value in values)
    assert all(b"x-injected" not in name.lower() for name, _ in response.headers)


SMUGGLING = [
    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    b"Content-Length: 0\r\nContent-Length: 45\r\n\r\n",
    b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    b"Content-Length: +4\r\n\r\n",
    b"Content-Length: 4 \r\n\r\n",
]


@pytest.mark.parametrize("framing", SMUGGLING)
@pytest_twisted.ensureDeferred
async def test_ambiguous_body_framing_never_smuggles_a_second_request(daemon: Daemon, fake, framing: bytes) -> None:
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    payload = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + framing + smuggled
    await exchange(daemon.port, payload, timeout=3)
    assert all(recorded.uri != b"/smuggled" for recorded in fake.requests), [r.uri for r in fake.requests]


@pytest_twisted.ensureDeferred
async def test_crlf_in_request_target_is_never_a_header(daemon: Daemon, fake) -> None:
    for target in (b"/v1/models%0d%0aX-Injected:%201", b"/v1/models?a=%0D%0AX-Injected: 1"):
        payload = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        response = parse_response(await exchange(daemon.port, payload))
        assert response.status in (200, 400)
    for recorded in fake.requests:
        assert b"x-injected" not in [name.lower() for name, _ in recorded.headers.getAllRawHeaders()]


@pytest_twisted.ensureDeferred
async def test_1000_idle_connections_do_not_stop_service(daemon: Daemon, fake) -> None:
    """Half the idle clients said nothing, half stopped mid-request-line."""
    idle: list[RawClient] = []
    try:
        for index in range(1000):
            client = await connect(daemon.port)
            if index % 2:
                client.transport.write(b"POST /v1/chat/compl")
            idle.append(client)
        await sleep(0.5)
        traffic = Traffic()
        for _ in range(2):
            await gatherResults([Deferred.fromCoroutine(traffic.one(daemon.port)) for _ in range(25)])
        assert traffic.statuses == [200] * 50
        assert daemon.healthz() == 200
        assert sum(client.closed.called for client in idle) == 0, "idle clients were dropped early"
        assert daemon.open_fds() >= 1000
    finally:
        for client in idle:
            client.transport.abortConnection()
    await sleep(0.5)
    deadline = time.monotonic() + 10
    while daemon.open_fds() > 200 and time.monotonic() < deadline:
        await sleep(0.1)
    assert daemon.open_fds() < 200, "client sockets leaked"
