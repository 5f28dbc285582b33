"""Header rules for both directions of the proxy.

Hop-by-hop headers describe one connection, not the message, so they are
never forwarded; neither is any header the `Connection` header names.
Everything else (credentials, provider versions and betas, repeated
headers) passes through untouched, with two exceptions nginx makes too: a
request header whose name has an underscore is dropped (a CGI-style server
behind the upstream reads `Transfer_Encoding` as `Transfer-Encoding`, a
smuggling path), and a response header value holding a NUL never reaches
the client (Twisted's `Headers` already turn CR and LF, an obsolete line
folding, into spaces).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from twisted.web.http_headers import Headers

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",  # pre-standard Connection of old clients; never end-to-end
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Recomputed or answered by the proxy itself rather than forwarded:
# Host names the upstream, Content-Length follows the (maybe rewritten) body,
# Expect was already answered when the body was read.
_REQUEST_RECOMPUTED = frozenset({b"host", b"content-length", b"expect"})
_REQUEST_ID_SHAPE = re.compile(rb"^[A-Za-z0-9._:@/+=-]{1,200}$")


def _connection_named(headers: Headers) -> frozenset[bytes]:
    names: set[bytes] = set()
    for value in headers.getRawHeaders(b"connection", []):
        names.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return frozenset(names)


def _end_to_end(headers: Headers, extra_dropped: frozenset[bytes]) -> Iterator[tuple[bytes, Sequence[bytes]]]:
    dropped = HOP_BY_HOP | _connection_named(headers) | extra_dropped
    for name, values in headers.getAllRawHeaders():
        if name.lower() not in dropped:
            yield name, values


def client_request_id(headers: Headers) -> bytes | None:
    """The client's `x-request-id`, if it has a sane shape (it is echoed and logged)."""
    value = headers.getRawHeaders(b"x-request-id", [None])[0]
    if value is not None and _REQUEST_ID_SHAPE.match(value):
        return value
    return None


def upstream_request_headers(
    client_headers: Headers,
    *,
    request_id: bytes,
    client_ip: bytes,
    proto: bytes,
) -> Headers:
    """The headers sent upstream: end-to-end headers plus X-Forwarded-* and the request id."""
    forwarded = Headers()
    for name, values in _end_to_end(client_headers, _REQUEST_RECOMPUTED):
        lowered = name.lower()
        if lowered.startswith(b"x-headroom-") or lowered.startswith(b"x-forwarded-") or lowered == b"x-request-id":
            continue
        if b"_" in name:
            continue
        forwarded.setRawHeaders(name, list(values))
    prior_for = client_headers.getRawHeaders(b"x-forwarded-for", [])
    forwarded.setRawHeaders(b"X-Forwarded-For", [b", ".join([*prior_for, client_ip])])
    forwarded.setRawHeaders(b"X-Forwarded-Proto", [proto])
    client_host = client_headers.getRawHeaders(b"host", [None])[0]
    if client_host is not None:
        forwarded.setRawHeaders(b"X-Forwarded-Host", [client_host])
    forwarded.setRawHeaders(b"X-Request-Id", [request_id])
    return forwarded


def client_response_headers(upstream_headers: Headers, *, request_id: bytes) -> Headers:
    """The headers sent back to the client: end-to-end upstream headers plus our ids.

    The provider's own id (`request-id` or `x-request-id`) is also returned as
    `headroom-upstream-request-id`, since the client's `x-request-id` slot now
    carries the proxy's id.
    """
    returned = Headers()
    for name, values in _end_to_end(upstream_headers, frozenset()):
        if name.lower() == b"x-request-id":
            continue
        safe = [value for value in values if b"\x00" not in value]
        if safe:
            returned.setRawHeaders(name, safe)
    provider_id = upstream_headers.getRawHeaders(b"request-id") or upstream_headers.getRawHeaders(b"x-request-id")
    if provider_id:
        returned.setRawHeaders(b"headroom-upstream-request-id", [provider_id[0]])
    returned.setRawHeaders(b"x-request-id", [request_id])
    return returned
