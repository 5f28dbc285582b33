"""What the response side branch hands on when a body ends.

`StreamSummary` is one event stream's reading (logged as `sse_stream_closed`),
`ResponseUsage` one JSON response's reported usage (logged as
`response_usage`). Both are built once, logged once, and passed to the
observer's callback, so whoever counts them reads typed fields, never log keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headroom_twisted.sse.state import Digest, Usage
from headroom_twisted.upstream.observer import StreamEnd

Ended = Literal["open", "clean", "truncated", "error_event", "client_disconnected"]


def ended_as(end: StreamEnd | None, digest: Digest) -> Ended:
    """An error event outranks everything; a seen terminal event means clean."""
    if end is None:
        return "open"
    if digest.error is not None:
        return "error_event"
    if digest.terminal:
        return "clean"
    if end is StreamEnd.CLIENT_DISCONNECTED:
        return "client_disconnected"
    if digest.terminal is None and end is StreamEnd.COMPLETE:
        return "clean"
    return "truncated"


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """The final (or so-far) reading of one stream: the machine's `Digest` and the framing's counts.

    `ended` is `open` until the stream finished, then one of `clean`,
    `truncated`, `error_event`, `client_disconnected`.
    """

    provider: str
    ended: Ended
    events: int
    bytes: int
    digest: Digest = field(default_factory=Digest)
    comments: int = 0
    oversized_events: int = 0
    parser_error: bool = False

    def log_fields(self) -> dict[str, object]:
        """The fields of `sse_stream_closed`."""
        digest = self.digest
        return {
            "provider": self.provider,
            "model": digest.model,
            "response_id": digest.response_id,
            "usage": digest.usage.as_dict(),
            "finish_reason": digest.finish_reason,
            "ended": self.ended,
            "events": self.events,
            "bytes": self.bytes,
            "tool_calls": len(digest.tool_names),
            "tool_names": list(digest.tool_names),
            "text_chars": digest.text_chars,
            "thinking_chars": digest.thinking_chars,
            "refusal_chars": digest.refusal_chars,
            "error": digest.error,
            "comments": self.comments,
            "oversized_events": self.oversized_events,
            "bad_payloads": digest.bad_payloads,
            "invalid_tool_json": digest.invalid_tool_json,
            "parser_error": self.parser_error,
        }


@dataclass(frozen=True, slots=True)
class ResponseUsage:
    """The model and usage one non-streamed JSON response reported."""

    provider: str
    model: str | None
    usage: Usage

    def log_fields(self) -> dict[str, object]:
        """The fields of `response_usage`."""
        return {"provider": self.provider, "model": self.model, "usage": self.usage.as_dict()}
