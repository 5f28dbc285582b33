"""Rewrites kept in the state directory: across restarts and instances, bounded, and harmless when broken."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from structlog.testing import capture_logs

from headroom_twisted.compress.blocks.policy import compress_block
from headroom_twisted.compress.memo import RewriteMemo
from headroom_twisted.compress.memo_store import MemoStore
from headroom_twisted.compress.pipeline import CompressionRunner, InlineWorkers
from headroom_twisted.compress.rewrite import Rewrite
from headroom_twisted.endpoints import Endpoint

REWRITE = Rewrite(b'"short"', "log", "log_triage", "compressed", 900, 40, 1.5)
KEPT = Rewrite(None, "text", "none", "below_threshold", None, None, 0.1)


def test_a_rewrite_outlives_the_process_that_made_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "memo.sqlite3"
    first = MemoStore(path, 1 << 20)
    first.put(b"k1", REWRITE)
    first.put(b"k2", KEPT)
    second = MemoStore(path, 1 << 20)
    assert (second.get(b"k1"), second.get(b"k2"), second.get(b"k3")) == (REWRITE, KEPT, None)


def test_the_oldest_entries_go_once_the_file_holds_more_than_its_bound(tmp_path: Path) -> None:
    store = MemoStore(tmp_path / "memo.sqlite3", 2_000)
    for n in range(20):
        store.put(b"k%d" % n, Rewrite(b'"' + b"x" * 100 + b'"', "log", "s", "compressed", 1, 1, 0.0))
    assert store.get(b"k0") is None and store.get(b"k19") is not None


def test_a_corrupt_file_turns_the_store_off_with_one_log_line_and_nothing_raised(tmp_path: Path) -> None:
    path = tmp_path / "memo.sqlite3"
    path.write_bytes(b"not a database" * 100)
    with capture_logs() as logs:
        store = MemoStore(path, 1 << 20)
        store.put(b"k", REWRITE)
        assert store.get(b"k") is None
    assert [entry["event"] for entry in logs] == ["memo_store_disabled"]


def test_rows_of_the_wrong_shape_are_misses_not_rewrites(tmp_path: Path) -> None:
    """Fields are read back one by one and checked; nothing is ever unpickled from the file."""
    path = tmp_path / "memo.sqlite3"
    MemoStore(path, 1 << 20).put(b"k", REWRITE)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE rewrites SET reason = 'os.system' WHERE key = ?", (b"k",))
    assert MemoStore(path, 1 << 20).get(b"k") is None


def test_a_restarted_runner_meets_a_history_warm(tmp_path: Path) -> None:
    class NoRewrites(InlineWorkers):
        def rewrite(self, jobs, encoding, deadline):
            raise AssertionError("a block the store held was compressed again")

    path = tmp_path / "memo.sqlite3"
    rows = '[{"id": %d, "state": "ok"}]'
    body = (
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "which failed?"}, {"role": "tool", '
        b'"tool_call_id": "t", "content": ' + ('"' + (rows % 1).replace('"', '\\"') * 400 + '"').encode() + b"}]}"
    )
    first = CompressionRunner(InlineWorkers(compress_block), "stable", RewriteMemo(1 << 20, MemoStore(path, 1 << 24)))
    before = first.compress(body, Endpoint.CHAT)
    restarted = CompressionRunner(NoRewrites(compress_block), "stable", RewriteMemo(1 << 20, MemoStore(path, 1 << 24)))
    after = restarted.compress(body, Endpoint.CHAT)
    assert after.body == before.body and after.blocks_from_memo == len(after.blocks) > 0
