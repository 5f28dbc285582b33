"""One bound on the request bodies held in memory at once, across all connections, with a share per client.

Every request body is buffered whole (it is compressed from memory), so a
per-request limit alone lets a handful of large uploads take the process to
gigabytes and stall everything else. A request reserves its bytes as they
arrive, before they are kept; what does not fit is refused with a 503 and
``Retry-After`` before the upstream is contacted, and the reservation is
returned when the request ends.

Bytes received, not bytes announced: a reservation on ``Content-Length``
let eleven connections that announce 100 MiB and send almost nothing hold
the whole budget, and every ordinary request got 503 for as long as they
trickled. And one client address holds at most ``max_per_client`` of it, so
a single host cannot crowd out the rest even with bytes it really sends.
"""

from __future__ import annotations

RETRY_AFTER_SECONDS = 5


class BodyBudget:
    """Bytes of request bodies in flight, at most ``max_bytes`` in all and ``max_per_client`` per
    client address (reactor thread only)."""

    def __init__(self, max_bytes: int, max_per_client: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_per_client = max_bytes if max_per_client is None else max_per_client
        self.in_use = 0
        self._by_client: dict[str, int] = {}

    def reserve(self, size: int, client: str = "") -> bool:
        """Take ``size`` more bytes for ``client`` if they fit; False (and nothing taken) if not."""
        held = self._by_client.get(client, 0)
        if self.in_use + size > self.max_bytes or held + size > self.max_per_client:
            return False
        self.in_use += size
        self._by_client[client] = held + size
        return True

    def release(self, size: int, client: str = "") -> None:
        self.in_use -= size
        left = self._by_client.get(client, 0) - size
        if left > 0:
            self._by_client[client] = left
        else:
            self._by_client.pop(client, None)
