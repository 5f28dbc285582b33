"""The value every compressor returns.

Compressors are pure functions ``compress(text, query) -> CompressResult``;
keeping their output a small frozen record lets the block runner compare,
log and count without knowing which compressor ran.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompressResult:
    """Compressed text and the strategy that produced it."""

    text: str
    strategy: str


class NotApplicable(ValueError):
    """Raised by a compressor whose input turns out not to be its type (e.g. not JSON after all).

    Detection looks at a prefix, so it can be wrong; this is an expected
    outcome, reported as ``unsupported_type``, not a compressor error.
    """
