"""Proxy-made errors in provider shape, timeouts, body limits, disconnects, backpressure."""

from __future__ import annotations

import json
import socket
import time

import pytest
import pytest_twisted
import treq
from http_fakes import http_client, proxy_service
from structlog.testing import capture_logs
from test_headers_and_routing import raw_request
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.client import ResponseFailed
from twisted.web.server import NOT_DONE_YET, Request

from headroom_twisted.config import build_config


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")],
)
@pytest_twisted.ensureDeferred
async def test_unreachable_upstream_is_502_in_provider_shape(make_proxy, path: str, shape: str) -> None:
    dead = closed_port_url()
    proxy = make_proxy(openai_upstream=dead, anthropic_upstream=dead)
    response = await http_client().post(proxy.url + path, data=b"{}")
    payload = json.loads(await treq.content(response))
    assert response.code == 502
    if shape == "openai":
        assert payload["error"]["type"] == "proxy_error"
        assert payload["error"]["code"] == "upstream_unreachable"
        assert "unreachable" in payload["error"]["message"]
    else:
        assert payload["type"] == "error"
        assert payload["error"]["type"] == "api_error"
        assert "unreachable" in payload["error"]["message"]


def stall_forever(request: Request, recorded: object) -> object:
    return NOT_DONE_YET


@pytest_twisted.ensureDeferred
async def test_stalled_upstream_is_504(make_proxy, upstream) -> None:
    upstream.handler = stall_forever
    idle_timeout = 0.3
    proxy = make_proxy(idle_timeout=str(idle_timeout))
    started = time.monotonic()
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b"{}")
    payload = json.loads(await treq.content(response))
    assert response.code == 504
    assert payload["error"]["code"] == "upstream_timeout"
    assert time.monotonic() - started < 20 * idle_timeout


@pytest_twisted.ensureDeferred
async def test_body_over_limit_by_content_length_is_413_without_upstream(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="1KiB")
    received = await raw_request(
        proxy.url,
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Content-Length: 2000000000\r\n\r\n{"short": 1}',
    )
    assert received.startswith(b"HTTP/1.1 413")
    body = json.loads(received.split(b"\r\n\r\n", 1)[1])
    assert body["type"] == "error" and "limit" in body["error"]["message"]
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_chunked_body_over_limit_is_413_without_upstream(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="1KiB")
    chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
    received = await raw_request(
        proxy.url,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3,
    )
    assert received.startswith(b"HTTP/1.1 413")
    assert json.loads(received.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_too_large"
    assert upstream.requests == []


@pytest_twisted.ensureDeferred
async def test_body_at_limit_is_forwarded(make_proxy, upstream) -> None:
    proxy = make_proxy(max_body_bytes="1KiB")
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b"x" * 1024)
    await treq.content(response)
    assert response.code == 200 and len(upstream.last.body) == 1024


@pytest_twisted.ensureDeferred
async def test_client_disconnect_closes_upstream_before_any_timeout_could(make_proxy, upstream) -> None:
    """The upstream holds the stream open: only the client's leaving, propagated at once, ends it
    before the proxy's idle timeout would."""
    idle_timeout = 10.0
    proxy = make_proxy(idle_timeout=str(idle_timeout))
    upstream_closed: Deferred[float] = Deferred()

    def hold(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"text/event-stream")
        request.write(b"data: first\n\n")
        request.notifyFinish().addBoth(lambda _: upstream_closed.callback(time.monotonic()))
        return NOT_DONE_YET

    upstream.handler = hold
    port = int(proxy.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    await deferLater(reactor, 0.3, lambda: None)
    assert len(upstream.requests) == 1
    sock.close()
    closed_at_wall = time.monotonic()
    closed_at = await upstream_closed
    assert closed_at - closed_at_wall < idle_timeout / 2


@pytest_twisted.ensureDeferred
async def test_slow_client_pauses_upstream_reads(proxy, upstream) -> None:
    """A client that stops reading must not make the proxy buffer a 200 MB response."""
    total = 200 * 1024 * 1024
    chunk = b"z" * 65536
    sent = {"bytes": 0}

    class Pump:
        def __init__(self, request: Request) -> None:
            self.request = request
            self.paused = False

        def pauseProducing(self) -> None:
            self.paused = True

        def resumeProducing(self) -> None:
            self.paused = False
            while not self.paused and sent["bytes"] < total:
                self.request.write(chunk)
                sent["bytes"] += len(chunk)
            if sent["bytes"] >= total:
                self.request.unregisterProducer()
                self.request.finish()

        def stopProducing(self) -> None:
            self.paused = True

    def big(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", b"%d" % total)
        pump = Pump(request)
        request.registerProducer(pump, True)
        reactor.callLater(0, pump.resumeProducing)
        return NOT_DONE_YET

    upstream.handler = big
    port = int(proxy.url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /v1/files/big/content HTTP/1.1\r\nHost: x\r\n\r\n")
    await deferLater(reactor, 2.0, lambda: None)
    stalled_at = sent["bytes"]
    await deferLater(reactor, 1.0, lambda: None)
    assert sent["bytes"] == stalled_at, "upstream kept sending while the client read nothing"
    assert stalled_at < 48 * 1024 * 1024, f"proxy let {stalled_at} bytes through to a client that reads nothing"
    sock.setblocking(False)
    drained = 0
    deadline = time.monotonic() + 60
    while drained < total + 100 and time.monotonic() < deadline:
        try:
            data = sock.recv(1 << 20)
            if not data:
                break
            drained += len(data)
        except BlockingIOError:
            await deferLater(reactor, 0.001, lambda: None)
    sock.close()
    assert sent["bytes"] == total
    assert drained > total  # the whole body (plus headers) arrived once the client read


@pytest_twisted.ensureDeferred
async def test_upstream_cut_mid_body_is_not_a_clean_end_for_the_client(proxy, upstream) -> None:
    def cut(request: Request, recorded: object) -> object:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", b"1000")
        request.write(b'{"partial": ')
        reactor.callLater(0.05, request.channel.transport.abortConnection)
        return NOT_DONE_YET

    upstream.handler = cut
    response = await http_client().get(proxy.url + "/v1/models")
    with pytest.raises(ResponseFailed):  # the client learns the body is incomplete
        await treq.content(response)


@pytest_twisted.ensureDeferred
async def test_request_abandoned_during_compression_is_logged_as_such_not_as_200(upstream) -> None:
    """The client leaves while its body is still being compressed: no status ever reached it."""
    compressing: Deferred[bytes] = Deferred()

    def compression_stage(method: bytes, route: object, headers: object, body: bytes, log: object) -> Deferred[bytes]:
        return compressing

    config = build_config(
        {"openai-upstream": upstream.url, "anthropic-upstream": upstream.url}, ["tcp:0:interface=127.0.0.1"], {}
    )
    service = proxy_service(config, body_stage=compression_stage)
    service.startService()
    try:
        with capture_logs() as logs:
            sock = socket.create_connection(("127.0.0.1", service.ports[0].getHost().port))
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-request-id: gone-1\r\nContent-Length: 2\r\n\r\n{}"
            )
            for _ in range(1000):
                if any(entry["event"] == "request_finished" for entry in logs):
                    break
                if sock is not None and len(service.in_flight):
                    sock.close()
                    sock = None
                await deferLater(reactor, 0.01, lambda: None)
        [finished] = [entry for entry in logs if entry["event"] == "request_finished"]
        assert (finished["status"], finished["outcome"], finished["client_disconnected"]) == (
            None,
            "client_disconnected",
            True,
        )
        compressing.callback(b"{}")
        assert upstream.requests == [], "an abandoned request went upstream"
    finally:
        await service.stopService()
