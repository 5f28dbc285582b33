"""Provider-reported usage from non-streamed JSON responses of the three LLM endpoints.

Streams report usage through the SSE telemetry; a client that does not
stream gets one JSON object whose ``usage`` says the same. Reading it lets
`/stats` set the prompt-cache reads and writes the provider billed next to
what compression saved, whichever way the client asked. The body is copied
on the side up to a cap and parsed once at its end; like every observer, this
never raises into the byte path.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from structlog.typing import FilteringBoundLogger

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.endpoints import Endpoint
from headroom_twisted.sse import anthropic, openai_chat, responses
from headroom_twisted.sse.state import Usage, as_dict, as_int, as_str
from headroom_twisted.sse.summary import ResponseUsage
from headroom_twisted.upstream.observer import StreamEnd

MAX_JSON_BYTES = 4 * 1024 * 1024
"""Responses larger than this are not parsed: their usage goes uncounted."""

OnUsage = Callable[[ResponseUsage], None]
"""Called once per response that reported usage, with what `response_usage` logged."""


def _anthropic_usage(usage: JsonObject) -> Usage:
    counts = {key: count for key, value in usage.items() if (count := as_int(value)) is not None}
    return anthropic.usage_of(counts)


_READERS: dict[Endpoint, tuple[str, Callable[[JsonObject], Usage]]] = {
    Endpoint.CHAT: ("openai_chat", openai_chat.usage_of),
    Endpoint.ANTHROPIC: ("anthropic", _anthropic_usage),
    Endpoint.RESPONSES: ("openai_responses", responses.usage_of),
}


class JSONUsageTelemetry:
    """A `BodyObserver` that reads ``model`` and ``usage`` from a complete JSON response."""

    def __init__(
        self,
        provider: str,
        read_usage: Callable[[JsonObject], Usage],
        log: FilteringBoundLogger,
        on_usage: OnUsage,
    ) -> None:
        self._provider = provider
        self._read_usage = read_usage
        self._log = log
        self._on_usage = on_usage
        self._parts: list[bytes] = []
        self._size = 0
        self._done = False

    def chunk(self, data: bytes) -> None:
        self._size += len(data)
        if self._size <= MAX_JSON_BYTES:
            self._parts.append(data)
        else:
            self._parts.clear()

    def finished(self, end: StreamEnd) -> None:
        if self._done:
            return
        self._done = True
        parts, self._parts = self._parts, []
        if end is not StreamEnd.COMPLETE or self._size > MAX_JSON_BYTES:
            return
        try:
            document: JsonValue = orjson.loads(b"".join(parts))
            usage = self._read_usage(as_dict(as_dict(document).get("usage")))
            if not usage.reported:
                return
            report = ResponseUsage(self._provider, as_str(as_dict(document).get("model")), usage)
            self._log.info("response_usage", **report.log_fields())
            self._on_usage(report)
        except Exception:
            return


def json_usage_for(
    endpoint: Endpoint | None, log: FilteringBoundLogger, on_usage: OnUsage
) -> JSONUsageTelemetry | None:
    """The observer for a JSON response from ``endpoint``, or None for any other path."""
    if endpoint is None:
        return None
    provider, read_usage = _READERS[endpoint]
    return JSONUsageTelemetry(provider, read_usage, log, on_usage)
