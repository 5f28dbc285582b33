"""The request class and Site: body size enforced while reading.

Twisted reads the whole request body before rendering. This Request keeps
it in memory (it is compressed from memory anyway) and refuses a body over
`--max-body-bytes` as soon as it knows: on the Content-Length before any
body byte, or on the running count of a chunked body. The refusal is a 413
that closes the connection; the upstream is never contacted. A
Content-Length no HTTP message can have (2**64 or more) is a 400 the same way,
and a body that does not fit the site's `BodyBudget` (all bodies in flight)
a 503 with ``Retry-After``. Each refusal is logged here, as the one
`request_finished` event of a request that never reached the proxy resource.

The channel also bounds how slowly a client may send (`ClientLimits`), on
the site's reactor, so tests drive every deadline with a `Clock`.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from structlog.typing import FilteringBoundLogger
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.resource import IResource
from twisted.web.server import Request, Site

from headroom_twisted.endpoints import label_for_path, path_of, provider_for_path
from headroom_twisted.upstream.headers import client_request_id
from headroom_twisted.web.budget import RETRY_AFTER_SECONDS, BodyBudget
from headroom_twisted.web.errors import proxy_error_body

if TYPE_CHECKING:
    from headroom_twisted.metrics import ProxyMetrics

MAX_CONTENT_LENGTH = 2**64 - 1
"""Past this a Content-Length is no length any peer can send (RFC 9110 leaves
the bound to implementations; 64 bits is what every HTTP stack uses)."""


class ProxyRequest(Request):
    """A Request that buffers its body in memory up to the site's limit."""

    # No text/html default on proxied responses that carry no Content-Type.
    defaultContentType = None

    channel: ProxyChannel
    site: ProxySite
    content: io.BytesIO

    def __init__(self, channel: ProxyChannel, *args: object, **kwargs: object) -> None:
        super().__init__(channel, *args, **kwargs)
        self.started = time.monotonic()
        self.body_bytes_received = 0
        self.budgeted = 0
        self._budget: BodyBudget | None = None
        self._budget_client = ""
        self.refused = False
        self._line_method = b""
        self._line_target = b"/"
        self._line_version = b"HTTP/1.1"

    def request_line_received(self, method: bytes, target: bytes, version: bytes = b"HTTP/1.1") -> None:
        """The method, target and version of the request line, known to the channel before the body is read.

        Twisted gives a Request these only in `requestReceived`, after the
        whole body; a refusal happens while the body is read, and still
        needs them for the error's shape and the log.
        """
        self._line_method = method
        self._line_target = target
        self._line_version = version

    def gotLength(self, length: int | None) -> None:
        self.content = io.BytesIO()
        self.notifyFinish().addBoth(self._release_budget)
        self._budget_client = self._client_host()  # once: every body chunk reserves in its name
        site = self.channel.site
        hosts = self.requestHeaders.getRawHeaders(b"host", [])
        if len(hosts) > 1 or (not hosts and self._line_version == b"HTTP/1.1"):
            # RFC 9112 section 3.2: exactly one Host, or 400; two could be read differently upstream.
            message = "a request carries at most one Host header, and an HTTP/1.1 request needs one"
            self._refuse(400, b"Bad Request", message, "bad_host", "bad_host", size=0, limit=site.max_body_bytes)
        elif length is not None and length > MAX_CONTENT_LENGTH:
            message = "Content-Length is larger than any body can be"
            reason = "bad_content_length"
            self._refuse(400, b"Bad Request", message, reason, reason, size=0, limit=site.max_body_bytes)
        elif length is not None and length > site.max_body_bytes:
            self._refuse_too_large(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.refused:
            return
        self.body_bytes_received += len(data)
        if self.body_bytes_received > self.channel.site.max_body_bytes:
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

    def _take_budget(self, size: int) -> bool:
        """Reserve ``size`` more bytes of the site's body budget (see `BodyBudget`), or refuse with 503."""
        budget = self.channel.site.body_budget
        if budget is None:
            return True
        if budget.reserve(size, self._budget_client):
            self.budgeted += size
            self._budget = budget  # the channel is gone by the time the request is done
            return True
        message = "the proxy holds too many request bodies right now; retry shortly (--max-inflight-body-bytes)"
        status, phrase, code, reason = 503, b"Service Unavailable", "proxy_overloaded", "body_budget_exceeded"
        self._refuse(status, phrase, message, code, reason, size=self.body_bytes_received, limit=budget.max_bytes)
        return False

    def _client_host(self) -> str:
        peer = self.channel.transport.getPeer() if self.channel.transport is not None else None
        return str(getattr(peer, "host", ""))

    def _release_budget(self, result: object) -> None:
        if self._budget is not None:
            self._budget.release(self.budgeted, self._budget_client)
        self._budget = None
        self.budgeted = 0
        self.content = io.BytesIO()  # the body is no longer needed: let it go now, not with the request

    def refuse_too_slow(self, min_rate: float) -> None:
        """The body fell behind the minimum rate: 408 in the provider's shape, logged, then closed.

        A client that trickles its body holds a connection (and, for what it
        has sent, a share of the body budget); cutting it silently left it
        guessing why.
        """
        message = f"request body arrived slower than {min_rate:g} bytes a second; the proxy stopped waiting"
        self._refuse(
            408,
            b"Request Timeout",
            message,
            "request_timeout",
            "body_too_slow",
            size=self.body_bytes_received,
            limit=int(min_rate),
        )

    def _refuse_too_large(self, size: int) -> None:
        limit = self.channel.site.max_body_bytes
        message = f"request body exceeds the proxy's limit of {limit} bytes (--max-body-bytes)"
        self._refuse(413, b"Payload Too Large", message, "request_too_large", "body_too_large", size=size, limit=limit)

    def _refuse(
        self, status: int, phrase: bytes, message: str, code: str, reason: str, *, size: int, limit: int
    ) -> None:
        """Answer straight on the wire and close, before the body is read; log it as finished.

        Twisted has no hook for answering before the body arrives, so the
        response is written on the transport directly. The request loses its
        `Expect` header, so Twisted does not invite the body with a `100
        Continue` after the refusal. `size` is the size announced or read,
        `limit` the one it broke.
        """
        self.refused = True
        self.requestHeaders.removeHeader(b"expect")
        path = path_of(self._line_target)
        provider = provider_for_path(path)
        body = proxy_error_body(provider, message, code)
        request_id = client_request_id(self.requestHeaders) or uuid.uuid4().hex.encode()
        retry_after = b"Retry-After: %d\r\n" % RETRY_AFTER_SECONDS if status == 503 else b""
        head = (
            b"HTTP/1.1 %d %s\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n"
            b"%s"
            b"x-request-id: %s\r\n\r\n" % (status, phrase, len(body), retry_after, request_id)
        )
        site = self.channel.site
        transport = self.channel.transport
        assert transport is not None  # the body is being read from it
        transport.write(head + body)
        transport.loseConnection()
        if site.metrics is not None:
            seconds = time.monotonic() - self.started
            site.metrics.request_finished(provider.value, label_for_path(path), self._line_method, status, seconds)
        site.request_log.warning(
            "request_finished",
            request_id=request_id.decode("ascii"),
            method=self._line_method.decode("latin-1"),
            path=path.decode("utf-8", "replace"),
            provider=provider.value,
            status=status,
            outcome="refused",
            reason=reason,
            bytes_in=size,
            limit=limit,
        )


@dataclass(frozen=True)
class ClientLimits:
    """How slowly a client may send, and how long it may say nothing; the defaults are the daemon's.

    Twisted's idle timer restarts on every byte, so without the first three
    a client trickling one byte a second (slowloris) would hold a connection
    open forever.
    """

    headers_deadline: float = 30.0
    """Seconds a client has, from the first byte of a request, to send its
    whole request line and headers."""

    body_grace: float = 30.0
    body_min_rate: float = 500.0
    """A request body gets `body_grace` seconds plus one second per
    `body_min_rate` bytes received (Apache's mod_reqtimeout rule). The body
    limit is 100 MiB, so a body trickled a byte at a time would otherwise
    hold a connection for years; a slow but steady upload is never cut."""

    idle_timeout: float = 75.0
    """Seconds a client connection may sit idle (between requests, or
    mid-request without sending a byte) before it is closed. Twisted's
    default is 12 hours; it does not apply while a response is being
    relayed."""


class ProxyChannel(HTTPChannel):
    """An HTTP/1.1 channel that reports its client connection opening and closing.

    Used directly instead of Twisted's HTTP/2-negotiating wrapper: the proxy
    speaks HTTP/1.1 only (no h2 installed), and this saves a proxy hop per call.
    It also closes a connection whose request headers take longer than the
    site's `ClientLimits.headers_deadline` to arrive, or whose body falls
    below `ClientLimits.body_min_rate`, however steadily the bytes trickle
    in. Its timers run on the site's reactor (Twisted sets `callLater`).
    """

    site: ProxySite
    _headers_deadline: IDelayedCall | None = None
    _body_deadline: IDelayedCall | None = None
    _body_waited = 0.0
    _reading_body = False
    _awaiting_request_line = True
    _head_refused = False
    _transfer_encoding_seen = False

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
        if self._head_refused:
            return
        if self._headers_deadline is None and not self._handlingRequest and not self._reading_body:
            self._headers_deadline = self.callLater(self.site.limits.headers_deadline, self._headers_too_slow)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._cancel_headers_deadline()
        self._transfer_encoding_seen = False
        self._reading_body = True
        request = self.requests[-1]
        if isinstance(request, ProxyRequest):
            # HTTPChannel keeps the request line in `_command` and `_path` from
            # `lineReceived` until `allContentReceived` hands them to the
            # request. They are read here, in the subclass and once: the one
            # moment they are surely this request's (headers complete, body
            # not begun), so nothing reaches into the channel later, when a
            # pipelined request may have replaced them.
            request.request_line_received(self._command, self._path, self._version)
        limits = self.site.limits
        if self.length != 0:
            self._body_waited = limits.body_grace
            self._body_deadline = self.callLater(limits.body_grace, self._check_body_rate)
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._reading_body = False
        self._awaiting_request_line = True  # the next line is the next request's
        self._cancel_body_deadline()
        super().allContentReceived()

    def lineReceived(self, line: bytes) -> None:
        """Headers past Twisted's size limit get 431, not Twisted's bare 400 (RFC 6585)."""
        if self._head_refused:
            return
        if self._receivedHeaderSize + len(line) > self.totalHeadersSize:
            self._refuse_head(431, b"Request Header Fields Too Large")
            return
        if line:
            self._awaiting_request_line = False
        super().lineReceived(line)

    def headerReceived(self, line: bytes) -> bool:
        """One ``Transfer-Encoding`` at most, and only ``chunked`` (RFC 9112 section 6.1, as nginx does).

        Twisted takes ``identity`` and a second line silently; two proxies
        that read such a request differently are how requests get smuggled.
        An unknown coding is 501, a repeated header 400.
        """
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"transfer-encoding":
            if self._transfer_encoding_seen:
                self._refuse_head(400, b"Bad Request")
                return False
            if value.strip(b" \t").lower() != b"chunked":
                self._refuse_head(501, b"Not Implemented")
                return False
            self._transfer_encoding_seen = True
        accepted: bool = super().headerReceived(line)
        return accepted

    def lineLengthExceeded(self, line: bytes) -> None:
        """A request line past the line limit is 414 (URI Too Long); any other line, 431."""
        if self._awaiting_request_line:
            self._refuse_head(414, b"URI Too Long")
        else:
            self._refuse_head(431, b"Request Header Fields Too Large")

    def _refuse_head(self, status: int, phrase: bytes) -> None:
        """Refuse a request by its head (too large, a bad Transfer-Encoding), as Twisted refuses a bad one:
        answer with ``status`` and close, reading nothing more."""
        assert self.transport is not None  # the head is being read from it
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % (status, phrase))
        self.loseConnection()
        self._head_refused = True

    def connectionLost(self, reason: Failure = connectionDone) -> None:
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
        limits = self.site.limits
        received = getattr(self.requests[-1], "body_bytes_received", 0) if self.requests else 0
        allowed = limits.body_grace + received / limits.body_min_rate
        if self._body_waited >= allowed:
            self._body_deadline = None
            request = self.requests[-1] if self.requests else None
            if isinstance(request, ProxyRequest) and not request.refused:
                request.refuse_too_slow(limits.body_min_rate)
            else:
                self.timeoutConnection()
            return
        self._body_deadline = self.callLater(allowed - self._body_waited, self._check_body_rate)
        self._body_waited = allowed

    def _cancel_body_deadline(self) -> None:
        if self._body_deadline is not None and self._body_deadline.active():
            self._body_deadline.cancel()
        self._body_deadline = None


class ProxySite(Site):
    """A Site with the body limits, the client limits, our Request class, and no access log of its own.

    `request_finished` events replace Twisted's access log. Form bodies are
    not parsed into `request.args`: the proxy forwards bodies, never reads
    form fields, and Twisted's parse (the `email` package, on every POST with
    a Content-Type) was the largest single cost of a small request.

    It knows its open connections so a stopping service can end keep-alive:
    once draining, idle connections close at once and busy ones after their
    response, which says `Connection: close`. The channels' timers run on
    `reactor`, which is required so that no deadline falls back on the global one.
    """

    requestFactory = ProxyRequest
    protocol = ProxyChannel  # type: ignore[assignment]  # not Twisted's HTTP/2-negotiating wrapper, see ProxyChannel
    noisy = False

    def __init__(
        self,
        root: IResource,
        *,
        reactor: IReactorTime,
        max_body_bytes: int,
        body_budget: BodyBudget | None = None,
        metrics: ProxyMetrics | None = None,
        limits: ClientLimits = ClientLimits(),
    ) -> None:
        super().__init__(root, timeout=limits.idle_timeout, parsePOSTFormSubmission=False, reactor=reactor)
        self.max_body_bytes = max_body_bytes
        self.body_budget = body_budget
        self.metrics = metrics
        self.limits = limits
        self.request_log: FilteringBoundLogger = structlog.get_logger("headroom.proxy")  # for refusals
        self.channels: set[ProxyChannel] = set()
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True
        for channel in list(self.channels):
            channel.stop_keeping_alive()

    def log(self, request: http.Request) -> None:
        """Access logging is done by the proxy's own `request_finished` events."""
