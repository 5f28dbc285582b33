"""What the upstream receives is what the client sent, and back again (SHA-256)."""

from __future__ import annotations

import gzip
import os

import pytest
import pytest_twisted
import treq
from http_fakes import http_client, sha256
from twisted.internet import reactor
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers
from twisted.web.server import Request

JSON_HEADERS = {b"content-type": [b"application/json"], b"authorization": [b"Bearer sk-test-123456789"]}

EXOTIC_JSON = (
    b'{"model":"gpt-4o","temperature":1.0,"big":1e400,"neg":-0,"x":1.50E+3,'
    b'"s":"caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\/","dup":1,"dup":2,  "messages" : [ ] }'
)

BODIES = {
    "small_json": (b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}', JSON_HEADERS),
    "five_mb": (b'{"blob":"' + b"x" * (5 * 1024 * 1024) + b'"}', JSON_HEADERS),
    "exotic_json": (EXOTIC_JSON, JSON_HEADERS),
    "not_json": (os.urandom(4096), {b"content-type": [b"application/octet-stream"]}),
    "gzip_json": (
        gzip.compress(b'{"messages":[{"role":"tool","content":"' + b"a" * 5000 + b'"}]}'),
        {b"content-type": [b"application/json"], b"content-encoding": [b"gzip"]},
    ),
}


@pytest.mark.parametrize("name", sorted(BODIES))
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/files"])
@pytest_twisted.ensureDeferred
async def test_request_body_reaches_upstream_unchanged(proxy, upstream, name: str, path: str) -> None:
    body, headers = BODIES[name]
    response = await http_client().post(proxy.url + path, data=body, headers=headers)
    await treq.content(response)
    assert response.code == 200
    assert sha256(upstream.last.body) == sha256(body)
    assert upstream.last.header(b"content-length") == [str(len(body)).encode()]


@pytest_twisted.ensureDeferred
async def test_get_with_query_string_is_forwarded_verbatim(proxy, upstream) -> None:
    response = await http_client().get(proxy.url + "/v1/models?limit=5&after=a%2Fb&x=%E2%9C%93")
    await treq.content(response)
    assert upstream.last.method == b"GET"
    assert upstream.last.uri == b"/v1/models?limit=5&after=a%2Fb&x=%E2%9C%93"
    assert upstream.last.body == b""


@pytest_twisted.ensureDeferred
async def test_response_body_reaches_client_unchanged(proxy, upstream) -> None:
    payload = os.urandom(3 * 1024 * 1024)

    def binary(request: Request, recorded: object) -> bytes:
        request.setHeader(b"content-type", b"application/octet-stream")
        return payload

    upstream.handler = binary
    response = await http_client().get(proxy.url + "/v1/files/file-1/content")
    received = await treq.content(response)
    assert sha256(received) == sha256(payload)


@pytest_twisted.ensureDeferred
async def test_compressed_response_passes_as_opaque_bytes(proxy, upstream) -> None:
    payload = gzip.compress(b'{"data": [' + b"1," * 10000 + b"1]}")

    def gzipped(request: Request, recorded: object) -> bytes:
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-encoding", b"gzip")
        return payload

    upstream.handler = gzipped
    agent = Agent(reactor)  # a bare Agent: treq would decode gzip on the client side
    headers = Headers({b"accept-encoding": [b"gzip"]})
    response = await agent.request(b"GET", (proxy.url + "/v1/models").encode(), headers)
    received = await readBody(response)
    assert response.headers.getRawHeaders(b"content-encoding") == [b"gzip"]
    assert sha256(received) == sha256(payload)
    assert upstream.last.header(b"accept-encoding") == [b"gzip"]


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500, 529])
@pytest_twisted.ensureDeferred
async def test_upstream_errors_are_returned_verbatim(proxy, upstream, status: int) -> None:
    body = b'{"error": {"message": "upstream says no", "type": "invalid_request_error"}}'

    def failing(request: Request, recorded: object) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"retry-after", b"7")
        return body

    upstream.handler = failing
    response = await http_client().post(proxy.url + "/v1/chat/completions", data=b"{}", headers=JSON_HEADERS)
    assert response.code == status
    assert await treq.content(response) == body
    assert response.headers.getRawHeaders(b"retry-after") == [b"7"]


@pytest_twisted.ensureDeferred
async def test_content_length_of_upstream_response_is_kept(proxy, upstream) -> None:
    response = await http_client().get(proxy.url + "/v1/models")
    await treq.content(response)
    assert response.length == 12  # Twisted exposes Content-Length as .length, not as a header
