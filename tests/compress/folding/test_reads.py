"""Which tool outputs are file reads, with which line numbers, and how the agent reads a range again."""

from __future__ import annotations

import pytest

from headroom_twisted.compress.folding.reads import NARROWED_MAX_ROWS, recognise
from headroom_twisted.compress.tool_call import tool_call

LINES = [f"line {i}" for i in range(1, 501)]


def numbered(lines: list[str], first: int = 1, pad: int = 0) -> str:
    return "\n".join(f"{first + i:>{pad}}\t{line}" for i, line in enumerate(lines))


def test_claude_read_of_a_whole_file_has_numbered_rows_and_a_read_hint() -> None:
    read = recognise(tool_call("Read", {"file_path": "/src/app/server.py"}), numbered(LINES))
    assert read is not None
    assert read.code == LINES and read.first_line == 1 and read.language == "python"
    assert read.unfold(120, 188) == "Read offset=120 limit=69"
    assert read.head + "\n".join(read.rows) + read.tail == numbered(LINES)


def test_claude_read_cut_at_its_token_cap_keeps_the_notice_as_head() -> None:
    notice = "<system-reminder>[Truncated: PARTIAL view — showing lines 1-500 of 900 total]</system-reminder>\n\n"
    read = recognise(tool_call("Read", {"file_path": "a.go"}), notice + numbered(LINES))
    assert read is not None and read.head == notice and read.code == LINES and read.language == "go"


def test_a_range_the_agent_chose_is_not_a_read_to_fold_unless_it_is_wide() -> None:
    small = LINES[:NARROWED_MAX_ROWS]
    assert recognise(tool_call("Read", {"file_path": "a.py", "offset": 40, "limit": 400}), numbered(small, 40)) is None
    wide = recognise(tool_call("Read", {"file_path": "a.py", "offset": 1, "limit": 500}), numbered(LINES))
    assert wide is not None and len(wide.rows) == 500


def test_rows_after_the_numbered_run_are_the_tail() -> None:
    text = numbered(LINES[:3], 7, pad=6) + "\n\nsomething else"
    read = recognise(tool_call("Read", {"file_path": "a.py"}), text)
    assert read is not None and read.first_line == 7 and len(read.rows) == 3
    assert read.tail == "\n\nsomething else"


def test_qwen_read_file_offsets_are_zero_based_and_its_notice_names_the_first_line() -> None:
    text = "Showing lines 501-1000 of 1200 total lines.\n\n---\n\n" + "\n".join(LINES)
    read = recognise(tool_call("read_file", {"file_path": "/p/mod.rs"}), text)
    assert read is not None and read.first_line == 501 and read.code == LINES and read.language == "rust"
    assert read.unfold(501, 510) == "read_file offset=500 limit=10"


@pytest.mark.parametrize(
    ("tool", "arguments", "path", "first"),
    [
        ("Bash", {"command": "cat src/a.py"}, "src/a.py", 1),
        ("run_shell_command", {"command": "cd /repo && cat lib/a.py"}, "/repo/lib/a.py", 1),
        ("exec_command", {"cmd": "sed -n '1,500p' a.py"}, "a.py", 1),
        ("shell", {"command": ["bash", "-lc", "sed -n '200,699p' a.py"]}, "a.py", 200),
        ("shell_command", {"command": "head -n 600 'dir with space/a.py'"}, "dir with space/a.py", 1),
    ],
)
def test_shell_reads(tool: str, arguments: dict, path: str, first: int) -> None:
    read = recognise(tool_call(tool, arguments), "\n".join(LINES))
    assert read is not None and read.path == path and read.first_line == first
    assert read.unfold(first, first + 9).startswith(f"sed -n '{first},{first + 9}p' ")


def test_nl_output_is_numbered_like_read() -> None:
    read = recognise(tool_call("exec_command", {"cmd": "nl -ba a.ts"}), numbered(LINES, pad=6))
    assert read is not None and read.code == LINES and read.language == "typescript"


@pytest.mark.parametrize(
    "command",
    ["cat a.py | grep x", "cat a.py b.py", "grep -n x a.py", "cat *.py", "tail -n 500 a.py", "cat a.py > b", "ls"],
)
def test_other_commands_are_not_reads(command: str) -> None:
    assert recognise(tool_call("Bash", {"command": command}), "\n".join(LINES)) is None


def test_a_narrow_shell_range_is_left_alone() -> None:
    assert recognise(tool_call("Bash", {"command": "sed -n '10,60p' a.py"}), "\n".join(LINES[:51])) is None


def test_codex_wrapper_stays_and_lines_after_its_cut_marker_are_tail() -> None:
    head = "Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 0\nOriginal token count: 9\nOutput:\n"
    text = head + "\n".join(LINES[:300]) + "…8466 chars truncated…" + "\n".join(LINES[400:])
    read = recognise(tool_call("exec_command", {"cmd": "cat a.py"}), text)
    assert read is not None and read.head == head and read.code == LINES[:299]
    assert read.head + "\n".join(read.rows) + read.tail == text


def test_claude_persisted_preview_is_not_folded() -> None:
    text = "<persisted-output>\nOutput too large (99KB). Full output saved to: /x\n\nPreview (first 2KB):\n"
    text += "\n".join(LINES[:40]) + "\n...\n</persisted-output>"
    assert recognise(tool_call("Bash", {"command": "cat a.py"}), text) is None


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("Edit", {"file_path": "a.py"}), ("Grep", {"pattern": "x"}), ("Read", {}), ("Read", {"file_path": "a.py"})],
)
def test_other_tools_and_unnumbered_text_are_not_reads(tool: str, arguments: dict) -> None:
    assert recognise(tool_call(tool, arguments), "\n".join(LINES)) is None
