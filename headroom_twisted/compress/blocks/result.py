"""What the block policy returns for one block.

Kept apart from `policy` so the request level can name the record without
loading the detector and the compressors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BlockReason = Literal["below_threshold", "unsupported_type", "compressor_error", "rejected_not_smaller", "compressed"]


@dataclass(frozen=True)
class BlockResult:
    """One block's text after the policy, with the figures it measured on that text.

    ``text_bytes_*`` count the UTF-8 bytes of the decoded text, not of the
    JSON string literal it came in (that is `BlockDecision.literal_bytes_*`).
    """

    text: str
    changed: bool
    content_type: str
    strategy: str
    reason: BlockReason
    text_bytes_before: int
    text_bytes_after: int
    tokens_before: int | None
    tokens_after: int | None
    ms: float
