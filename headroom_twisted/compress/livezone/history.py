"""Reading the conversation out of each API's request document, shared by both walker families.

The checks that decide whether a document has a conversation at all (an
object, ``n``, a list of messages or input items), and the shapes of user
content, are the same whether the live zone or every block is selected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TypeGuard

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.compress.livezone.model import Block, Refusal, RefusalReason, model_of, text_parts
from headroom_twisted.compress.tool_call import ToolCall


@dataclass(frozen=True)
class History:
    """The conversation's messages (or Responses input items) and the request's model."""

    items: list[JsonValue]
    model: str | None


def chat_history(document: JsonValue) -> History | Refusal:
    """``messages`` of a Chat Completions request.

    ``n > 1`` asks for several samples of one prompt; it is passed through so
    that the client's sampling experiment sees exactly the prompt it wrote.
    """
    if not isinstance(document, dict):
        return Refusal("not_json_object", None)
    model = model_of(document)
    n = document.get("n")
    if isinstance(n, int | float) and not isinstance(n, bool) and n > 1:
        return Refusal("n_greater_than_one", model)
    return _list_at(document, "messages", "no_messages", model)


def anthropic_history(document: JsonValue) -> History | Refusal:
    """``messages`` of an Anthropic Messages request."""
    if not isinstance(document, dict):
        return Refusal("not_json_object", None)
    return _list_at(document, "messages", "no_messages", model_of(document))


def responses_history(document: JsonValue) -> History | Refusal:
    """``input`` items of a Responses request; a string ``input`` is one user turn with nothing to compress."""
    if not isinstance(document, dict):
        return Refusal("not_json_object", None)
    return _list_at(document, "input", "no_input_items", model_of(document))


def anthropic_user_blocks(message: JsonObject, index: int, calls: Mapping[str, ToolCall] | None = None) -> list[Block]:
    """A user message's string content, ``text`` blocks and ``tool_result`` blocks, in order.

    Every ``tool_result`` is its own block (a message may carry several),
    carrying the call named by its ``tool_use_id`` when ``calls`` holds it.
    ``tool_use``, ``thinking``, ``redacted_thinking``, images, documents,
    search results and unknown block types are never touched.
    """
    content = message.get("content")
    path = ("messages", index, "content")
    if isinstance(content, str):
        return [Block(path, "user_text", content)]
    if not isinstance(content, list):
        return []
    blocks: list[Block] = []
    for position, block in enumerate(content):
        if not isinstance(block, dict):
            continue
        kind, text = block.get("type"), block.get("text")
        if kind == "text" and isinstance(text, str):
            blocks.append(Block((*path, position, "text"), "user_text", text))
        elif kind == "tool_result":
            use_id = block.get("tool_use_id")
            call = calls.get(use_id) if calls is not None and isinstance(use_id, str) else None
            parts = text_parts(block.get("content"), (*path, position, "content"), "tool_result", "text")
            blocks += [replace(part, call=call) for part in parts]
    return blocks


def is_responses_user_message(item: JsonValue) -> TypeGuard[JsonObject]:
    """A user ``message`` item; the short form without ``type`` counts as one too."""
    return isinstance(item, dict) and item.get("type", "message") == "message" and item.get("role") == "user"


def _list_at(document: JsonObject, key: str, refusal: RefusalReason, model: str | None) -> History | Refusal:
    items = document.get(key)
    if not isinstance(items, list):
        return Refusal(refusal, model)
    return History(items, model)
