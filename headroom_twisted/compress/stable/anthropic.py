"""Every ``tool_result`` and user text of an Anthropic Messages conversation.

``cache_control`` markers freeze nothing here: the rewrite of a block is the
same on every turn, so the cached prefix the markers point at stays valid.
The markers themselves sit outside the rewritten literals and are never
touched, and neither are ``tool_use``, ``thinking``, ``redacted_thinking``,
signatures, images, documents, ``system`` or ``tools``.
"""

from __future__ import annotations

from dataclasses import replace

from headroom_twisted.compress.json_value import JsonValue
from headroom_twisted.compress.livezone.history import anthropic_history, anthropic_user_blocks
from headroom_twisted.compress.livezone.model import (
    Block,
    Refusal,
    Selection,
    is_client_reminder,
)
from headroom_twisted.compress.tool_call import ToolCall, anthropic_calls


def find_blocks(document: JsonValue) -> Selection | Refusal:
    """Blocks of every user message, in order, each with the latest user text before it.

    Client reminders (``<system-reminder>...``) are neither compressed nor
    taken as the query: they are the client's notes, not the user's words.
    """
    history = anthropic_history(document)
    if isinstance(history, Refusal):
        return history
    blocks: list[Block] = []
    query = ""
    calls: dict[str, ToolCall] = {}
    for index, message in enumerate(history.items):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant":
            calls.update(anthropic_calls(message))
        if message.get("role") != "user":
            continue
        for block in anthropic_user_blocks(message, index, calls):
            if block.kind == "user_text" and is_client_reminder(block.text):
                continue
            blocks.append(replace(block, query=query))
            if block.kind == "user_text":
                query = block.text
    return Selection(tuple(blocks), history.model)
