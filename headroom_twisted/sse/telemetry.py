"""The `BodyObserver` for `text/event-stream` responses: frame, parse, log once.

This sits on the byte path's side branch, after each chunk has gone to the
client, so its whole contract is to cost little and never fail loudly: every
entry point catches everything, a parser bug is logged once as
`sse_parser_error` and parsing stops for that stream, and `finished()`
always logs exactly one `sse_stream_closed`. The summary it logs is the one
`on_closed` gets (the metrics count it); what that callback raises is the
byte path's to contain, like any observer's error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from structlog.typing import FilteringBoundLogger

from headroom_twisted.endpoints import Endpoint
from headroom_twisted.sse.anthropic import AnthropicMachine, MessageStreamState
from headroom_twisted.sse.framing import DEFAULT_MAX_EVENT_BYTES, SSEEvent, SSEFramer
from headroom_twisted.sse.openai_chat import ChatStreamState, OpenAIChatMachine
from headroom_twisted.sse.responses import ResponsesMachine, ResponseStreamState
from headroom_twisted.sse.state import Digest, StreamMachine
from headroom_twisted.sse.summary import StreamSummary, ended_as
from headroom_twisted.upstream.observer import StreamEnd

StreamState = MessageStreamState | ChatStreamState | ResponseStreamState
"""What a provider machine accumulates (its `state`), for tests and tools."""

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


class SSETelemetry:
    """Reads a copy of an event stream; see the module docstring for the contract."""

    def __init__(
        self,
        machine: StreamMachine,
        log: FilteringBoundLogger,
        *,
        on_closed: Callable[[StreamSummary], None] | None = None,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        self.machine = machine
        self._log = log
        self._on_closed = on_closed
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
        """Log `sse_stream_closed` once, then hand the same summary to `on_closed`.

        A summary that cannot be built (a parser bug) is logged with the
        counts that are still sound and handed to nobody: there is nothing
        sound to count.
        """
        if self._end is not None:
            return
        self._end = end
        try:
            summary = self.summary()
        except Exception:
            self._parser_failed("finished")
            _quietly(
                self._log,
                "info",
                "sse_stream_closed",
                provider=self.machine.provider,
                ended="unknown",
                events=self._events,
                bytes=self._bytes,
                parser_error=True,
            )
            return
        _quietly(self._log, "info", "sse_stream_closed", **summary.log_fields())
        if self._on_closed is not None:
            self._on_closed(summary)

    @property
    def state(self) -> StreamState | None:
        """The provider machine's own state dataclass (None for generic streams)."""
        machine = self.machine
        if isinstance(machine, AnthropicMachine | OpenAIChatMachine | ResponsesMachine):
            return machine.state
        return None

    def summary(self) -> StreamSummary:
        """The reading so far (`ended` is `open` until `finished`)."""
        digest = self.machine.digest()
        return StreamSummary(
            provider=self.machine.provider,
            ended=ended_as(self._end, digest),
            events=self._events,
            bytes=self._bytes,
            digest=digest,
            comments=self._framer.comments,
            oversized_events=self._framer.oversized_events,
            parser_error=self._broken,
        )

    def _parser_failed(self, where: str) -> None:
        if self._broken:
            return
        self._broken = True
        _quietly(self._log, "error", "sse_parser_error", provider=self.machine.provider, where=where, exc_info=True)


def _quietly(log: FilteringBoundLogger, level: Literal["info", "error"], event: str, **fields: object) -> None:
    """Log, unless the logger itself is what fails: then there is nowhere to report."""
    try:
        getattr(log, level)(event, **fields)
    except Exception:
        return


def telemetry_for(
    endpoint: Endpoint | None,
    log: FilteringBoundLogger,
    on_closed: Callable[[StreamSummary], None] | None = None,
) -> SSETelemetry:
    """The observer for an event-stream response from `endpoint` (None: any other path).

    `log` must already be bound with the request's `request_id`; `on_closed`
    gets the stream's summary once it ended. The result is a `BodyObserver`;
    its `summary()` and `state` are for tests and tools.
    """
    return SSETelemetry(machine_for(endpoint), log, on_closed=on_closed)
