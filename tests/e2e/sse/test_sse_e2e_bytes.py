"""The stream's bytes and timing through the proxy, seen by a bare Agent.

No SDK here: a plain `Agent` with a recording body protocol gets exactly the
body bytes (no decoding, no buffering) and the moment each chunk arrived.
"""

from __future__ import annotations

import hashlib

import pytest
import pytest_twisted
from sse_e2e_support import (
    CHAT_PATH,
    MESSAGES_PATH,
    PIECES,
    RESPONSES_PATH,
    StreamPlan,
    anthropic_text_events,
    chat_text_events,
    clean_end,
    closed_events,
    play,
    raw_post,
    ready,
    responses_text_events,
)
from structlog.testing import capture_logs

STREAMS = {
    CHAT_PATH: chat_text_events(PIECES),
    MESSAGES_PATH: anthropic_text_events(PIECES),
    RESPONSES_PATH: responses_text_events(PIECES),
}


def odd_slices(body: bytes, size: int) -> list[bytes]:
    """Writes that cut through events, `\\r\\n`, and UTF-8 characters alike."""
    return [body[start : start + size] for start in range(0, len(body), size)]


@pytest.mark.parametrize("path", list(STREAMS))
@pytest_twisted.ensureDeferred
async def test_client_bytes_have_the_upstream_sha256(make_proxy, upstream, path: str) -> None:
    body = b"".join(STREAMS[path])
    # CRLF framing too: the proxy must not normalise line ends.
    body = body.replace(b"\n\n", b"\r\n\r\n", 3)
    plan = StreamPlan(odd_slices(body, 7))
    upstream.handler = play(plan)
    proxy = make_proxy(production=True)

    with capture_logs() as logs:
        response, recorder, reason = await raw_post(proxy.url + path, b'{"stream": true}')

    assert response.code == 200
    assert response.headers.getRawHeaders(b"content-type") == [b"text/event-stream; charset=utf-8"]
    assert clean_end(reason)
    assert hashlib.sha256(recorder.body).hexdigest() == hashlib.sha256(b"".join(plan.sent)).hexdigest()
    assert hashlib.sha256(recorder.body).hexdigest() == hashlib.sha256(body).hexdigest()
    [closed] = closed_events(logs)
    assert closed["ended"] == "clean"
    assert closed["bytes"] == len(body)
    assert closed["events"] == len(STREAMS[path])


@pytest_twisted.ensureDeferred
async def test_twenty_events_fifty_ms_apart_arrive_as_twenty_arrivals(make_proxy, upstream) -> None:
    events = chat_text_events([f" token{number}" for number in range(16)])
    assert len(events) == 20
    plan = StreamPlan(events, delay=0.05)
    upstream.handler = play(plan)
    proxy = await ready(make_proxy(production=True))

    with capture_logs() as logs:
        _, recorder, reason = await raw_post(proxy.url + CHAT_PATH, b'{"stream": true}')

    assert clean_end(reason)
    assert recorder.body == plan.body
    arrived = recorder.event_arrival_times()
    assert len(arrived) == 20
    # Each event reaches the client before the upstream has even sent the next one.
    late = [index for index in range(19) if arrived[index] >= plan.sent_at[index + 1]]
    assert late == [], f"events {late} were held back until a later event was sent"
    assert arrived[-1] - arrived[0] >= 19 * 0.05 * 0.9
    [closed] = closed_events(logs)
    assert closed["events"] == 20 and closed["ended"] == "clean"
