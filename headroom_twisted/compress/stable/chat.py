"""Every tool output and user text of an OpenAI Chat Completions conversation.

A block's query is the text of the latest user message before it, so the
same block gets the same query on every turn: later turns only append
messages. Only message contents are ever rewritten; ``tools``,
``tool_choice``, ``stream_options`` and every other field are read at most.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from headroom_twisted.compress.livezone.model import (
    Block,
    Refusal,
    Selection,
    is_client_reminder,
    joined_text,
    model_of,
    text_parts,
)


def find_blocks(document: Any) -> Selection | Refusal:
    """Blocks: the content of every ``tool`` message and every ``user`` text.

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
    blocks: list[Block] = []
    query = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        path = ("messages", index, "content")
        if role == "tool":
            blocks += [replace(b, query=query) for b in text_parts(message.get("content"), path, "tool", "text")]
        elif role == "user":
            texts = text_parts(message.get("content"), path, "user_text", "text")
            authored = [b for b in texts if not is_client_reminder(b.text)]
            blocks += [replace(b, query=query) for b in authored]
            if authored:
                query = joined_text(authored)
    return Selection(tuple(blocks), model)
