"""Shared pieces of the provider state machines.

Payloads come from the network, so nothing here trusts their shape: the
`as_*` helpers turn a wrongly typed field into "absent" instead of letting a
surprise `None` or list become an exception on the byte path's side branch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import orjson

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.sse.framing import SSEEvent

TOOL_JSON_KEEP_CHARS = 4 * 1024 * 1024


@dataclass(slots=True)
class ToolJson:
    """A tool call's JSON joined from deltas, kept to check that it parses once whole.

    It is the only streamed text the machines keep (prose is only counted).
    The cap keeps a pathological stream from holding unbounded text in the
    telemetry copy; past it the JSON is not judged (`complete` is False).
    """

    parts: list[str] = field(default_factory=list)
    chars: int = 0
    complete: bool = True

    def add(self, piece: str) -> None:
        if not piece:
            return
        self.chars += len(piece)
        if self.chars <= TOOL_JSON_KEEP_CHARS:
            self.parts.append(piece)
        else:
            self.complete = False

    def replace(self, whole: str) -> None:
        """Take the provider's final value (a `*.done` event) over the deltas."""
        self.parts.clear()
        self.chars = 0
        self.complete = True
        self.add(whole)

    @property
    def value(self) -> str:
        return "".join(self.parts)


@dataclass(slots=True)
class Usage:
    """Token usage normalized across providers.

    `input_tokens` is the whole prompt including cached tokens (OpenAI's
    `prompt_tokens`; for Anthropic, `input_tokens` plus cache reads and cache
    writes), so the same field means the same thing whichever provider served
    the request. `cached_tokens` is the part read from the prompt cache.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    cache_creation_tokens: int | None = None
    reasoning_tokens: int | None = None

    @property
    def reported(self) -> bool:
        """Whether the provider gave any count at all."""
        return any(
            count is not None
            for count in (
                self.input_tokens,
                self.output_tokens,
                self.cached_tokens,
                self.cache_creation_tokens,
                self.reasoning_tokens,
            )
        )

    def as_dict(self) -> dict[str, int]:
        """Only the counts the provider gave, for the log line."""
        return {
            name: value
            for name, value in (
                ("input_tokens", self.input_tokens),
                ("output_tokens", self.output_tokens),
                ("cached_tokens", self.cached_tokens),
                ("cache_creation_tokens", self.cache_creation_tokens),
                ("reasoning_tokens", self.reasoning_tokens),
            )
            if value is not None
        }


@dataclass(frozen=True, slots=True)
class Digest:
    """What a provider machine reports at the end, in provider-neutral terms.

    `terminal` is None for streams that have no terminal event to wait for.
    """

    model: str | None = None
    response_id: str | None = None
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    tool_names: tuple[str, ...] = ()
    text_chars: int = 0
    thinking_chars: int = 0
    refusal_chars: int = 0
    terminal: bool | None = None
    error: str | None = None
    bad_payloads: int = 0
    invalid_tool_json: int = 0


class StreamMachine(Protocol):
    """One provider's reading of a stream, fed one framed event at a time."""

    provider: str

    def on_event(self, event: SSEEvent) -> None: ...

    def digest(self) -> Digest: ...


def load_object(data: str) -> JsonObject | None:
    """Parse an event payload; None if it is not a JSON object."""
    try:
        value: JsonValue = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def as_dict(value: JsonValue) -> JsonObject:
    return value if isinstance(value, dict) else {}


def as_list(value: JsonValue) -> list[JsonValue]:
    return value if isinstance(value, list) else []


def as_str(value: JsonValue) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: JsonValue) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def describe_error(error: JsonValue) -> str:
    """A short `type: message` for the log, from whatever error shape arrived."""
    if isinstance(error, str):
        return error
    body = as_dict(error)
    kind = as_str(body.get("code")) or as_str(body.get("type")) or "error"
    message = as_str(body.get("message"))
    return f"{kind}: {message}" if message else kind
