"""The request class and Site: body size enforced while reading.

Twisted reads the whole request body before rendering. This Request keeps
it in memory (it is compressed from memory anyway) and refuses a body over
`--max-body-bytes` as soon as it knows: on the Content-Length before any
body byte, or on the running count of a chunked body. The refusal is a 413
that closes the connection; the upstream is never contacted.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IDelayedCall, ITCPTransport
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from headroom_twisted.upstream.headers import client_request_id
from headroom_twisted.upstream.routing import provider_for_path
from headroom_twisted.web.errors import proxy_error_body

if TYPE_CHECKING:
    from headroom_twisted.metrics import ProxyMetrics

TooLargeHook = Callable[["ProxyRequest", int], None]


class ProxyRequest(Request):
    """A Request that buffers its body in memory up to the site's limit."""

    # No text/html default on proxied responses that carry no Content-Type.
    defaultContentType = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        self.body_bytes_received = 0
        self.rejected_too_large = False
        self.request_id: bytes | None = None  # set only when the proxy answers before the exchange starts

    def gotLength(self, length: int | None) -> None:
        self.content = io.BytesIO()
        if length is not None and length > self._limit():
            self._reject_too_large(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.rejected_too_large:
            return
        self.body_bytes_received += len(data)
        if self.body_bytes_received > self._limit():
            self._reject_too_large(self.body_bytes_received)
            return
        self.content.write(data)

    def process(self) -> None:
        if self.rejected_too_large:
            return  # already answered; the connection is closing
        super().process()

    def body(self) -> bytes:
        return self.content.getvalue()

    def _limit(self) -> int:
        site = self.channel.site
        limit: int = site.max_body_bytes
        return limit

    def _reject_too_large(self, size: int) -> None:
        """Answer 413 straight on the wire and close, before the body is read.

        Twisted has no hook for answering before the body arrives, so the
        response is written on the transport directly. The request path is
        only on the channel at this point (its private `_path`).
        """
        self.rejected_too_large = True
        target = getattr(self.channel, "_path", b"/") or b"/"
        provider = provider_for_path(target.split(b"?", 1)[0])
        limit = self._limit()
        body = proxy_error_body(
            provider,
            f"request body exceeds the proxy's limit of {limit} bytes (--max-body-bytes)",
            "request_too_large",
        )
        request_id = client_request_id(self.requestHeaders) or uuid.uuid4().hex.encode()
        self.request_id = request_id
        head = (
            b"HTTP/1.1 413 Payload Too Large\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n"
            b"x-request-id: %s\r\n\r\n" % (len(body), request_id)
        )
        transport = self.channel.transport
        transport.write(head + body)
        transport.loseConnection()
        hook: TooLargeHook | None = getattr(self.channel.site, "on_too_large", None)
        if hook is not None:
            hook(self, size)


REQUEST_HEADERS_DEADLINE = 30.0
"""Seconds a client has, from the first byte of a request, to send its whole
request line and headers. Twisted's idle timer restarts on every byte, so a
client trickling one byte a second (slowloris) would hold a connection open
forever without this total deadline. Read when each request starts."""

REQUEST_BODY_GRACE = 30.0
REQUEST_BODY_MIN_RATE = 500.0
"""A request body gets `REQUEST_BODY_GRACE` seconds plus one second per
`REQUEST_BODY_MIN_RATE` bytes received (Apache's mod_reqtimeout rule). The
idle timer restarts on every byte and the body limit is 100 MiB, so a body
trickled a byte at a time would otherwise hold a connection for years; a slow
but steady upload is never cut. Read when each body starts."""


class ProxyChannel(HTTPChannel):
    """An HTTP/1.1 channel that reports its client connection opening and closing.

    Used directly instead of Twisted's HTTP/2-negotiating wrapper: the proxy
    speaks HTTP/1.1 only (no h2 installed), and this saves a proxy hop per call.
    It also closes a connection whose request headers take longer than
    `REQUEST_HEADERS_DEADLINE` to arrive, or whose body falls below
    `REQUEST_BODY_MIN_RATE`, however steadily the bytes trickle in.
    """

    site: ProxySite
    _headers_deadline: IDelayedCall | None = None
    _body_deadline: IDelayedCall | None = None
    _body_waited = 0.0
    _reading_body = False

    def connectionMade(self) -> None:
        super().connectionMade()
        if ITCPTransport.providedBy(self.transport):
            # Each streamed chunk leaves when written instead of waiting for the
            # client's (maybe delayed) ACK of the previous one (Nagle).
            self.transport.setTcpNoDelay(True)
        if self.site.metrics is not None:
            self.site.metrics.connection_opened()

    def dataReceived(self, data: bytes) -> None:
        """The first byte of a request (not body, not a pipelined one held back) starts its deadline."""
        if self._headers_deadline is None and not self._handlingRequest and not self._reading_body:
            self._headers_deadline = self.callLater(REQUEST_HEADERS_DEADLINE, self._headers_too_slow)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel_headers_deadline()
        self._reading_body = True
        if self.length != 0:
            self._body_waited = REQUEST_BODY_GRACE
            self._body_deadline = self.callLater(REQUEST_BODY_GRACE, self._check_body_rate)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._reading_body = False
        self._cancel_body_deadline()
        super().allContentReceived()

    def connectionLost(self, reason: Failure) -> None:
        self._cancel_headers_deadline()
        self._cancel_body_deadline()
        super().connectionLost(reason)
        if self.site.metrics is not None:
            self.site.metrics.connection_closed()

    def _headers_too_slow(self) -> None:
        self._headers_deadline = None
        self.timeoutConnection()

    def _cancel_headers_deadline(self) -> None:
        if self._headers_deadline is not None and self._headers_deadline.active():
            self._headers_deadline.cancel()
        self._headers_deadline = None

    def _check_body_rate(self) -> None:
        """Close if the body is behind its allowance, else check again when the allowance runs out."""
        received = getattr(self.requests[-1], "body_bytes_received", 0) if self.requests else 0
        allowed = REQUEST_BODY_GRACE + received / REQUEST_BODY_MIN_RATE
        if self._body_waited >= allowed:
            self._body_deadline = None
            self.timeoutConnection()
            return
        self._body_deadline = self.callLater(allowed - self._body_waited, self._check_body_rate)
        self._body_waited = allowed

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None and self._body_deadline.active():
            self._body_deadline.cancel()
        self._body_deadline = None


CLIENT_IDLE_TIMEOUT = 75.0
"""Seconds a client connection may sit idle (between requests, or mid-request
without sending a byte) before it is closed. Twisted's default is 12 hours;
it does not apply while a response is being relayed."""


class ProxySite(Site):
    """A Site with the body limit, our Request class, and no access log of its own.

    `request_finished` events replace Twisted's access log. Form bodies are
    not parsed into `request.args`: the proxy forwards bodies, never reads
    form fields, and Twisted's parse (the `email` package, on every POST with
    a Content-Type) was the largest single cost of a small request.
    """

    requestFactory = ProxyRequest
    protocol = ProxyChannel
    noisy = False

    def __init__(
        self,
        root: IResource,
        *,
        max_body_bytes: int,
        on_too_large: TooLargeHook | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        super().__init__(root, timeout=CLIENT_IDLE_TIMEOUT, parsePOSTFormSubmission=False)
        self.max_body_bytes = max_body_bytes
        self.on_too_large = on_too_large
        self.metrics = metrics

    def log(self, request: Request) -> None:
        """Access logging is done by the proxy's own `request_finished` events."""
