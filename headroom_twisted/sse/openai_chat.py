"""OpenAI Chat Completions stream: `chat.completion.chunk` objects, then `[DONE]`.

Each chunk carries per-choice deltas. Text is only counted (the log reports
its length). Tool calls arrive as fragments keyed by `index`: the first
fragment has the id and function name, later ones only append to
`arguments`, so the state keeps one accumulator per (choice, index) to check
the JSON once the choice finished.
Usage comes in a final chunk with empty `choices` when the client asked for
`stream_options.include_usage`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from headroom_twisted.compress.json_value import JsonObject
from headroom_twisted.sse.framing import SSEEvent
from headroom_twisted.sse.state import (
    Digest,
    ToolJson,
    Usage,
    as_dict,
    as_int,
    as_list,
    as_str,
    describe_error,
    is_json,
    load_object,
)

DONE = "[DONE]"


@dataclass(slots=True)
class ToolCallState:
    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: ToolJson = field(default_factory=ToolJson)


@dataclass(slots=True)
class ChoiceState:
    index: int
    role: str | None = None
    content_chars: int = 0
    refusal_chars: int = 0
    reasoning_chars: int = 0
    tool_calls: dict[int, ToolCallState] = field(default_factory=dict)
    finish_reason: str | None = None


@dataclass(slots=True)
class ChatStreamState:
    id: str | None = None
    model: str | None = None
    system_fingerprint: str | None = None
    choices: dict[int, ChoiceState] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    done: bool = False
    error: str | None = None
    chunks: int = 0
    bad_payloads: int = 0


class OpenAIChatMachine:
    """Accumulates a Chat Completions stream into a `ChatStreamState`."""

    provider = "openai_chat"

    def __init__(self) -> None:
        self.state = ChatStreamState()

    def on_event(self, event: SSEEvent) -> None:
        state = self.state
        if event.data.strip() == DONE:
            state.done = True
            return
        chunk = load_object(event.data)
        if chunk is None:
            state.bad_payloads += 1
            return
        if event.event == "error" or chunk.get("error") is not None:
            state.error = describe_error(chunk.get("error", chunk))
            return
        state.chunks += 1
        state.id = state.id or as_str(chunk.get("id"))
        state.model = state.model or as_str(chunk.get("model"))
        state.system_fingerprint = state.system_fingerprint or as_str(chunk.get("system_fingerprint"))
        for position, choice in enumerate(as_list(chunk.get("choices"))):
            if isinstance(choice, dict):
                self._choice(choice, position)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            state.usage = usage_of(usage)

    def _choice(self, choice: JsonObject, position: int) -> None:
        index = as_int(choice.get("index"))
        index = position if index is None else index
        state = self.state.choices.get(index)
        if state is None:
            state = self.state.choices[index] = ChoiceState(index)
        delta = as_dict(choice.get("delta"))
        state.role = state.role or as_str(delta.get("role"))
        state.content_chars += len(as_str(delta.get("content")) or "")
        state.refusal_chars += len(as_str(delta.get("refusal")) or "")
        state.reasoning_chars += len(as_str(delta.get("reasoning_content")) or as_str(delta.get("reasoning")) or "")
        for position, fragment in enumerate(as_list(delta.get("tool_calls"))):
            if isinstance(fragment, dict):
                _tool_call(state, fragment, position)
        state.finish_reason = as_str(choice.get("finish_reason")) or state.finish_reason

    def digest(self) -> Digest:
        state = self.state
        choices = [state.choices[i] for i in sorted(state.choices)]
        calls = [choice.tool_calls[i] for choice in choices for i in sorted(choice.tool_calls)]
        return Digest(
            model=state.model,
            response_id=state.id,
            usage=state.usage,
            finish_reason=next((c.finish_reason for c in choices if c.finish_reason), None),
            tool_names=tuple(call.name or "" for call in calls),
            text_chars=sum(c.content_chars for c in choices),
            thinking_chars=sum(c.reasoning_chars for c in choices),
            refusal_chars=sum(c.refusal_chars for c in choices),
            terminal=state.done,
            error=state.error,
            bad_payloads=state.bad_payloads,
            invalid_tool_json=sum(
                1
                for choice in choices
                if choice.finish_reason
                for call in choice.tool_calls.values()
                if call.arguments.complete and not is_json(call.arguments.value or "{}")
            ),
        )


def _tool_call(choice: ChoiceState, fragment: JsonObject, position: int) -> None:
    index = as_int(fragment.get("index"))
    index = position if index is None else index
    call = choice.tool_calls.get(index)
    if call is None:
        call = choice.tool_calls[index] = ToolCallState(index)
    call.id = call.id or as_str(fragment.get("id"))
    call.type = call.type or as_str(fragment.get("type"))
    function = as_dict(fragment.get("function"))
    call.name = call.name or as_str(function.get("name"))
    call.arguments.add(as_str(function.get("arguments")) or "")


def usage_of(usage: JsonObject) -> Usage:
    """Normalise this API's ``usage`` object (a stream event's or a JSON response's)."""
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        cached_tokens=as_int(as_dict(usage.get("prompt_tokens_details")).get("cached_tokens")),
        reasoning_tokens=as_int(as_dict(usage.get("completion_tokens_details")).get("reasoning_tokens")),
    )
