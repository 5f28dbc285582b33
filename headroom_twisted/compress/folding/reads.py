"""Which tool outputs are files an agent read, and how that agent would read a part of them again.

A fold is only useful if the model can unfold it, so the marker says how to
see the folded lines in the terms of the tool that produced the block:
Claude Code's ``Read`` with ``offset``/``limit``, Qwen Code's ``read_file``,
or ``sed -n 'a,bp' PATH`` for a shell read. That needs the file's path and
the line number of every row, which only the tool call and the output
together give; anything this module does not recognise is not a read.

Reads the agent narrowed itself (``offset``/``limit``, ``sed -n``, ``head``)
of at most ``NARROWED_MAX_ROWS`` lines are never folded: the agent asked for
exactly those lines, often to act on them.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from headroom_twisted.compress.blocks import envelope
from headroom_twisted.compress.folding.languages import language_of_path
from headroom_twisted.compress.tool_call import ToolCall

NARROWED_MAX_ROWS = 400
"""A range the agent chose of at most this many lines passes unchanged."""

_NUMBERED = re.compile(r" *(\d+)\t")
_CLAUDE_NOTICE = re.compile(r"<system-reminder>.*?</system-reminder>\n+", re.S)
_QWEN_SHOWING = re.compile(r"Showing lines (\d+)-\d+ of \d+ total lines\.\n\n---\n\n")
_SED_RANGE = re.compile(r"(\d+)(?:,(\d+))?p")
_SHELL_TOOLS = {
    "Bash": "command",
    "run_shell_command": "command",
    "exec_command": "cmd",
    "shell": "command",
    "shell_command": "command",
    "local_shell": "command",
}
_READ_PATH_KEYS = ("file_path", "absolute_path", "path")

Unfold = Callable[[int, int], str]
"""``unfold(first, last)``: how the agent sees file lines ``first..last`` again, in its own terms."""


@dataclass(frozen=True)
class SourceRead:
    """A file read, split as ``head + "\\n".join(rows) + tail == text``.

    ``code[i]`` is the source line shown by ``rows[i]`` (the row without a
    line-number prefix) and is line ``first_line + i`` of the file.
    """

    head: str
    rows: list[str]
    code: list[str]
    tail: str
    first_line: int
    path: str
    language: str | None
    unfold: Unfold


def recognise(call: ToolCall, text: str) -> SourceRead | None:
    """The read in ``text`` if ``call`` read a source file whole (or a wide range of it), else None.

    A file whose extension names no language with a grammar here (``.txt``,
    ``.log``, ``.json``) is no source read: its output is detected by
    content like any other. A name without an extension (``bin/tool``) may
    be source; Magika decides later.
    """
    arguments = call.parsed_arguments()
    if call.name == "Read":
        return _claude_read(arguments, text)
    if call.name == "read_file":
        return _qwen_read(arguments, text)
    key = _SHELL_TOOLS.get(call.name)
    if key is not None:
        return _shell_read(arguments.get(key), text)
    return None


def _claude_read(arguments: dict[str, object], text: str) -> SourceRead | None:
    """Claude Code ``Read``: every row ``N<TAB>line``, ``offset`` a 1-based line number."""
    path = _path_argument(arguments)
    if path is None or not _may_be_source(path):
        return None
    read = _numbered(text, path, lambda first, last: f"Read offset={first} limit={last - first + 1}")
    if read is None or (_narrowed(arguments) and len(read.rows) <= NARROWED_MAX_ROWS):
        return None
    return read


def _qwen_read(arguments: dict[str, object], text: str) -> SourceRead | None:
    """Qwen Code ``read_file``: the file's lines as they are, ``offset`` a 0-based line index.

    A ranged read, or one past Qwen Code's cap (1,000 lines, 25,000
    characters), opens with ``Showing lines S-E of T total lines.`` and a
    ``---`` rule; the rows follow it, the first being line S.
    """
    path = _path_argument(arguments)
    if path is None or not _may_be_source(path) or (_narrowed(arguments) and text.count("\n") < NARROWED_MAX_ROWS):
        return None
    head, first_line = "", 1
    notice = _QWEN_SHOWING.match(text)
    if notice:
        head, first_line = notice.group(0), int(notice.group(1))
    rows = text[len(head) :].split("\n")
    return SourceRead(
        head,
        rows,
        rows,
        "",
        first_line,
        path,
        language_of_path(path),
        lambda first, last: f"read_file offset={first - 1} limit={last - first + 1}",
    )


def _shell_read(command: object, text: str) -> SourceRead | None:
    """``cat FILE``, ``nl -ba FILE``, ``cat -n FILE``, ``sed -n 'a,bp' FILE`` or ``head -n N FILE``,
    optionally after ``cd DIR &&``, inside the agent's wrapper (Codex, Qwen Code).

    Lines after an agent's truncation marker have unknown numbers: they stay
    in the tail, verbatim.
    """
    script = _script(command)
    parsed = _parse_shell_read(script) if script is not None else None
    if parsed is None:
        return None
    path, first_line, numbered, narrowed = parsed
    if not _may_be_source(path):
        return None
    peeled = envelope.peel(text)
    head, payload, tail = (peeled.head, peeled.payload, peeled.tail) if peeled else ("", text, "")
    if "<persisted-output>" in head:
        return None  # a 2 KB preview of a saved output
    lines = payload.split("\n")
    runs = envelope.split_at_cuts(lines)
    if runs and runs[0][0]:
        return None
    rows = runs[0][1] if runs else lines
    rest = "\n".join(lines[len(rows) :])
    tail = ("\n" + rest if len(rows) < len(lines) else "") + tail
    if narrowed and len(rows) <= NARROWED_MAX_ROWS:
        return None

    def unfold(first: int, last: int) -> str:
        return f"sed -n '{first},{last}p' {shlex.quote(path)}"

    if numbered:
        read = _numbered("\n".join(rows), path, unfold)
        if read is None:
            return None
        return SourceRead(
            head + read.head, read.rows, read.code, read.tail + tail, read.first_line, path, read.language, unfold
        )
    return SourceRead(head, rows, rows, tail, first_line, path, language_of_path(path), unfold)


def _numbered(text: str, path: str, unfold: Unfold) -> SourceRead | None:
    """Rows ``N<TAB>line`` (N padded or not) numbered consecutively; what follows them is the tail.

    Claude Code opens a read it cut at its token cap with a
    ``<system-reminder>`` naming the lines shown: that is the head.
    """
    notice = _CLAUDE_NOTICE.match(text)
    head = notice.group(0) if notice else ""
    text = text[len(head) :]
    rows = text.split("\n")
    first = _NUMBERED.match(rows[0])
    if first is None:
        return None
    first_line = int(first.group(1))
    code: list[str] = []
    for index, row in enumerate(rows):
        number, tab, line = row.partition("\t")
        if not tab or number.lstrip(" ") != str(first_line + index):
            break
        code.append(line)
    shown = rows[: len(code)]
    tail = text[len("\n".join(shown)) :]
    return SourceRead(head, shown, code, tail, first_line, path, language_of_path(path), unfold)


def _parse_shell_read(script: str) -> tuple[str, int, bool, bool] | None:
    """``(path, first line, numbered, narrowed)`` of a one-file read command, else None."""
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token == "&&":
            commands.append([])
        elif token in ("|", "||", ";", "&", ">", ">>", "<", "(", ")"):
            return None
        else:
            commands[-1].append(token)
    directory = ""
    for command in commands[:-1]:
        if len(command) != 2 or command[0] != "cd":
            return None
        directory = posixpath.join(directory, command[1])
    found = _read_command(commands[-1])
    if found is None:
        return None
    path, first_line, numbered, narrowed = found
    return posixpath.join(directory, path) if directory else path, first_line, numbered, narrowed


def _read_command(argv: list[str]) -> tuple[str, int, bool, bool] | None:
    if len(argv) < 2 or any(arg.startswith("$") or "*" in arg for arg in argv):
        return None
    program, options, path = argv[0], argv[1:-1], argv[-1]
    if path.startswith("-"):
        return None
    if program == "cat" and options in ([], ["-n"]):
        return path, 1, options == ["-n"], False
    if program == "nl" and options in (["-ba"], ["-b", "a"]):
        return path, 1, True, False
    if program == "sed" and len(options) == 2 and options[0] == "-n":
        found = _SED_RANGE.fullmatch(options[1])
        return (path, int(found.group(1)), False, True) if found else None
    if program == "head" and _is_line_count(options):
        return path, 1, False, True
    return None


def _is_line_count(options: list[str]) -> bool:
    """``-n N``, ``-nN`` or ``-N``: ``head``'s ways of asking for N lines."""
    spelled = "".join(options)
    return spelled.startswith("-") and spelled.lstrip("-n").isdigit()


def _script(command: object) -> str | None:
    """The shell text of a command argument: a string, or ``["bash", "-lc", script]`` as Codex sends it."""
    if isinstance(command, str):
        return command
    if isinstance(command, list) and all(isinstance(part, str) for part in command):
        if len(command) == 3 and command[0] in ("bash", "sh", "zsh") and command[1] in ("-lc", "-c"):
            return str(command[2])
        return shlex.join(command)
    return None


def _may_be_source(path: str) -> bool:
    return language_of_path(path) is not None or not PurePosixPath(path).suffix


def _path_argument(arguments: dict[str, object]) -> str | None:
    for key in _READ_PATH_KEYS:
        value = arguments.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _narrowed(arguments: dict[str, object]) -> bool:
    return arguments.get("offset") not in (None, 0, 1) or arguments.get("limit") is not None
