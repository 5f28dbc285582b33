"""Header rules that protect what sits behind the upstream and in front of the client."""

from __future__ import annotations

from twisted.web.http_headers import Headers

from headroom_twisted.upstream.headers import client_response_headers, upstream_request_headers


def test_a_request_header_with_an_underscore_in_its_name_is_not_forwarded() -> None:
    """A CGI-style server reads `Transfer_Encoding` as `Transfer-Encoding`: a smuggling path."""
    client = Headers({b"Transfer_Encoding": [b"chunked"], b"X_Api_Key": [b"k"], b"Authorization": [b"Bearer sk-x"]})
    sent = upstream_request_headers(client, request_id=b"r1", client_ip=b"127.0.0.1", proto=b"http")
    names = {name.lower() for name, _ in sent.getAllRawHeaders()}
    assert b"transfer_encoding" not in names and b"x_api_key" not in names
    assert sent.getRawHeaders(b"authorization") == [b"Bearer sk-x"]


def test_a_response_header_value_with_nul_or_a_line_break_never_reaches_the_client() -> None:
    """Twisted's Headers turn line breaks into spaces; a NUL would reach the client, so the value goes."""
    upstream = Headers()
    upstream.setRawHeaders(b"x-folded", [b"first\r\n second"])
    upstream.setRawHeaders(b"x-nul", [b"a\x00b"])
    upstream.setRawHeaders(b"x-mixed", [b"good", b"bad\nvalue"])
    upstream.setRawHeaders(b"content-type", [b"application/json"])
    returned = client_response_headers(upstream, request_id=b"r1")
    values = [value for _, values in returned.getAllRawHeaders() for value in values]
    assert not any(b"\r" in value or b"\n" in value or b"\x00" in value for value in values)
    assert returned.getRawHeaders(b"x-nul") is None
    assert returned.getRawHeaders(b"content-type") == [b"application/json"]
