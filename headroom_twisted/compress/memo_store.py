"""The memo's second level: rewrites kept in SQLite in the state directory, across restarts and processes.

A rewrite is a pure function of its key (`plan.rewrite_key`), so a rewrite
computed by any process of the same compressor version is valid in every
other: a restarted proxy, or a sibling instance on the same host, meets a
long history warm instead of compressing it again from the first block.
Only the rewrite records are stored (the new literal and its figures),
never request bodies, keys or prompts; a rewritten literal is a tool output
the client already sent, compressed.

The file is SQLite in WAL mode, so sibling processes read while one writes.
Its size stays near ``max_bytes``: past it, the oldest entries go. Any
error (a corrupt or unwritable file) is logged once and the store turns
itself off: the memo then only lives in memory, and nothing else changes.
Records are read back field by field, never unpickled: a file someone else
can write must not be able to run code in the proxy.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar, cast, get_args

import structlog
from structlog.typing import FilteringBoundLogger

from headroom_twisted.compress.rewrite import Rewrite, RewriteReason

T = TypeVar("T")

SCHEMA_VERSION = 1
_REASONS = frozenset(value for literal in get_args(RewriteReason) for value in get_args(literal))
_ENTRY_OVERHEAD_BYTES = 200

log: FilteringBoundLogger = structlog.get_logger(__name__)


class MemoStore:
    """Rewrites by key in ``path`` (created if missing), at most about ``max_bytes``; thread-safe."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._local = threading.local()
        self._lock = threading.Lock()
        self._failed = False
        self._bytes = 0
        connection = self._connection()
        if connection is not None:
            self._guard(lambda: self._open(connection))

    def get(self, key: bytes) -> Rewrite | None:
        connection = self._connection()
        if connection is None:
            return None
        row = self._guard(
            lambda: connection.execute(
                "SELECT literal, content_type, strategy, reason, tokens_before, tokens_after, ms "
                "FROM rewrites WHERE key = ?",
                (key,),
            ).fetchone()
        )
        return _rewrite(row) if row is not None else None

    def put(self, key: bytes, rewrite: Rewrite) -> None:
        connection = self._connection()
        if connection is None:
            return
        cost = _ENTRY_OVERHEAD_BYTES + len(rewrite.literal or b"")
        self._guard(lambda: self._insert(connection, key, rewrite, cost))

    def _open(self, connection: sqlite3.Connection) -> None:
        with connection:
            connection.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER)")
            found = connection.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
            if found is not None and found[0] != SCHEMA_VERSION:
                connection.execute("DROP TABLE IF EXISTS rewrites")  # only a cache: start it again
            connection.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS rewrites (key BLOB PRIMARY KEY, literal BLOB, content_type TEXT, "
                "strategy TEXT, reason TEXT, tokens_before INTEGER, tokens_after INTEGER, ms REAL, cost INTEGER)"
            )
            total = connection.execute("SELECT COALESCE(SUM(cost), 0) FROM rewrites").fetchone()[0]
        self._bytes = int(total)

    def _insert(self, connection: sqlite3.Connection, key: bytes, rewrite: Rewrite, cost: int) -> None:
        with connection:
            inserted = connection.execute(
                "INSERT OR IGNORE INTO rewrites VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    rewrite.literal,
                    rewrite.content_type,
                    rewrite.strategy,
                    rewrite.reason,
                    rewrite.tokens_before,
                    rewrite.tokens_after,
                    rewrite.ms,
                    cost,
                ),
            ).rowcount
            with self._lock:
                self._bytes += cost * inserted
                over = self._bytes - self._max_bytes
            if over > 0:
                self._evict(connection, over)

    def _evict(self, connection: sqlite3.Connection, over: int) -> None:
        """Drop the oldest entries (by insertion) until ``over`` bytes, plus a tenth of the bound, are gone.

        The extra tenth means a full store evicts once per many inserts, not
        on every one; only the oldest rows are read, a page at a time.
        """
        goal = over + self._max_bytes // 10
        freed, last = 0, None
        while freed < goal:
            page = connection.execute(
                "SELECT rowid, cost FROM rewrites WHERE rowid > ? ORDER BY rowid LIMIT 256", (last or 0,)
            ).fetchall()
            if not page:
                break
            for rowid, cost in page:
                freed, last = freed + cost, rowid
                if freed >= goal:
                    break
        if last is not None:
            connection.execute("DELETE FROM rewrites WHERE rowid <= ?", (last,))
        with self._lock:
            self._bytes -= freed

    def _connection(self) -> sqlite3.Connection | None:
        """This thread's connection (SQLite connections are not shared between threads), or None once failed."""
        if self._failed:
            return None
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self._path, timeout=1.0)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=NORMAL")
            except (OSError, sqlite3.Error) as error:
                self._fail(error)
                return None
            self._local.connection = connection
        return connection

    def _guard(self, action: Callable[[], T]) -> T | None:
        try:
            return action()
        except sqlite3.Error as error:
            self._fail(error)
            return None

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self._failed:
                return
            self._failed = True
        log.error("memo_store_disabled", path=str(self._path), error=f"{type(error).__name__}: {error}")


def _rewrite(row: tuple[object, ...]) -> Rewrite | None:
    """A stored row as a Rewrite, or None if any field is not what it should be (a file written by another hand)."""
    literal, content_type, strategy, reason, tokens_before, tokens_after, ms = row
    if not (literal is None or isinstance(literal, bytes)) or not isinstance(ms, float | int):
        return None
    if not (isinstance(content_type, str) and isinstance(strategy, str) and reason in _REASONS):
        return None
    if not (_count(tokens_before) and _count(tokens_after)):
        return None
    before, after = cast(int | None, tokens_before), cast(int | None, tokens_after)
    return Rewrite(literal, content_type, strategy, cast(RewriteReason, reason), before, after, float(ms))


def _count(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))
