"""OpenAI Responses stream: typed events around one `response` object.

Lifecycle events (`response.created`, `.in_progress`, `.completed`,
`.failed`, `.incomplete`) carry the whole response, usage included at the
end. Output items (messages, function calls, reasoning) are addressed by
`output_index`, their text parts by `content_index`; deltas append, and the
matching `*.done` event carries the final value, which wins. Text is only
counted (the log reports its length); function call arguments are kept, to
check their JSON once the item is done. Some servers
omit the `response.` prefix on event types, so it is stripped before dispatch.
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

_PREFIX = "response."
TERMINAL_TYPES = frozenset({"completed", "failed", "incomplete"})


@dataclass(slots=True)
class OutputItemState:
    output_index: int
    id: str | None = None
    type: str | None = None
    status: str | None = None
    name: str | None = None
    call_id: str | None = None
    arguments: ToolJson = field(default_factory=ToolJson)
    text_chars: dict[int, int] = field(default_factory=dict)
    """Characters of each output text part, by `content_index`."""
    refusal_chars: int = 0
    reasoning_chars: int = 0
    done: bool = False

    @property
    def is_tool_call(self) -> bool:
        return (self.type or "").endswith("_call")


@dataclass(slots=True)
class ResponseStreamState:
    id: str | None = None
    model: str | None = None
    status: str | None = None
    terminal_type: str | None = None
    incomplete_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    items: dict[int, OutputItemState] = field(default_factory=dict)
    error: str | None = None
    bad_payloads: int = 0


class ResponsesMachine:
    """Accumulates a Responses stream into a `ResponseStreamState`."""

    provider = "openai_responses"

    def __init__(self) -> None:
        self.state = ResponseStreamState()

    def on_event(self, event: SSEEvent) -> None:
        payload = load_object(event.data)
        if payload is None:
            self.state.bad_payloads += 1
            return
        kind = as_str(payload.get("type")) or event.event
        kind = kind.removeprefix(_PREFIX)
        if kind in ("created", "queued", "in_progress") or kind in TERMINAL_TYPES:
            self._lifecycle(kind, as_dict(payload.get("response")))
        elif kind == "error":
            nested = payload.get("error")
            self.state.error = describe_error(nested if isinstance(nested, dict) else payload)
        elif kind in ("output_item.added", "output_item.done"):
            self._item(payload, done=kind == "output_item.done")
        else:
            handler = self._deltas.get(kind)
            if handler is not None:
                handler(self, payload)

    def _lifecycle(self, kind: str, response: JsonObject) -> None:
        state = self.state
        state.id = as_str(response.get("id")) or state.id
        state.model = as_str(response.get("model")) or state.model
        state.status = as_str(response.get("status")) or state.status
        usage = response.get("usage")
        if isinstance(usage, dict):
            state.usage = usage_of(usage)
        if kind not in TERMINAL_TYPES:
            return
        state.terminal_type = kind
        state.status = state.status or kind
        state.incomplete_reason = as_str(as_dict(response.get("incomplete_details")).get("reason"))
        if kind == "failed":
            state.error = describe_error(response.get("error")) if response.get("error") else "failed"

    def _item(self, payload: JsonObject, done: bool) -> None:
        body = as_dict(payload.get("item"))
        item = self._output(payload, body.get("id"))
        item.done = item.done or done
        item.id = as_str(body.get("id")) or item.id
        item.type = as_str(body.get("type")) or item.type
        item.status = as_str(body.get("status")) or item.status
        item.name = as_str(body.get("name")) or item.name
        item.call_id = as_str(body.get("call_id")) or item.call_id
        arguments = as_str(body.get("arguments"))
        if arguments:
            item.arguments.replace(arguments)

    def _text_delta(self, payload: JsonObject) -> None:
        item, index = self._output(payload), _content_index(payload)
        item.text_chars[index] = item.text_chars.get(index, 0) + len(as_str(payload.get("delta")) or "")

    def _text_done(self, payload: JsonObject) -> None:
        text = as_str(payload.get("text"))
        if text is not None:
            self._output(payload).text_chars[_content_index(payload)] = len(text)

    def _part_done(self, payload: JsonObject) -> None:
        part = as_dict(payload.get("part"))
        text, refusal = as_str(part.get("text")), as_str(part.get("refusal"))
        if part.get("type") == "output_text" and text is not None:
            self._output(payload).text_chars[_content_index(payload)] = len(text)
        elif part.get("type") == "refusal" and refusal is not None:
            self._output(payload).refusal_chars = len(refusal)

    def _refusal_delta(self, payload: JsonObject) -> None:
        self._output(payload).refusal_chars += len(as_str(payload.get("delta")) or "")

    def _refusal_done(self, payload: JsonObject) -> None:
        refusal = as_str(payload.get("refusal"))
        if refusal is not None:
            self._output(payload).refusal_chars = len(refusal)

    def _arguments_delta(self, payload: JsonObject) -> None:
        self._output(payload).arguments.add(as_str(payload.get("delta")) or "")

    def _arguments_done(self, payload: JsonObject) -> None:
        arguments = as_str(payload.get("arguments"))
        if arguments is not None:
            self._output(payload).arguments.replace(arguments)

    def _reasoning_delta(self, payload: JsonObject) -> None:
        self._output(payload).reasoning_chars += len(as_str(payload.get("delta")) or "")

    _deltas = {
        "output_text.delta": _text_delta,
        "output_text.done": _text_done,
        "content_part.done": _part_done,
        "refusal.delta": _refusal_delta,
        "refusal.done": _refusal_done,
        "function_call_arguments.delta": _arguments_delta,
        "function_call_arguments.done": _arguments_done,
        "reasoning_summary_text.delta": _reasoning_delta,
        "reasoning_text.delta": _reasoning_delta,
    }

    def _output(self, payload: JsonObject, item_id: JsonValue = None) -> OutputItemState:
        """The item an event addresses: by output_index, else by item_id."""
        index = as_int(payload.get("output_index"))
        wanted = as_str(payload.get("item_id")) or as_str(item_id)
        if index is None and wanted is None:
            index = 0
        elif index is None:
            items = self.state.items
            index = next((i for i, item in items.items() if item.id == wanted), max(items, default=-1) + 1)
        item = self.state.items.get(index)
        if item is None:
            item = self.state.items[index] = OutputItemState(index)
        return item

    def digest(self) -> Digest:
        state = self.state
        items = [state.items[i] for i in sorted(state.items)]
        calls = [item for item in items if item.is_tool_call]
        return Digest(
            model=state.model,
            response_id=state.id,
            usage=state.usage,
            finish_reason=state.incomplete_reason or (state.status if state.terminal_type else None),
            tool_names=tuple(call.name or call.type or "" for call in calls),
            text_chars=sum(chars for item in items for chars in item.text_chars.values()),
            thinking_chars=sum(item.reasoning_chars for item in items),
            refusal_chars=sum(item.refusal_chars for item in items),
            terminal=state.terminal_type in ("completed", "incomplete"),
            error=state.error,
            bad_payloads=state.bad_payloads,
            invalid_tool_json=sum(
                1
                for call in calls
                if call.done and call.type == "function_call" and not _valid_arguments(call.arguments)
            ),
        )


def _content_index(payload: JsonObject) -> int:
    return as_int(payload.get("content_index")) or 0


def _valid_arguments(arguments: ToolJson) -> bool:
    """Unknown (too long to keep) counts as valid: only report what we saw broken."""
    return not arguments.complete or is_json(arguments.value or "{}")


def usage_of(usage: JsonObject) -> Usage:
    """Normalise this API's ``usage`` object (a stream event's or a JSON response's)."""
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cached_tokens=as_int(as_dict(usage.get("input_tokens_details")).get("cached_tokens")),
        reasoning_tokens=as_int(as_dict(usage.get("output_tokens_details")).get("reasoning_tokens")),
    )
