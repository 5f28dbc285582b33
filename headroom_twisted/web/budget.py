"""One bound on the request bodies held in memory at once, across all connections.

Every request body is buffered whole (it is compressed from memory), so a
per-request limit alone lets a handful of large uploads take the process to
gigabytes and stall everything else. A request reserves its announced
Content-Length (or, chunked, each chunk as it arrives) before its bytes are
kept; what does not fit is refused with a 503 and ``Retry-After`` before the
upstream is contacted, and the reservation is returned when the request ends.
"""

from __future__ import annotations

RETRY_AFTER_SECONDS = 5


class BodyBudget:
    """Bytes of request bodies in flight, at most ``max_bytes`` (reactor thread only)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.in_use = 0

    def reserve(self, size: int) -> bool:
        """Take ``size`` more bytes if they fit; False (and nothing taken) if not."""
        if self.in_use + size > self.max_bytes:
            return False
        self.in_use += size
        return True

    def release(self, size: int) -> None:
        self.in_use -= size
