"""Live zone of an Anthropic Messages request.

Anthropic caches explicitly: a ``cache_control`` marker on a block caches
the prompt up to and including that block. The last message carrying a
marker, and everything before it, may therefore be a cache hit on this or
the next request, and rewriting any of it would turn that hit into a miss.
``system`` and ``tools`` come before ``messages`` in the cached prefix and
are never rewritten, so markers there do not move the frozen boundary.

Clients that mark the newest user message itself (Claude Code does) freeze
the whole conversation: the live zone is empty and nothing is compressed.
"""

from __future__ import annotations

from typing import TypeGuard

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.compress.livezone.history import anthropic_history, anthropic_user_blocks
from headroom_twisted.compress.livezone.model import (
    LiveZone,
    Refusal,
    joined_text,
    last_index,
    last_object,
)


def find_live_zone(document: JsonValue) -> LiveZone | Refusal:
    """Blocks: text and ``tool_result`` blocks of the latest unfrozen user message."""
    history = anthropic_history(document)
    if isinstance(history, Refusal):
        return history
    messages, model = history.items, history.model
    last_marked = last_index(messages, _carries_cache_control)
    frozen = 0 if last_marked is None else last_marked + 1
    query = _latest_human_text(messages)
    latest_user = last_object(messages, _is_user)
    if latest_user is None or latest_user[0] < frozen:
        return LiveZone((), query, model, frozen)
    index, message = latest_user
    return LiveZone(tuple(anthropic_user_blocks(message, index)), query, model, frozen)


def _is_user(message: JsonValue) -> TypeGuard[JsonObject]:
    return isinstance(message, dict) and message.get("role") == "user"


def _carries_cache_control(message: JsonValue) -> bool:
    """A marker on the message, on any of its blocks, or inside a tool_result.

    Erring towards "marked" only ever freezes more, which is the safe side.
    """
    if not isinstance(message, dict):
        return False
    if "cache_control" in message:
        return True
    content = message.get("content")
    if not isinstance(content, list):
        return False
    return any(_block_carries_cache_control(block) for block in content)


def _block_carries_cache_control(block: JsonValue) -> bool:
    if not isinstance(block, dict):
        return False
    if "cache_control" in block:
        return True
    nested = block.get("content")
    return isinstance(nested, list) and any(isinstance(inner, dict) and "cache_control" in inner for inner in nested)


def _latest_human_text(messages: list[JsonValue]) -> str:
    """Text of the latest user message that has any; tool_result-only turns are skipped."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if _is_user(message):
            texts = [b for b in anthropic_user_blocks(message, index) if b.kind == "user_text"]
            if texts:
                return joined_text(texts)
    return ""
