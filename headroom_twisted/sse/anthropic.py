"""Anthropic Messages stream: message_start, content blocks, message_delta, message_stop.

Content blocks are addressed by `index` and built from deltas: text and
thinking (only counted: the log reports their length), `input_json_delta`
fragments of a tool's input (only valid JSON once the block stops, so they
are kept and checked there), and citations. Usage arrives twice: the prompt side in message_start, the
cumulative output count (and sometimes updated input counts) in message_delta.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.sse.framing import SSEEvent
from headroom_twisted.sse.state import (
    Digest,
    ToolJson,
    Usage,
    as_dict,
    as_int,
    as_str,
    describe_error,
    is_json,
    load_object,
)

TOOL_BLOCK_TYPES = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


@dataclass(slots=True)
class ContentBlockState:
    index: int
    type: str | None = None
    text_chars: int = 0
    thinking_chars: int = 0
    citations: int = 0
    tool_id: str | None = None
    name: str | None = None
    partial_json: ToolJson = field(default_factory=ToolJson)
    start_input_is_object: bool = False
    input_valid: bool | None = None
    stopped: bool = False


@dataclass(slots=True)
class MessageStreamState:
    id: str | None = None
    model: str | None = None
    role: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    blocks: dict[int, ContentBlockState] = field(default_factory=dict)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    stopped: bool = False
    error: str | None = None
    pings: int = 0
    bad_payloads: int = 0


class AnthropicMachine:
    """Accumulates a Messages stream into a `MessageStreamState`."""

    provider = "anthropic"

    def __init__(self) -> None:
        self.state = MessageStreamState()

    def on_event(self, event: SSEEvent) -> None:
        payload = load_object(event.data)
        if payload is None:
            self.state.bad_payloads += 1
            return
        kind = as_str(payload.get("type")) or event.event
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(self, payload)

    def _message_start(self, payload: JsonObject) -> None:
        message = as_dict(payload.get("message"))
        state = self.state
        state.id = as_str(message.get("id")) or state.id
        state.model = as_str(message.get("model")) or state.model
        state.role = as_str(message.get("role")) or state.role
        self._merge_usage(message.get("usage"))

    def _block_start(self, payload: JsonObject) -> None:
        block = self._block(payload)
        start = as_dict(payload.get("content_block"))
        block.type = as_str(start.get("type")) or block.type
        block.text_chars += len(as_str(start.get("text")) or "")
        block.thinking_chars += len(as_str(start.get("thinking")) or "")
        block.tool_id = as_str(start.get("id")) or block.tool_id
        block.name = as_str(start.get("name")) or block.name
        block.start_input_is_object = isinstance(start.get("input"), dict)

    def _block_delta(self, payload: JsonObject) -> None:
        block = self._block(payload)
        delta = as_dict(payload.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta":
            block.text_chars += len(as_str(delta.get("text")) or "")
        elif kind == "thinking_delta":
            block.thinking_chars += len(as_str(delta.get("thinking")) or "")
        elif kind == "input_json_delta":
            block.partial_json.add(as_str(delta.get("partial_json")) or "")
        elif kind == "citations_delta":
            block.citations += 1

    def _block_stop(self, payload: JsonObject) -> None:
        block = self._block(payload)
        block.stopped = True
        if block.partial_json.chars and block.partial_json.complete:
            block.input_valid = is_json(block.partial_json.value)
        elif block.type in TOOL_BLOCK_TYPES and not block.partial_json.chars:
            block.input_valid = block.start_input_is_object

    def _message_delta(self, payload: JsonObject) -> None:
        delta = as_dict(payload.get("delta"))
        state = self.state
        state.stop_reason = as_str(delta.get("stop_reason")) or state.stop_reason
        state.stop_sequence = as_str(delta.get("stop_sequence")) or state.stop_sequence
        self._merge_usage(payload.get("usage"))

    def _message_stop(self, payload: JsonObject) -> None:
        self.state.stopped = True

    def _ping(self, payload: JsonObject) -> None:
        self.state.pings += 1

    def _error(self, payload: JsonObject) -> None:
        self.state.error = describe_error(payload.get("error"))

    _handlers = {
        "message_start": _message_start,
        "content_block_start": _block_start,
        "content_block_delta": _block_delta,
        "content_block_stop": _block_stop,
        "message_delta": _message_delta,
        "message_stop": _message_stop,
        "ping": _ping,
        "error": _error,
    }

    def _block(self, payload: JsonObject) -> ContentBlockState:
        index = as_int(payload.get("index")) or 0
        block = self.state.blocks.get(index)
        if block is None:
            block = self.state.blocks[index] = ContentBlockState(index)
        return block

    def _merge_usage(self, usage: JsonValue) -> None:
        """Later counts replace earlier ones: message_delta's are cumulative."""
        for key, value in as_dict(usage).items():
            count = as_int(value)
            if count is not None:
                self.state.usage[key] = count

    def digest(self) -> Digest:
        state = self.state
        blocks = [state.blocks[i] for i in sorted(state.blocks)]
        return Digest(
            model=state.model,
            response_id=state.id,
            usage=usage_of(state.usage),
            finish_reason=state.stop_reason,
            tool_names=tuple(b.name or "" for b in blocks if b.type in TOOL_BLOCK_TYPES),
            text_chars=sum(b.text_chars for b in blocks),
            thinking_chars=sum(b.thinking_chars for b in blocks),
            terminal=state.stopped,
            error=state.error,
            bad_payloads=state.bad_payloads,
            invalid_tool_json=sum(1 for b in blocks if b.input_valid is False),
        )


def usage_of(usage: dict[str, int]) -> Usage:
    """Normalise Anthropic's integer ``usage`` counts; ``input_tokens`` becomes the whole prompt."""
    uncached = usage.get("input_tokens")
    cache_read = usage.get("cache_read_input_tokens")
    cache_write = usage.get("cache_creation_input_tokens")
    total = None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0)
    return Usage(
        input_tokens=total,
        output_tokens=usage.get("output_tokens"),
        cached_tokens=cache_read,
        cache_creation_tokens=cache_write,
    )
