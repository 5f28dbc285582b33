"""The `BodyObserver` for `text/event-stream` responses: frame, parse, log once.

This sits on the byte path's side branch, after each chunk has gone to the
client, so its whole contract is to cost little and never fail loudly: every
entry point catches everything, a parser bug is logged once as
`sse_parser_error` and parsing stops for that stream, and `finished()`
always logs exactly one `sse_stream_closed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from structlog.typing import FilteringBoundLogger

from headroom_twisted.endpoints import Endpoint
from headroom_twisted.sse.anthropic import AnthropicMachine
from headroom_twisted.sse.framing import DEFAULT_MAX_EVENT_BYTES, SSEEvent, SSEFramer
from headroom_twisted.sse.openai_chat import OpenAIChatMachine
from headroom_twisted.sse.responses import ResponsesMachine
from headroom_twisted.sse.state import Digest, StreamMachine, Usage
from headroom_twisted.upstream.observer import StreamEnd

_MACHINES: dict[Endpoint, Callable[[], StreamMachine]] = {
    Endpoint.CHAT: OpenAIChatMachine,
    Endpoint.ANTHROPIC: AnthropicMachine,
    Endpoint.RESPONSES: ResponsesMachine,
}


class GenericMachine:
    """For event streams from paths we have no model of: counts only.

    It has no terminal event to look for, so how the transport ended decides
    whether the stream ended cleanly.
    """

    provider = "generic"

    def on_event(self, event: SSEEvent) -> None:
        pass

    def digest(self) -> Digest:
        return Digest()


def machine_for(endpoint: Endpoint | None) -> StreamMachine:
    """The state machine for an LLM endpoint's stream; a counting-only one for any other path."""
    return _MACHINES[endpoint]() if endpoint is not None else GenericMachine()


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """The final (or so-far) reading of one stream; what `sse_stream_closed` logs.

    `ended` is `open` until `finished()`, then one of `clean`, `truncated`,
    `error_event`, `client_disconnected`.
    """

    provider: str
    ended: str
    events: int
    bytes: int
    model: str | None = None
    response_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    tool_names: tuple[str, ...] = ()
    text_chars: int = 0
    thinking_chars: int = 0
    refusal_chars: int = 0
    error: str | None = None
    comments: int = 0
    oversized_events: int = 0
    bad_payloads: int = 0
    invalid_tool_json: int = 0
    parser_error: bool = False

    @property
    def tool_calls(self) -> int:
        return len(self.tool_names)

    def log_fields(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "model": self.model,
            "response_id": self.response_id,
            "usage": self.usage.as_dict(),
            "finish_reason": self.finish_reason,
            "ended": self.ended,
            "events": self.events,
            "bytes": self.bytes,
            "tool_calls": self.tool_calls,
            "tool_names": list(self.tool_names),
            "text_chars": self.text_chars,
            "thinking_chars": self.thinking_chars,
            "refusal_chars": self.refusal_chars,
            "error": self.error,
            "comments": self.comments,
            "oversized_events": self.oversized_events,
            "bad_payloads": self.bad_payloads,
            "invalid_tool_json": self.invalid_tool_json,
            "parser_error": self.parser_error,
        }


def ended_as(end: StreamEnd | None, digest: Digest) -> str:
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


class SSETelemetry:
    """Reads a copy of an event stream; see the module docstring for the contract."""

    def __init__(
        self,
        machine: StreamMachine,
        log: FilteringBoundLogger,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.machine = machine
        self._log = log
        self._framer = SSEFramer(max_event_bytes)
        self._events = 0
        self._bytes = 0
        self._end: StreamEnd | None = None
        self._broken = False

    def chunk(self, data: bytes) -> None:
        try:
            self._bytes += len(data)
            if self._broken:
                return
            for event in self._framer.feed(data):
                self._events += 1
                self.machine.on_event(event)
        except Exception:
            self._parser_failed("chunk")

    def finished(self, end: StreamEnd) -> None:
        if self._end is not None:
            return
        self._end = end
        try:
            fields = self.summary().log_fields()
        except Exception:
            self._parser_failed("finished")
            fields = {
                "provider": self.machine.provider,
                "ended": "unknown",
                "events": self._events,
                "bytes": self._bytes,
                "parser_error": True,
            }
        _quietly(self._log, "info", "sse_stream_closed", **fields)

    @property
    def state(self) -> Any:
        """The provider machine's own state dataclass (None for generic streams)."""
        return getattr(self.machine, "state", None)

    def summary(self) -> StreamSummary:
        digest = self.machine.digest()
        return StreamSummary(
            provider=self.machine.provider,
            ended=ended_as(self._end, digest),
            events=self._events,
            bytes=self._bytes,
            model=digest.model,
            response_id=digest.response_id,
            usage=digest.usage,
            finish_reason=digest.finish_reason,
            tool_names=digest.tool_names,
            text_chars=digest.text_chars,
            thinking_chars=digest.thinking_chars,
            refusal_chars=digest.refusal_chars,
            error=digest.error,
            comments=self._framer.comments,
            oversized_events=self._framer.oversized_events,
            bad_payloads=digest.bad_payloads,
            invalid_tool_json=digest.invalid_tool_json,
            parser_error=self._broken,
        )

    def _parser_failed(self, where: str) -> None:
        if self._broken:
            return
        self._broken = True
        _quietly(self._log, "error", "sse_parser_error", provider=self.machine.provider, where=where, exc_info=True)


def _quietly(log: FilteringBoundLogger, level: str, event: str, **fields: Any) -> None:
    """Log, unless the logger itself is what fails: then there is nowhere to report."""
    try:
        getattr(log, level)(event, **fields)
    except Exception:
        return


def telemetry_for(endpoint: Endpoint | None, log: FilteringBoundLogger) -> SSETelemetry:
    """The observer for an event-stream response from `endpoint` (None: any other path).

    `log` must already be bound with the request's `request_id`. The result
    is a `BodyObserver`; its `summary()` and `state` are for tests and metrics.
    """
    return SSETelemetry(machine_for(endpoint), log)
