"""compress_block: the policy around the compressors, and its never-raise promise."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import structlog

from headroom_twisted.compress.__main__ import main
from headroom_twisted.compress.blocks import policy as blocks
from headroom_twisted.compress.compressors.result import CompressResult
from headroom_twisted.compress.tool_call import tool_call

ROWS = json.dumps([{"id": i, "name": f"item{i}", "state": "ok"} for i in range(400)], indent=2)


def test_compresses_and_reports_figures() -> None:
    result = blocks.compress_block(ROWS, "what is the state of item123?", "gpt-4o")
    assert result.changed and result.reason == "compressed"
    assert (result.content_type, result.strategy) == ("json", "json_rows")
    assert '{"id":123,"name":"item123","state":"ok"}' in result.text
    assert result.tokens_after < result.tokens_before
    assert result.text_bytes_before == len(ROWS.encode()) and result.text_bytes_after == len(result.text.encode())
    assert result.ms > 0


def test_small_blocks_are_skipped_uncounted() -> None:
    result = blocks.compress_block('{"a": 1}', "", None)
    assert (result.changed, result.reason, result.tokens_before, result.content_type) == (
        False,
        "below_threshold",
        None,
        "json",
    )


def test_prose_and_code_are_left_alone() -> None:
    prose = "It was a bright cold day in April, and the clocks were striking thirteen. " * 20
    result = blocks.compress_block(prose, "", None)
    assert (result.text, result.changed, result.reason) == (prose, False, "unsupported_type")


def test_result_kept_only_when_strictly_fewer_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(blocks.COMPRESSORS, "json", lambda text, query: CompressResult(text + " ", "fake"))
    result = blocks.compress_block(ROWS, "", None)
    assert (result.text, result.changed, result.reason) == (ROWS, False, "rejected_not_smaller")
    assert result.tokens_before == result.tokens_after


def test_compressor_exception_fails_open_and_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str, query: str) -> CompressResult:
        raise RuntimeError("bug")

    monkeypatch.setitem(blocks.COMPRESSORS, "json", boom)
    with structlog.testing.capture_logs() as logs:
        result = blocks.compress_block(ROWS, "", None)
    assert (result.text, result.changed, result.reason) == (ROWS, False, "compressor_error")
    assert logs[0]["event"] == "compressor_error" and logs[0]["log_level"] == "error"


def test_json_lookalike_is_unsupported_not_an_error() -> None:
    text = "[" + "2024-01-01 12:00:00 started worker\n" * 30 + "]"
    assert blocks.compress_block(text, "", None).reason in ("unsupported_type", "compressed")


def test_thread_safe_and_deterministic_under_concurrency() -> None:
    blocks.warm_up()
    expected = blocks.compress_block(ROWS, "item7", None).text
    with ThreadPoolExecutor(max_workers=4) as pool:
        texts = list(pool.map(lambda _: blocks.compress_block(ROWS, "item7", None).text, range(16)))
    assert set(texts) == {expected}


def test_byte_identical_across_processes(tmp_path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(ROWS)
    outputs = {
        subprocess.run(
            [sys.executable, "-m", "headroom_twisted.compress", str(path), "--query", "item9"],
            capture_output=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_cli_prints_text_and_summary(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "rows.json"
    path.write_text(ROWS)
    assert main([str(path), "--query", "item9", "--model", "gpt-4"]) == 0
    captured = capsys.readouterr()
    assert '"name":"item9"' in captured.out
    assert captured.err.startswith("type=json strategy=json_rows reason=compressed tokens=")


def test_a_source_read_folds_and_a_cat_of_a_log_is_compressed_as_a_log() -> None:
    source = "import os\n\n" + "\n\n".join(
        f"def f{i}(a):\n" + "".join(f"    x{j} = a + {j}\n" for j in range(12)) for i in range(20)
    )
    read = blocks.compress_block(source, "", "cl100k_base", tool_call("Bash", {"command": "cat src/m.py"}))
    assert read.changed and read.content_type == "code" and read.strategy == "code_fold"
    log = "\n".join(f"[INFO] worker {i} started, queue ok" for i in range(400)) + "\nERROR db down"
    result = blocks.compress_block(log, "", "cl100k_base", tool_call("Bash", {"command": "cat /var/log/app.log"}))
    assert result.changed and result.content_type == "log" and "ERROR db down" in result.text
