"""Every tool output and user text of an OpenAI Responses ``input``.

Reasoning items (their ``encrypted_content`` is opaque), function-call
arguments, developer and system messages, ``instructions`` and every item
type this code does not know stay as sent.
"""

from __future__ import annotations

from dataclasses import replace

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.compress.livezone.history import is_responses_user_message, responses_history
from headroom_twisted.compress.livezone.model import (
    Block,
    Refusal,
    Selection,
    is_client_reminder,
    joined_text,
    text_parts,
)
from headroom_twisted.compress.tool_call import ToolCall, responses_call


def find_blocks(document: JsonValue) -> Selection | Refusal:
    """Blocks: every ``*_output`` item's text and every user message's text, in order."""
    history = responses_history(document)
    if isinstance(history, Refusal):
        return history
    blocks: list[Block] = []
    query = ""
    calls: dict[str, ToolCall] = {}
    for index, item in enumerate(history.items):
        if not isinstance(item, dict):
            continue
        made = responses_call(item)
        if made is not None:
            calls[made[0]] = made[1]
            continue
        kind = _tool_output_kind(item)
        if kind is not None:
            call_id = item.get("call_id")
            call = calls.get(call_id) if isinstance(call_id, str) else None
            outputs = text_parts(item.get("output"), ("input", index, "output"), kind, "input_text")
            blocks += [replace(b, query=query, call=call) for b in outputs]
        elif is_responses_user_message(item):
            texts = text_parts(item.get("content"), ("input", index, "content"), "user_text", "input_text")
            authored = [b for b in texts if not is_client_reminder(b.text)]
            blocks += [replace(b, query=query) for b in authored]
            if authored:
                query = joined_text(authored)
    return Selection(tuple(blocks), history.model)


def _tool_output_kind(item: JsonObject) -> str | None:
    """The type of any ``*_output`` item whose output is a string or a list of parts.

    ``computer_call_output`` carries a screenshot object and is never a
    candidate; its output is neither a string nor a list.
    """
    kind = item.get("type")
    if isinstance(kind, str) and kind.endswith("_output") and isinstance(item.get("output"), str | list):
        return kind
    return None
