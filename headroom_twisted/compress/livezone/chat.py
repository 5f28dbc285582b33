"""Live zone of an OpenAI Chat Completions request.

The newest tool output and the newest user text are what the provider's
prefix cache cannot hold yet; every earlier message is left as sent. Only
message contents are ever rewritten: ``tools``, ``tool_choice``,
``stream_options`` and every other field are read at most, never changed.
"""

from __future__ import annotations

from typing import Any

from headroom_twisted.compress.livezone.history import chat_history
from headroom_twisted.compress.livezone.model import (
    Block,
    LiveZone,
    Refusal,
    joined_text,
    last_index,
    text_parts,
)


def find_live_zone(document: Any) -> LiveZone | Refusal:
    """Blocks: the latest ``tool`` message content, then the latest ``user`` text (``n > 1``: none)."""
    history = chat_history(document)
    if isinstance(history, Refusal):
        return history
    tool_blocks = _latest_with_role(history.items, "tool", "tool")
    user_blocks = _latest_with_role(history.items, "user", "user_text")
    return LiveZone(tuple(tool_blocks + user_blocks), joined_text(user_blocks), history.model)


def _latest_with_role(messages: list[Any], role: str, kind: str) -> list[Block]:
    index = last_index(messages, lambda m: isinstance(m, dict) and m.get("role") == role)
    if index is None:
        return []
    return text_parts(messages[index].get("content"), ("messages", index, "content"), kind, "text")
