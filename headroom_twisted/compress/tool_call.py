"""The tool call that produced a tool output: what folding a file read needs to know.

A tool output's meaning depends on the call: the same text is a whole file
for ``Read {"file_path": ...}`` and a chosen range for ``Read {"offset":
120, "limit": 40}``. The call precedes its output in the same request body
(the assistant turn that asked for it), so it is as stable across turns as
the output itself, and a rewrite may depend on it without breaking the
cached prefix. Walkers find it by the call's id; only its name and its
arguments, in one canonical spelling, are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from headroom_twisted.compress.json_value import JsonObject, JsonValue


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool's name and its arguments as canonical JSON (sorted keys, no spaces)."""

    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, object]:
        """The arguments as an object; a tool whose input is free text gets ``{"input": text}``."""
        value = json.loads(self.arguments) if self.arguments else {}
        return value if isinstance(value, dict) else {"input": value}

    def identity(self) -> bytes:
        """What the rewrite key includes of the call."""
        return f"{self.name}\0{self.arguments}".encode("utf-8", "surrogatepass")


def tool_call(name: JsonValue, arguments: JsonValue) -> ToolCall | None:
    """A call from the name and arguments a client sent; arguments given as a JSON string are read.

    Chat Completions and Responses send function arguments as a JSON text,
    Anthropic as an object; both become the same canonical spelling.
    """
    if not isinstance(name, str):
        return None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    return ToolCall(name, json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":")))


def anthropic_calls(message: JsonObject) -> Iterator[tuple[str, ToolCall]]:
    """``(id, call)`` for every ``tool_use`` block of an assistant message."""
    content = message.get("content")
    if not isinstance(content, list):
        return
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str):
            call = tool_call(block.get("name"), block.get("input"))
            if call is not None:
                yield str(block["id"]), call


def chat_calls(message: JsonObject) -> Iterator[tuple[str, ToolCall]]:
    """``(id, call)`` for every function call of a Chat Completions assistant message."""
    calls = message.get("tool_calls")
    if not isinstance(calls, list):
        return
    for entry in calls:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        function = entry.get("function")
        if isinstance(function, dict):
            call = tool_call(function.get("name"), function.get("arguments"))
            if call is not None:
                yield str(entry["id"]), call


def responses_call(item: JsonObject) -> tuple[str, ToolCall] | None:
    """``(call_id, call)`` of a Responses ``function_call``, ``custom_tool_call`` or ``local_shell_call``."""
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        return None
    kind = item.get("type")
    call: ToolCall | None = None
    if kind == "function_call":
        call = tool_call(item.get("name"), item.get("arguments"))
    elif kind == "custom_tool_call":
        call = tool_call(item.get("name"), item.get("input"))
    elif kind == "local_shell_call":
        call = tool_call("local_shell", item.get("action"))
    return (call_id, call) if call is not None else None
