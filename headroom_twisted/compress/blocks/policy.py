"""The one entry point the proxy calls per live-zone block.

It owns the policy every compressor shares: skip small blocks, pick the
compressor by content type, and keep a result only when the model's own
tokenizer says it is strictly smaller. It fails open: whatever goes wrong,
the caller gets the original text back and a reason, never an exception.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog
from structlog.typing import FilteringBoundLogger

from headroom_twisted.compress.blocks import detect as detection
from headroom_twisted.compress.blocks import wrappers
from headroom_twisted.compress.blocks.result import BlockReason, BlockResult
from headroom_twisted.compress.blocks.threshold import MIN_BLOCK_BYTES
from headroom_twisted.compress.blocks.tokens import counter_for, counter_for_encoding, counter_for_provider
from headroom_twisted.compress.compressors import diff, json_rows, listing, logs, search
from headroom_twisted.compress.compressors.result import CompressResult, NotApplicable
from headroom_twisted.compress.folding import fold, reads
from headroom_twisted.compress.tool_call import ToolCall

log: FilteringBoundLogger = structlog.get_logger(__name__)


Compressor = Callable[[str, str], CompressResult]

COMPRESSORS: dict[str, Compressor] = {
    "json": json_rows.compress,
    "log": logs.compress,
    "search": search.compress,
    "diff": diff.compress,
    "listing": listing.compress,
}
COMPRESSORS["wrapped"] = wrappers.unwrapping(dict(COMPRESSORS))


def compress_block(text: str, query: str, encoding: str, call: ToolCall | None = None) -> BlockResult:
    """Compress one block if that makes it strictly fewer tokens in ``encoding``; never raises.

    A block that ``call`` says is a source file the agent read is folded
    around the question (see ``folding``); any other block, a ``cat`` of a
    log or a JSON file included, is detected by content.
    """
    started = time.perf_counter()
    size = _utf8_len(text)
    content_type = "text"
    try:
        if size < MIN_BLOCK_BYTES:
            content_type = detection.detect_structure(text) or "text"
            return _unchanged(text, size, content_type, "below_threshold", started)
        read = reads.recognise(call, text) if call is not None else None
        language = fold.language_of(read) if read is not None else None
        if read is not None and language is not None:
            content_type = "code"
            compressor: Compressor | None = fold.folding(read, language)
        else:
            content_type = detection.detect(text)
            compressor = COMPRESSORS.get(content_type)
        if compressor is None:
            return _unchanged(text, size, content_type, "unsupported_type", started)
        try:
            result = compressor(text, query)
        except NotApplicable:
            return _unchanged(text, size, content_type, "unsupported_type", started)
        counter = counter_for_encoding(encoding)
        before = counter.count(text)
        after = counter.count(result.text) if result.text != text else before
    except Exception:
        log.exception("compressor_error", content_type=content_type, bytes=size)
        return _unchanged(text, size, content_type, "compressor_error", started)
    if after >= before:
        return BlockResult(
            text,
            False,
            content_type,
            result.strategy,
            "rejected_not_smaller",
            size,
            size,
            before,
            before,
            _ms_since(started),
        )
    return BlockResult(
        result.text,
        True,
        content_type,
        result.strategy,
        "compressed",
        size,
        _utf8_len(result.text),
        before,
        after,
        _ms_since(started),
    )


def warm_up() -> None:
    """Load Magika, the grammars and the tokenizers before the proxy reports ready."""
    detection.warm_up()
    fold.warm_up()
    counter_for(None)
    counter_for("gpt-4o")
    counter_for_provider("openai")
    counter_for_provider("anthropic")


def _unchanged(text: str, size: int, content_type: str, reason: BlockReason, started: float) -> BlockResult:
    return BlockResult(text, False, content_type, "none", reason, size, size, None, None, _ms_since(started))


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
