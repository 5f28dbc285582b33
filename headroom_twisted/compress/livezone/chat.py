"""Live zone of an OpenAI Chat Completions request.

The newest tool output and the newest user text are what the provider's
prefix cache cannot hold yet; every earlier message is left as sent. Only
message contents are ever rewritten: ``tools``, ``tool_choice``,
``stream_options`` and every other field are read at most, never changed.
"""

from __future__ import annotations

from typing import Any

from headroom_twisted.compress.livezone.model import (
    Block,
    LiveZone,
    Refusal,
    joined_text,
    last_index,
    model_of,
    text_parts,
)


def find_live_zone(document: Any) -> LiveZone | Refusal:
    """Blocks: the latest ``tool`` message content, then the latest ``user`` text.

    ``n > 1`` asks for several samples of one prompt; it is passed through so
    that the client's sampling experiment sees exactly the prompt it wrote.
    """
    if not isinstance(document, dict):
        return Refusal("not_json_object", None)
    model = model_of(document)
    n = document.get("n")
    if isinstance(n, int | float) and not isinstance(n, bool) and n > 1:
        return Refusal("n_greater_than_one", model)
    messages = document.get("messages")
    if not isinstance(messages, list):
        return Refusal("no_messages", model)
    tool_blocks = _latest_with_role(messages, "tool", "tool")
    user_blocks = _latest_with_role(messages, "user", "user_text")
    return LiveZone(tuple(tool_blocks + user_blocks), joined_text(user_blocks), model)


def _latest_with_role(messages: list[Any], role: str, kind: str) -> list[Block]:
    index = last_index(messages, lambda m: isinstance(m, dict) and m.get("role") == role)
    if index is None:
        return []
    return text_parts(messages[index].get("content"), ("messages", index, "content"), kind, "text")
