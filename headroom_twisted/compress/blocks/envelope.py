"""The lines agents wrap around a tool's output, and the markers where they cut it.

Coding agents do not hand the model a command's raw output. Codex prefixes
``Chunk ID: … Wall time: … Process exited with code … Output:``; Qwen Code
writes ``Command: … Directory: … Output: <first line>`` and ends with
``Exit Code: …`` lines (and, past its cap, a preamble naming the file that
holds the full output); Claude Code appends ``Shell cwd was reset to …`` and
wraps large outputs in ``<persisted-output>``; pip mixes its ``[notice]``
lines into stdout. These lines hide the payload's type from detection, and
they matter to the model (exit code, where the full output lives), so they
are split off here, kept verbatim, and only the payload is compressed.

Agents also cut long outputs themselves and leave a marker where they did
(Codex ``…8466 chars truncated…`` inside a line, Qwen Code
``... [CONTENT TRUNCATED] ...``). Those lines tell the model to fetch the
rest, so they are never compressed: :func:`split_at_cuts` separates them.

Every check reads a bounded number of lines at either end of the text, and
the cut scan is one linear pass, so the cost does not depend on line length
beyond a single scan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from headroom_twisted.compress.compressors.relevance import line_starts, lines_containing

HEAD_LINES = 12
TAIL_LINES = 8
_PROBE_CHARS = 4_096  # wrapper lines are short; look no further for them

_QWEN_PREAMBLE = re.compile(r"Tool output was too large and has been truncated\.\n")
_QWEN_PREAMBLE_END = "Truncated part of the output:\n"
_QWEN_COMMAND = re.compile(r"Command: [^\n]*\n(?:Directory: [^\n]*\n)?Output: ")
_QWEN_TRAILER = re.compile(r"(?:Error|Exit Code|Signal|Background PIDs|Process Group PGID): [^\n]*")
_CODEX_HEAD = re.compile(r"Chunk ID: [^\n]*\n(?:[A-Z][^\n]*\n){0,8}?Output:\n")
_CODEX_NOTICE = re.compile(r"Warning: truncated output[^\n]*\n(?:Total output lines: \d+\n)?\n?")
_PERSISTED_HEAD = re.compile(r"<persisted-output>\n(?:[^\n]*\n){0,6}?Preview \([^\n]*\):\n")
_PERSISTED_TAIL = "\n...\n</persisted-output>"
_TRAILER = re.compile(r"Shell cwd was reset to [^\n]*|\[notice\] [^\n]*")

# Lines where an agent cut the output: Codex (inside a line), Qwen Code, Claude Code.
_CUT = re.compile(r"…\d+ (?:chars|tokens|lines) truncated…|\.\.\. \[CONTENT TRUNCATED\] \.\.\.|\[\d+ lines truncated\]")
_CUT_NEEDLES = ("…", "... [CONTENT TRUNCATED] ...", " lines truncated]")  # every cut marker holds one


@dataclass(frozen=True)
class Envelope:
    """A tool output split as ``head + payload + tail == text``; head and tail are the agent's lines."""

    head: str
    payload: str
    tail: str


def peel(text: str) -> Envelope | None:
    """Split off every wrapper layer an agent put around ``text``; None when there is none."""
    head, tail, body = "", "", text
    layers = 0
    while True:
        found = _peel_once(body)
        if found is None:
            break
        layer_head, body, layer_tail = found
        head += layer_head
        tail = layer_tail + tail
        layers += 1
    if not layers:
        return None
    return Envelope(head, body, tail)


def _peel_once(text: str) -> tuple[str, str, str] | None:
    """``(head, body, tail)`` of the outermost wrapper layer, or None when there is none."""
    probe = text[:_PROBE_CHARS]
    if _QWEN_PREAMBLE.match(probe):
        end = probe.find(_QWEN_PREAMBLE_END)
        if end >= 0:
            cut = end + len(_QWEN_PREAMBLE_END)
            return text[:cut], text[cut:], ""
    found = _QWEN_COMMAND.match(probe)
    if found:
        body, tail = _split_tail(text[found.end() :], _QWEN_TRAILER)
        return text[: found.end()], body, tail
    found = _CODEX_HEAD.match(probe)
    if found:
        notice = _CODEX_NOTICE.match(text, found.end())
        cut = notice.end() if notice else found.end()
        return text[:cut], text[cut:], ""
    found = _PERSISTED_HEAD.match(probe)
    if found and text.endswith(_PERSISTED_TAIL):
        return text[: found.end()], text[found.end() : -len(_PERSISTED_TAIL)], _PERSISTED_TAIL
    body, tail = _split_tail(text, _TRAILER)
    if tail:
        return "", body, tail
    return None


def _split_tail(text: str, line: re.Pattern[str]) -> tuple[str, str]:
    """Split off the last lines matching ``line`` (and blank lines among them), at most TAIL_LINES."""
    parts = text.rsplit("\n", TAIL_LINES)
    cut = len(parts)
    while cut > 1 and (line.fullmatch(parts[cut - 1]) or not parts[cut - 1].strip()):
        cut -= 1
    if cut == len(parts) or not any(line.fullmatch(p) for p in parts[cut:]):
        return text, ""
    while cut < len(parts) and not parts[cut].strip():
        cut += 1  # blank lines right after the payload stay with it
    body = "\n".join(parts[:cut])
    return body, text[len(body) :]


def is_cut(line: str) -> bool:
    """Whether an agent's truncation marker is on this line."""
    return bool(_CUT.search(line))


def cut_lines(text: str, starts: Sequence[int]) -> set[int]:
    """The lines of ``text`` (split at ``starts``, see ``relevance.line_starts``) that hold a cut marker."""
    lines = lines_containing(text, starts, _CUT_NEEDLES)
    return {i for i in lines if _CUT.search(text, starts[i], starts[i + 1] - 1)}


def split_at_cuts(lines: list[str]) -> list[tuple[bool, list[str]]]:
    """``lines`` as runs ``(is_cut, run)`` in order; concatenated, the runs give ``lines`` back.

    Cut runs hold the lines that carry an agent's truncation marker, with
    Qwen Code's ``---`` rules around it, to be kept verbatim; the other runs
    are payload to compress. No run is empty.
    """
    runs: list[tuple[bool, list[str]]] = []
    start = 0
    for i in sorted(cut_lines("\n".join(lines), line_starts(lines))):
        if i < start:
            continue
        first, last = i, i
        if first > start and lines[first - 1] == "---":
            first -= 1
        if last + 1 < len(lines) and lines[last + 1] == "---":
            last += 1
        if first > start:
            runs.append((False, lines[start:first]))
        runs.append((True, lines[first : last + 1]))
        start = last + 1
    if start < len(lines):
        runs.append((False, lines[start:]))
    return runs
