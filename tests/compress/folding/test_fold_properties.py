"""A fold is lossless by reference, on generated and on real source files.

Every original row is either shown exactly (with its own line number, where
the client numbers rows) or inside exactly one marker, whose range is exact
and whose hint reads exactly that range; putting the file's rows back at
each marker restores the original text byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_twisted.compress.compressors.result import NotApplicable
from headroom_twisted.compress.folding.fold import fold, language_of
from headroom_twisted.compress.folding.reads import recognise
from headroom_twisted.compress.tool_call import ToolCall, tool_call

SOURCES = Path(__file__).resolve().parents[3] / "bench" / "corpus" / "source"
REAL_FILES = sorted(p for p in SOURCES.rglob("*.txt") if p.name.count(".") == 2)
MARKER = re.compile(r"\[\.\.\. lines (\d+)-(\d+) folded \(.*?\); (.*) \.\.\.\]")
CODEX_HEAD = "Chunk ID: 1\nWall time: 0.1 seconds\nProcess exited with code 0\nOriginal token count: 9\nOutput:\n"


def as_tool_output(source: str, path: str, client: str) -> tuple[ToolCall, str]:
    """``source`` as each client's read of ``path`` returns it."""
    lines = source.split("\n")
    if client == "claude":
        return tool_call("Read", {"file_path": path}), "\n".join(f"{i}\t{line}" for i, line in enumerate(lines, 1))
    if client == "codex_nl":
        return tool_call("exec_command", {"cmd": f"nl -ba {path}"}), CODEX_HEAD + "\n".join(
            f"{i:>6}\t{line}" for i, line in enumerate(lines, 1)
        )
    if client == "qwen":
        return tool_call("read_file", {"file_path": path}), source
    return tool_call("run_shell_command", {"command": f"cat {path}"}), f"Command: cat {path}\nOutput: {source}"


def assert_lossless(call: ToolCall, text: str, query: str) -> None:
    read = recognise(call, text)
    assert read is not None
    language = language_of(read)
    assert language is not None
    try:
        folded = fold(read, query, language).text
    except NotApplicable:
        return
    assert folded.startswith(read.head) and folded.endswith(read.tail)
    shown = folded[len(read.head) : len(folded) - len(read.tail)].split("\n")
    restored: list[str] = []
    for line in shown:
        marker = MARKER.fullmatch(line)
        if marker is None:
            assert line == read.rows[len(restored)], "a shown row differs from the original at its position"
            restored.append(line)
            continue
        first, last = int(marker.group(1)), int(marker.group(2))
        assert first == read.first_line + len(restored) and last >= first
        assert marker.group(3) == read.unfold(first, last)
        restored.extend(read.rows[first - read.first_line : last - read.first_line + 1])
    assert restored == read.rows
    assert read.head + "\n".join(restored) + read.tail == text


CLIENTS = st.sampled_from(["claude", "codex_nl", "qwen", "qwen_shell"])


@st.composite
def python_sources(draw: st.DrawFn) -> str:
    """Modules of functions and classes with bodies of any length, docstrings and comment runs."""
    names = st.from_regex(r"[a-z][a-z_]{0,8}", fullmatch=True)
    out = ['"""Module doc."""', "import os", ""]
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["def", "class", "assign", "comment"]))
        name = draw(names)
        if kind == "assign":
            out.append(f"{name.upper()} = {draw(st.integers(0, 99))}")
        elif kind == "comment":
            out += [f"# {name} {i}" for i in range(draw(st.integers(1, 12)))]
        elif kind == "def":
            out += _function(draw, name, "")
        else:
            out.append(f"class {name.title()}:")
            if draw(st.booleans()):
                out += ['    """', f"    {name} doc", *["    more"] * draw(st.integers(0, 9)), '    """']
            for method in range(draw(st.integers(0, 3))):
                out += _function(draw, f"{name}_{method}", "    ")
            out.append("    pass")
        out.append("")
    return "\n".join(out)


def _function(draw: st.DrawFn, name: str, indent: str) -> list[str]:
    body = [
        f"{indent}    x{i} = {i}  # error {i}" if draw(st.booleans()) else f"{indent}    x{i} = {i}"
        for i in range(draw(st.integers(1, 14)))
    ]
    return [f"{indent}def {name}(a, b):", *body, f"{indent}    return a"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(python_sources(), CLIENTS, st.sampled_from(["", "what does x3 do?", "Why is error 2 raised?"]))
def test_generated_python_folds_losslessly(source: str, client: str, query: str) -> None:
    call, text = as_tool_output(source, "/src/generated.py", client)
    assert_lossless(call, text, query)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL_FILES), CLIENTS, st.data())
def test_real_files_fold_losslessly(path: Path, client: str, data: st.DataObject) -> None:
    source = path.read_text()
    if client.startswith("qwen"):
        source = "\n".join(line.rstrip() for line in source.split("\n"))  # Qwen Code trims each line
    words = sorted(set(re.findall(r"[A-Za-z_]\w{3,}", source)))
    query = data.draw(st.sampled_from(["", *words[:: max(1, len(words) // 50)]]))
    call, text = as_tool_output(source, path.name.removesuffix(".txt"), client)
    assert_lossless(call, text, query)


def test_real_files_are_found() -> None:
    assert {p.name.split(".")[1] for p in REAL_FILES} >= {"py", "js", "ts", "go", "rs"}


def test_every_real_file_folds_to_less() -> None:
    for path in REAL_FILES:
        call, text = as_tool_output(path.read_text(), path.name.removesuffix(".txt"), "claude")
        read = recognise(call, text)
        assert read is not None, path
        assert len(fold(read, "", str(language_of(read))).text) < 0.8 * len(text), path
