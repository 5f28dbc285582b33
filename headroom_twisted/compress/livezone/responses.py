"""Live zone of an OpenAI Responses request.

Only the ``input`` items are ever rewritten: the latest tool output and the
latest user message text. ``instructions``, ``previous_response_id``,
``conversation`` and every other field stay as sent, and so do reasoning
items (their ``encrypted_content`` is opaque), function-call arguments,
compaction, MCP, computer-use and image-generation items and any item type
this code does not know.
"""

from __future__ import annotations

from typing import Any

from headroom_twisted.compress.livezone.history import is_responses_user_message, responses_history
from headroom_twisted.compress.livezone.model import (
    Block,
    LiveZone,
    Refusal,
    joined_text,
    last_index,
    text_parts,
)


def find_live_zone(document: Any) -> LiveZone | Refusal:
    """Blocks: the latest tool output item, then the latest user message text."""
    history = responses_history(document)
    if isinstance(history, Refusal):
        return history
    output_blocks = _latest_output(history.items)
    user_blocks = _latest_user_text(history.items)
    return LiveZone(tuple(output_blocks + user_blocks), joined_text(user_blocks), history.model)


def _is_tool_output(item: Any) -> bool:
    """``function_call_output``, or any other ``*_output`` item whose output is a string.

    ``computer_call_output`` carries a screenshot object and is never a candidate.
    """
    if not isinstance(item, dict):
        return False
    kind = item.get("type")
    if kind == "function_call_output":
        return True
    return isinstance(kind, str) and kind.endswith("_output") and isinstance(item.get("output"), str)


def _latest_output(items: list[Any]) -> list[Block]:
    """A string output, or the ``input_text`` parts of a function_call_output list."""
    index = last_index(items, _is_tool_output)
    if index is None:
        return []
    item = items[index]
    return text_parts(item.get("output"), ("input", index, "output"), item["type"], "input_text")


def _latest_user_text(items: list[Any]) -> list[Block]:
    index = last_index(items, is_responses_user_message)
    if index is None:
        return []
    return text_parts(items[index].get("content"), ("input", index, "content"), "user_text", "input_text")
