"""What a walker reports: the blocks to compress in one request, or why there are none.

Walkers read the parsed document only; they never see bytes. A block names
its string literal by path, so surgery can find it in the original body, and
carries the query it is compressed for, so the compressors can tell what in
it is relevant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from headroom_twisted.compress.json_value import JsonObject, JsonValue
from headroom_twisted.compress.spans import JsonPath
from headroom_twisted.compress.tool_call import ToolCall

T = TypeVar("T")

RefusalReason = Literal["not_json_object", "n_greater_than_one", "no_messages", "no_input_items"]

_OPENING_TAG = re.compile(r"<([A-Za-z][\w-]*)[^<>]*>")


@dataclass(frozen=True)
class Block:
    """One compressible string: where it is, what it is, its text, its query, and the call that produced it."""

    path: JsonPath
    kind: str  # "tool", "user_text", "tool_result", "function_call_output", ...
    text: str
    query: str = ""
    call: ToolCall | None = None
    """The tool call whose output this is, when the request holds it (stable mode): a file
    read is folded only when the call says which file and how the agent reads part of it."""


@dataclass(frozen=True)
class Selection:
    """The blocks a walker chose, each with its own query, for one request."""

    blocks: tuple[Block, ...]
    model: str | None
    frozen_message_count: int | None = None


@dataclass(frozen=True)
class LiveZone:
    """The blocks no prompt cache can hold yet, and the question they serve."""

    blocks: tuple[Block, ...]
    query: str
    model: str | None
    frozen_message_count: int | None = None

    def selection(self) -> Selection:
        """Every live-zone block is compressed for the zone's one query."""
        blocks = tuple(replace(block, query=self.query) for block in self.blocks)
        return Selection(blocks, self.model, self.frozen_message_count)


@dataclass(frozen=True)
class Refusal:
    """The request's shape rules compression out (``no_messages``, ``n_greater_than_one``...)."""

    reason: RefusalReason
    model: str | None


def model_of(document: Mapping[str, JsonValue]) -> str | None:
    model = document.get("model")
    return model if isinstance(model, str) else None


def text_parts(content: JsonValue, path: JsonPath, kind: str, part_type: str) -> list[Block]:
    """Blocks for a string content, or for the ``part_type`` parts of a list content.

    Every other part (images, files, unknown types) is left alone, and so is
    a part whose ``text`` is not a string.
    """
    if isinstance(content, str):
        return [Block(path, kind, content)]
    if not isinstance(content, list):
        return []
    return [
        Block((*path, index, "text"), kind, text)
        for index, part in enumerate(content)
        if isinstance(part, dict) and part.get("type") == part_type and isinstance(text := part.get("text"), str)
    ]


def joined_text(blocks: Sequence[Block]) -> str:
    return "\n".join(block.text for block in blocks)


def last_index(items: Sequence[T], predicate: Callable[[T], bool]) -> int | None:
    """Index of the last item for which ``predicate`` is true."""
    for index in range(len(items) - 1, -1, -1):
        if predicate(items[index]):
            return index
    return None


def last_object(items: Sequence[JsonValue], predicate: Callable[[JsonObject], bool]) -> tuple[int, JsonObject] | None:
    """Index and value of the last item that is an object for which ``predicate`` is true."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if isinstance(item, dict) and predicate(item):
            return index, item
    return None


def is_client_reminder(text: str) -> bool:
    """True for text a client wraps whole in one tag, such as ``<system-reminder>...</system-reminder>``.

    Agents add such blocks to user messages (Claude Code's reminders, Codex's
    ``<environment_context>``); they are not the user's question, so they never
    become the query and are never compressed.
    """
    stripped = text.strip()
    opening = _OPENING_TAG.match(stripped)
    return opening is not None and stripped.endswith(f"</{opening.group(1)}>")
