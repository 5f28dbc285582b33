"""Incremental server-sent-event framing: bytes in, events out.

Upstream chunks arrive split at arbitrary byte positions (inside a line
terminator, inside a UTF-8 character), so the framer works on bytes and only
decodes a field once its line is complete: line terminators are ASCII and
never occur inside a multibyte sequence. It follows the WHATWG event-stream
rules (CRLF, LF or CR line ends; `:` comments; `data:` lines joined with
`\\n`; `event:`, `id:`, `retry:`; a blank line dispatches) and caps memory: an
event whose lines (each counted raw, with one byte for its terminator) grow
past `max_event_bytes` before its blank line is dropped and counted instead
of buffered forever. The count is taken the same way for a partial line as
for a complete one, so whether an event is dropped never depends on chunking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event, as an EventSource client would see it."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEFramer:
    """Turns a byte stream into `SSEEvent`s, one `feed()` call per chunk."""

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.comments = 0
        self.oversized_events = 0
        self._partial = bytearray()
        self._partial_discarded = False
        self._skip_lf = False
        self._at_start = True
        self._data: list[bytes] = []
        self._size = 0
        self._event_type = b""
        self._retry: int | None = None
        self._last_id: str | None = None
        self._discarding = False

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Consume one chunk and return the events it completed, in order."""
        if self._skip_lf:
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if not data:
            return []
        self._skip_lf = data[-1:] == b"\r"
        pieces = _LINE_END.split(data)
        events: list[SSEEvent] = []
        if len(pieces) > 1:
            self._line(self._take_partial(pieces[0]), events)
            for line in pieces[1:-1]:
                self._line(line, events)
        self._extend_partial(pieces[-1])
        return events

    def _take_partial(self, tail: bytes) -> bytes | None:
        """Complete the buffered line; None means it was dropped but not blank."""
        if self._partial_discarded:
            self._partial_discarded = False
            return None
        if not self._partial:
            return tail
        line = bytes(self._partial) + tail
        self._partial.clear()
        return line

    def _extend_partial(self, piece: bytes) -> None:
        if not piece:
            return
        if self._discarding or self._partial_discarded:
            self._partial_discarded = True
            return
        self._partial += piece
        if self._size + len(self._partial) > self.max_event_bytes:
            self._partial.clear()
            self._partial_discarded = True
            self._drop_event()

    def _drop_event(self) -> None:
        """Forget the runaway event; skip its remaining lines up to the blank line."""
        self.oversized_events += 1
        self._discarding = True
        self._data = []
        self._size = 0
        self._event_type = b""
        self._retry = None

    def _line(self, line: bytes | None, events: list[SSEEvent]) -> None:
        at_start, self._at_start = self._at_start, False
        if line is None:
            return
        if not line:
            self._dispatch(events)
            return
        if self._discarding:
            return
        if self._size + len(line) > self.max_event_bytes:
            self._drop_event()
            return
        self._size += len(line) + 1
        if at_start and line.startswith(_BOM):
            line = line[len(_BOM) :]
        if line[:1] == b":":
            self.comments += 1
            return
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event_type = value
        elif name == b"id":
            if b"\0" not in value:
                self._last_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():
                self._retry = int(value)

    def _dispatch(self, events: list[SSEEvent]) -> None:
        if self._discarding:
            self._discarding = False
        elif self._data:
            events.append(
                SSEEvent(
                    event=self._event_type.decode("utf-8", "replace") or "message",
                    data=b"\n".join(self._data).decode("utf-8", "replace"),
                    id=self._last_id,
                    retry=self._retry,
                )
            )
        self._data = []
        self._size = 0
        self._event_type = b""
        self._retry = None
