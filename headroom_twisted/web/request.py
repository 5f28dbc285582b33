"""The request class and Site: body size enforced while reading.

Twisted reads the whole request body before rendering. This Request keeps
it in memory (it is compressed from memory anyway) and refuses a body over
`--max-body-bytes` as soon as it knows: on the Content-Length before any
body byte, or on the running count of a chunked body. The refusal is a 413
that closes the connection; the upstream is never contacted. A
Content-Length no HTTP message can have (2**64 or more) is a 400 the same way,
and a body that does not fit the site's `BodyBudget` (all bodies in flight)
a 503 with ``Retry-After``.
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

from headroom_twisted.endpoints import path_of, provider_for_path
from headroom_twisted.upstream.headers import client_request_id
from headroom_twisted.web.budget import RETRY_AFTER_SECONDS, BodyBudget
from headroom_twisted.web.errors import proxy_error_body

if TYPE_CHECKING:
    from headroom_twisted.metrics import ProxyMetrics

RefusedHook = Callable[["ProxyRequest", int, str, int], None]
"""Called with (request, status, reason, bytes announced or read) when a request is refused unread."""

MAX_CONTENT_LENGTH = 2**64 - 1
"""Past this a Content-Length is no length any peer can send (RFC 9110 leaves
the bound to implementations; 64 bits is what every HTTP stack uses)."""


class ProxyRequest(Request):
    """A Request that buffers its body in memory up to the site's limit."""

    # No text/html default on proxied responses that carry no Content-Type.
    defaultContentType = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.monotonic()
        self.body_bytes_received = 0
        self.budgeted = 0
        self._budget: BodyBudget | None = None
        self.refused = False
        self.request_id: bytes | None = None  # set only when the proxy answers before the exchange starts

    def gotLength(self, length: int | None) -> None:
        self.content = io.BytesIO()
        self.notifyFinish().addBoth(self._release_budget)
        if length is not None and length > MAX_CONTENT_LENGTH:
            message = "Content-Length is larger than any body can be"
            self._refuse(400, b"Bad Request", message, "bad_content_length", "bad_content_length", 0)
        elif length is not None and length > self._limit():
            self._refuse_too_large(length)
        elif length:
            self._take_budget(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.body_bytes_received += len(data)
        if self.body_bytes_received > self._limit():
            self._refuse_too_large(self.body_bytes_received)
            return
        if self.body_bytes_received > self.budgeted and not self._take_budget(self.body_bytes_received - self.budgeted):
            return
        self.content.write(data)

    def process(self) -> None:
        if self.refused:
            return  # already answered; the connection is closing
        super().process()

    def _handleStar(self) -> None:
        """`OPTIONS *` and `GET *` go to the resource tree like any other target.

        Twisted answers them itself (an empty 200 or 405) before any resource
        sees them, so they were neither logged nor in the provider's error
        shape; the proxy resource refuses a target that is not a path.
        """
        try:
            self.render(self.site.getResourceFor(self))
        except BaseException:
            self.processingFailed(Failure())

    def write(self, data: bytes) -> None:
        """Say `Connection: close` on a response whose connection will close after it.

        The proxy replaces the response headers with the upstream's, which
        drops the header Twisted set when the client asked to close; and a
        draining site closes keep-alive connections after their response.
        """
        if not self.startedWriting and self.channel is not None and not self.channel.persistent:
            self.responseHeaders.setRawHeaders(b"connection", [b"close"])
        super().write(data)

    def body(self) -> bytes:
        """The whole body; the buffer is dropped, so the bytes are held once, not twice."""
        data = self.content.getvalue()
        self.content = io.BytesIO()
        return data

    def _limit(self) -> int:
        site = self.channel.site
        limit: int = site.max_body_bytes
        return limit

    def _take_budget(self, size: int) -> bool:
        budget: BodyBudget | None = getattr(self.channel.site, "body_budget", None)
        if budget is None:
            return True
        if budget.reserve(size):
            self.budgeted += size
            self._budget = budget  # the channel is gone by the time the request is done
            return True
        message = "the proxy holds too many request bodies right now; retry shortly (--max-inflight-body-bytes)"
        self._refuse(503, b"Service Unavailable", message, "proxy_overloaded", "body_budget_exceeded", size)
        return False

    def _release_budget(self, result: object) -> None:
        if self._budget is not None:
            self._budget.release(self.budgeted)
        self._budget = None
        self.budgeted = 0
        self.content = io.BytesIO()  # the body is no longer needed: let it go now, not with the request

    def _refuse_too_large(self, size: int) -> None:
        limit = self._limit()
        message = f"request body exceeds the proxy's limit of {limit} bytes (--max-body-bytes)"
        self._refuse(413, b"Payload Too Large", message, "request_too_large", "body_too_large", size)

    def _refuse(self, status: int, phrase: bytes, message: str, code: str, reason: str, size: int) -> None:
        """Answer straight on the wire and close, before the body is read.

        Twisted has no hook for answering before the body arrives, so the
        response is written on the transport directly. The request path is
        only on the channel at this point (its private `_path`). The request
        loses its `Expect` header, so Twisted does not invite the body with a
        `100 Continue` after the refusal.
        """
        self.refused = True
        self.requestHeaders.removeHeader(b"expect")
        target = getattr(self.channel, "_path", b"/") or b"/"
        body = proxy_error_body(provider_for_path(path_of(target)), message, code)
        request_id = client_request_id(self.requestHeaders) or uuid.uuid4().hex.encode()
        self.request_id = request_id
        retry_after = b"Retry-After: %d\r\n" % RETRY_AFTER_SECONDS if status == 503 else b""
        head = (
            b"HTTP/1.1 %d %s\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n"
            b"%s"
            b"x-request-id: %s\r\n\r\n" % (status, phrase, len(body), retry_after, request_id)
        )
        transport = self.channel.transport
        transport.write(head + body)
        transport.loseConnection()
        hook: RefusedHook | None = getattr(self.channel.site, "on_refused", None)
        if hook is not None:
            hook(self, status, reason, size)


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
        self.site.channels.add(self)
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
        self.site.channels.discard(self)
        if self.site.metrics is not None:
            self.site.metrics.connection_closed()

    def checkPersistence(self, request: Request, version: bytes) -> bool:
        """No keep-alive while the site drains: each connection closes after its response."""
        persistent: bool = super().checkPersistence(request, version)
        return persistent and not self.site.draining

    def stop_keeping_alive(self) -> None:
        """Close after the response in progress, or now if there is none."""
        self.persistent = False
        if not self.requests and self.transport is not None:
            self.transport.loseConnection()

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

    It knows its open connections so a stopping service can end keep-alive:
    once draining, idle connections close at once and busy ones after their
    response, which says `Connection: close`.
    """

    requestFactory = ProxyRequest
    protocol = ProxyChannel
    noisy = False

    def __init__(
        self,
        root: IResource,
        *,
        max_body_bytes: int,
        body_budget: BodyBudget | None = None,
        on_refused: RefusedHook | None = None,
        metrics: ProxyMetrics | None = None,
    ) -> None:
        super().__init__(root, timeout=CLIENT_IDLE_TIMEOUT, parsePOSTFormSubmission=False)
        self.max_body_bytes = max_body_bytes
        self.body_budget = body_budget
        self.on_refused = on_refused
        self.metrics = metrics
        self.channels: set[ProxyChannel] = set()
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True
        for channel in list(self.channels):
            channel.stop_keeping_alive()

    def log(self, request: Request) -> None:
        """Access logging is done by the proxy's own `request_finished` events."""
