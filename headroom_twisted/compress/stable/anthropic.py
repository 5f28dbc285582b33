"""Every ``tool_result`` and user text of an Anthropic Messages conversation.

``cache_control`` markers freeze nothing here: the rewrite of a block is the
same on every turn, so the cached prefix the markers point at stays valid.
The markers themselves sit outside the rewritten literals and are never
touched, and neither are ``tool_use``, ``thinking``, ``redacted_thinking``,
signatures, images, documents, ``system`` or ``tools``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from headroom_twisted.compress.livezone.model import (
    Block,
    Refusal,
    Selection,
    is_client_reminder,
    model_of,
    text_parts,
)


def find_blocks(document: Any) -> Selection | Refusal:
    """Blocks of every user message, in order, each with the latest user text before it.

    Client reminders (``<system-reminder>...``) are neither compressed nor
    taken as the query: they are the client's notes, not the user's words.
    """
    if not isinstance(document, dict):
        return Refusal("not_json_object", None)
    model = model_of(document)
    messages = document.get("messages")
    if not isinstance(messages, list):
        return Refusal("no_messages", model)
    blocks: list[Block] = []
    query = ""
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        for block in _user_blocks(message.get("content"), ("messages", index, "content")):
            if block.kind == "user_text":
                if is_client_reminder(block.text):
                    continue
                blocks.append(replace(block, query=query))
                query = block.text
            else:
                blocks.append(replace(block, query=query))
    return Selection(tuple(blocks), model)


def _user_blocks(content: Any, path: tuple[str | int, ...]) -> list[Block]:
    if isinstance(content, str):
        return [Block(path, "user_text", content)]
    if not isinstance(content, list):
        return []
    blocks: list[Block] = []
    for position, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            blocks.append(Block((*path, position, "text"), "user_text", block["text"]))
        elif kind == "tool_result":
            blocks += text_parts(block.get("content"), (*path, position, "content"), "tool_result", "text")
    return blocks
