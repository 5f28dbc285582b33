"""Every tool output and user text of an OpenAI Chat Completions conversation.

A block's query is the text of the latest user message before it, so the
same block gets the same query on every turn: later turns only append
messages. Only message contents are ever rewritten; ``tools``,
``tool_choice``, ``stream_options`` and every other field are read at most.
"""

from __future__ import annotations

from dataclasses import replace

from headroom_twisted.compress.json_value import JsonValue
from headroom_twisted.compress.livezone.history import chat_history
from headroom_twisted.compress.livezone.model import (
    Block,
    Refusal,
    Selection,
    is_client_reminder,
    joined_text,
    text_parts,
)
from headroom_twisted.compress.tool_call import ToolCall, chat_calls


def find_blocks(document: JsonValue) -> Selection | Refusal:
    """Blocks: the content of every ``tool`` message and every ``user`` text (``n > 1``: none)."""
    history = chat_history(document)
    if isinstance(history, Refusal):
        return history
    blocks: list[Block] = []
    query = ""
    calls: dict[str, ToolCall] = {}
    for index, message in enumerate(history.items):
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        path = ("messages", index, "content")
        if role == "assistant":
            calls.update(chat_calls(message))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            call = calls.get(call_id) if isinstance(call_id, str) else None
            outputs = text_parts(message.get("content"), path, "tool", "text")
            blocks += [replace(b, query=query, call=call) for b in outputs]
        elif role == "user":
            texts = text_parts(message.get("content"), path, "user_text", "text")
            authored = [b for b in texts if not is_client_reminder(b.text)]
            blocks += [replace(b, query=query) for b in authored]
            if authored:
                query = joined_text(authored)
    return Selection(tuple(blocks), history.model)
