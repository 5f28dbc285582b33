"""Live zone of an OpenAI Chat Completions request.

The newest tool output and the newest user text are what the provider's
prefix cache cannot hold yet; every earlier message is left as sent. Only
message contents are ever rewritten: ``tools``, ``tool_choice``,
``stream_options`` and every other field are read at most, never changed.
"""

from __future__ import annotations

from headroom_twisted.compress.json_value import JsonValue
from headroom_twisted.compress.livezone.history import chat_history
from headroom_twisted.compress.livezone.model import (
    Block,
    LiveZone,
    Refusal,
    joined_text,
    last_object,
    text_parts,
)


def find_live_zone(document: JsonValue) -> LiveZone | Refusal:
    """Blocks: the latest ``tool`` message content, then the latest ``user`` text (``n > 1``: none)."""
    history = chat_history(document)
    if isinstance(history, Refusal):
        return history
    tool_blocks = _latest_with_role(history.items, "tool", "tool")
    user_blocks = _latest_with_role(history.items, "user", "user_text")
    return LiveZone(tuple(tool_blocks + user_blocks), joined_text(user_blocks), history.model)


def _latest_with_role(messages: list[JsonValue], role: str, kind: str) -> list[Block]:
    found = last_object(messages, lambda message: message.get("role") == role)
    if found is None:
        return []
    index, message = found
    return text_parts(message.get("content"), ("messages", index, "content"), kind, "text")
