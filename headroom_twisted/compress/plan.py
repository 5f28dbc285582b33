"""First half of compressing a request: parse, select blocks, find their bytes.

Runs in a compression worker. It returns only small plain data: where each
selected block's string literal is in the body, and a key that names the
block's rewrite (its literal, its query, the tokenizer and the compressor
version). The proxy looks the keys up in its memo and asks a worker to
compress only the blocks it has not seen, so a turn that resends two hundred
old tool outputs costs a parse and a hash, not two hundred compressions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from headroom_twisted.compress.blocks.tokens import counter_for, counter_for_provider
from headroom_twisted.compress.json_value import JsonValue
from headroom_twisted.compress.livezone import anthropic as livezone_anthropic
from headroom_twisted.compress.livezone import chat as livezone_chat
from headroom_twisted.compress.livezone import responses as livezone_responses
from headroom_twisted.compress.livezone.model import LiveZone, Refusal, RefusalReason, Selection
from headroom_twisted.compress.spans import JsonPath, ParseFailure, Span, SpanNotFound, locate_strings, parse_body
from headroom_twisted.compress.stable import anthropic as stable_anthropic
from headroom_twisted.compress.stable import chat as stable_chat
from headroom_twisted.compress.stable import responses as stable_responses
from headroom_twisted.compress.tool_call import ToolCall
from headroom_twisted.compress.version import COMPRESSOR_VERSION
from headroom_twisted.config import CompressingMode
from headroom_twisted.endpoints import Endpoint

Walker = Callable[[JsonValue], LiveZone | Selection | Refusal]

WALKERS: dict[CompressingMode, dict[Endpoint, Walker]] = {
    "stable": {
        Endpoint.CHAT: stable_chat.find_blocks,
        Endpoint.ANTHROPIC: stable_anthropic.find_blocks,
        Endpoint.RESPONSES: stable_responses.find_blocks,
    },
    "live_zone": {
        Endpoint.CHAT: livezone_chat.find_live_zone,
        Endpoint.ANTHROPIC: livezone_anthropic.find_live_zone,
        Endpoint.RESPONSES: livezone_responses.find_live_zone,
    },
}

# A Python str has no UTF-8 spelling exactly when it holds a surrogate code
# point; JSON decoding joins valid escaped pairs, so any left here is lone.
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One selected block: where its literal is and the key of its rewrite."""

    path: JsonPath
    kind: str
    span: Span
    query: int
    """Index into `Plan.queries`."""
    key: bytes
    call: ToolCall | None
    """The tool call that produced the block, if the request holds it (see `tool_call`)."""


@dataclass(frozen=True)
class Plan:
    """The blocks of one request to compress, without their text."""

    model: str | None
    encoding: str
    frozen_message_count: int | None
    queries: tuple[str, ...]
    candidates: tuple[Candidate, ...]


PlanReason = RefusalReason | Literal["not_json", "too_deep", "no_live_zone", "no_blocks", "spans_not_found"]
"""Why a plan has nothing to compress: the body did not parse (``not_json``,
``too_deep``), a walker refused it, no block was selected (``no_live_zone``
in live-zone mode, ``no_blocks`` in stable mode), or a selected string was
not found in the bytes."""


@dataclass(frozen=True)
class NothingToDo:
    """Why a request needs no compression: ``passthrough`` (cannot) or ``no_change`` (nothing selected)."""

    decision: Literal["passthrough", "no_change"]
    reason: PlanReason
    model: str | None
    frozen_message_count: int | None = None


def plan_request(body: bytes, endpoint: Endpoint, mode: CompressingMode) -> Plan | NothingToDo:
    """Select the blocks ``mode`` compresses in ``body``; exceptions are the caller's to fail open on."""
    parsed = parse_body(body)
    if isinstance(parsed, ParseFailure):
        return NothingToDo("passthrough", parsed.reason, None)
    found = WALKERS[mode][endpoint](parsed.document)
    if isinstance(found, Refusal):
        return NothingToDo("passthrough", found.reason, found.model)
    selection = found.selection() if isinstance(found, LiveZone) else found
    if not selection.blocks:
        reason: PlanReason = "no_live_zone" if mode == "live_zone" else "no_blocks"
        return NothingToDo("no_change", reason, selection.model, selection.frozen_message_count)
    try:
        spans = locate_strings(body, parsed.offset, {block.path: block.text for block in selection.blocks})
    except SpanNotFound:
        return NothingToDo("passthrough", "spans_not_found", selection.model, selection.frozen_message_count)
    encoding = _encoding(endpoint, mode, selection.model)
    queries: dict[str, int] = {}
    candidates = []
    for block in selection.blocks:
        query = SURROGATE.sub("\ufffd", block.query)
        index = queries.setdefault(query, len(queries))
        span = spans[block.path]
        key = rewrite_key(memoryview(body)[span.start : span.end], query, encoding, block.call)
        candidates.append(Candidate(block.path, block.kind, span, index, key, block.call))
    return Plan(selection.model, encoding, selection.frozen_message_count, tuple(queries), tuple(candidates))


def rewrite_key(literal: bytes | memoryview, query: str, encoding: str, call: ToolCall | None = None) -> bytes:
    """What a block's rewrite is a pure function of: literal, query, the tool call that produced it,
    tokenizer and compressor version.

    Never the model name, the time or anything in this process, so every
    process computes the same key and the same rewrite for the same block.
    """
    digest = hashlib.sha256()  # SHA extensions make it several times faster than blake2b on x86
    origin = call.identity() if call is not None else b""
    for part in (COMPRESSOR_VERSION.encode(), encoding.encode(), query.encode("utf-8"), origin):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(literal)
    return digest.digest()


def _encoding(endpoint: Endpoint, mode: CompressingMode, model: str | None) -> str:
    """Stable mode counts with one encoding per provider, so a model switch cannot flip a decision."""
    if mode == "stable":
        return counter_for_provider(endpoint.provider.value).encoding_name
    return counter_for(model).encoding_name
