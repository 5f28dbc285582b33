"""Compress the payload inside an agent's wrapper; the wrapper and cut markers stay verbatim.

:mod:`envelope` finds the wrapper lines and the agent's own truncation
markers. Here the payload between them is detected on its own (a JSON list
behind a Codex header is JSON again) and compressed by that type's
compressor. A line compressor (logs, search, listings, diffs) gets the whole
payload at once: it keeps cut lines itself, and it judges which question
words are rare across all of the output, not within one stretch. JSON gets
each stretch between cut markers separately, since a cut leaves two
fragments that do not parse as one. Wrapper lines and cut lines are copied
unchanged: they hold the exit code and the path where the agent saved the
full output, which is how the model fetches what was cut.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import chain

from headroom_twisted.compress.blocks import detect, envelope
from headroom_twisted.compress.compressors.result import CompressResult, NotApplicable

MIN_RUN_CHARS = 512  # as the block threshold: smaller stretches cost more to mark than they save

Compressor = Callable[[str, str], CompressResult]


def unwrapping(inner: Mapping[str, Compressor]) -> Compressor:
    """A compressor for wrapped outputs that hands each payload stretch to ``inner[payload type]``.

    Taking the registry as an argument keeps one registry (in ``blocks``)
    without an import cycle.
    """

    def compress(text: str, query: str) -> CompressResult:
        return _compress(text, query, inner)

    return compress


def _compress(text: str, query: str, inner: Mapping[str, Compressor]) -> CompressResult:
    wrapped = envelope.peel(text)
    if wrapped is None:
        raise NotApplicable("no agent wrapper")
    runs = envelope.split_at_cuts(wrapped.payload.split("\n"))
    payload = "\n".join(chain.from_iterable(run for is_cut, run in runs if not is_cut))
    content_type = detect.detect(payload)
    compressor = inner.get(content_type)
    if compressor is None:
        raise NotApplicable(f"payload is {content_type}")
    if content_type != "json":
        runs = [(False, wrapped.payload.split("\n"))]
    out: list[str] = []
    strategies: list[str] = []
    for is_cut, run in runs:
        piece = "\n".join(run)
        if not is_cut and len(piece) >= MIN_RUN_CHARS:
            piece, strategy = _compress_piece(piece, query, compressor)
            strategies.extend(strategy)
        out.append(piece)
    if not strategies:
        raise NotApplicable("nothing to compress between the cut markers")
    inner_strategy = max(set(strategies), key=strategies.count)
    return CompressResult(wrapped.head + "\n".join(out) + wrapped.tail, f"wrapped_{inner_strategy}")


def _compress_piece(piece: str, query: str, compressor: Compressor) -> tuple[str, list[str]]:
    """The compressed piece and its strategy, or the piece itself when it does not shrink."""
    try:
        result = compressor(piece, query)
    except NotApplicable:
        return piece, []
    if len(result.text) >= len(piece):
        return piece, []
    return result.text, [result.strategy]
