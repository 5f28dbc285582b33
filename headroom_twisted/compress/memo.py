"""A bounded, thread-safe memo of block rewrites, least recently used first out.

Keys come from `plan.rewrite_key`, so an entry is valid in any process and
after any restart; the memo only saves work. A miss recomputes the very same
bytes, which is why dropping entries (or having none) never changes what
the upstream receives. With a `MemoStore` (``--state-dir``) behind it, a
miss in memory is looked up on disk, and every new rewrite is kept there
too, for the next process.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from headroom_twisted.compress.memo_store import MemoStore
from headroom_twisted.compress.rewrite import Rewrite

ENTRY_OVERHEAD_BYTES = 200
"""What an entry costs besides its literal: key, record and dict slot, roughly."""


class RewriteMemo:
    """Rewrites by key, holding at most ``max_bytes`` of literals and overhead."""

    def __init__(self, max_bytes: int, store: MemoStore | None = None) -> None:
        self._max_bytes = max_bytes
        self._store = store
        self._entries: OrderedDict[bytes, Rewrite] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: bytes) -> Rewrite | None:
        with self._lock:
            rewrite = self._entries.get(key)
            if rewrite is not None:
                self._entries.move_to_end(key)
                return rewrite
        if self._store is None:
            return None
        stored = self._store.get(key)
        if stored is not None:
            self._remember(key, stored)
        return stored

    def put(self, key: bytes, rewrite: Rewrite) -> None:
        self._remember(key, rewrite)
        if self._store is not None:
            self._store.put(key, rewrite)

    def _remember(self, key: bytes, rewrite: Rewrite) -> None:
        cost = _cost(rewrite)
        if cost > self._max_bytes:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= _cost(old)
            self._entries[key] = rewrite
            self._bytes += cost
            while self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= _cost(evicted)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes


def _cost(rewrite: Rewrite) -> int:
    return ENTRY_OVERHEAD_BYTES + (len(rewrite.literal) if rewrite.literal is not None else 0)
