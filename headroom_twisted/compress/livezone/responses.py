"""Live zone of an OpenAI Responses request.

Only the ``input`` items are ever rewritten: the latest tool output and the
latest user message text. ``instructions``, ``previous_response_id``,
``conversation`` and every other field stay as sent, and so do reasoning
items (their ``encrypted_content`` is opaque), function-call arguments,
compaction, MCP, computer-use and image-generation items and any item type
this code does not know.
"""

from __future__ import annotations

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.compress.livezone.history import is_responses_user_message, responses_history
from headroom_twisted.compress.livezone.model import (
    Block,
    LiveZone,
    Refusal,
    joined_text,
    last_object,
    text_parts,
)


def find_live_zone(document: JsonValue) -> LiveZone | Refusal:
    """Blocks: the latest tool output item, then the latest user message text."""
    history = responses_history(document)
    if isinstance(history, Refusal):
        return history
    output_blocks = _latest_output(history.items)
    user_blocks = _latest_user_text(history.items)
    return LiveZone(tuple(output_blocks + user_blocks), joined_text(user_blocks), history.model)


def _tool_output_kind(item: JsonObject) -> str | None:
    """The type of a ``function_call_output``, or of any other ``*_output`` item whose output is a string.

    ``computer_call_output`` carries a screenshot object and is never a candidate.
    """
    kind = item.get("type")
    if kind == "function_call_output":
        return kind
    if isinstance(kind, str) and kind.endswith("_output") and isinstance(item.get("output"), str):
        return kind
    return None


def _latest_output(items: list[JsonValue]) -> list[Block]:
    """A string output, or the ``input_text`` parts of a function_call_output list."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if isinstance(item, dict) and (kind := _tool_output_kind(item)) is not None:
            return text_parts(item.get("output"), ("input", index, "output"), kind, "input_text")
    return []


def _latest_user_text(items: list[JsonValue]) -> list[Block]:
    found = last_object(items, is_responses_user_message)
    if found is None:
        return []
    index, item = found
    return text_parts(item.get("content"), ("input", index, "content"), "user_text", "input_text")
