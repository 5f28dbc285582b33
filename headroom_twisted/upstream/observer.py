"""The side branch of the response byte path: observers that read a copy.

The body protocol hands every upstream chunk to an observer *after* it has
been written to the client, and tells it once how the stream ended. An
observer must never raise and never block; the SSE telemetry parser is one.
"""

from __future__ import annotations

import enum
from typing import Protocol


class StreamEnd(enum.Enum):
    """How the upstream response body ended, as the byte path saw it."""

    COMPLETE = "complete"  # the upstream finished the body normally
    TRUNCATED = "truncated"  # the upstream connection ended early (reset, idle timeout)
    CLIENT_DISCONNECTED = "client_disconnected"  # the client went away first


class BodyObserver(Protocol):
    """Reads a copy of the response body; must never raise into the byte path."""

    def chunk(self, data: bytes) -> None:
        """Called with each chunk, in order, after it was sent to the client."""

    def finished(self, end: StreamEnd) -> None:
        """Called exactly once when the body ends, whichever way."""
