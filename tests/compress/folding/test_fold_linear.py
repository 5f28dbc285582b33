"""Folding takes time linear in the file: many definitions, long lines, a read cut mid-definition.

As in tests/compress/compressors/test_compressors_linear.py, the test times
n and 8n and fails only when the ratio looks quadratic, never on a wall
clock bound.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from linear_time import LINES, assert_linear

from headroom_twisted.compress.compressors.result import NotApplicable
from headroom_twisted.compress.folding.fold import fold
from headroom_twisted.compress.folding.reads import recognise
from headroom_twisted.compress.tool_call import tool_call


def module(size: int) -> str:
    """Functions and classes with bodies, about ``size`` characters in all."""
    parts = []
    for i in range(max(1, size // 400)):
        parts.append(f"def f{i}(a, b):\n    '''Doc {i}.'''\n" + "".join(f"    x{j} = a + {j}\n" for j in range(8)))
        parts.append(
            f"class C{i}:\n    y = {i}\n    def m(self):\n" + "".join(f"        z{j} = {j}\n" for j in range(6))
        )
    return "\n".join(parts)


def _folded(source: str, query: str = "what does f7 do about error 12?") -> object:
    text = "\n".join(f"{n}\t{line}" for n, line in enumerate(source.split("\n"), 1))
    read = recognise(tool_call("Read", {"file_path": "m.py"}), text)
    assert read is not None
    try:
        return fold(read, query, "python")
    except NotApplicable:
        return None


SOURCES: dict[str, Callable[[int], str]] = {
    "definitions": module,
    "cut_in_a_docstring": lambda n: module(n) + 'def last():\n    """never closed\n' + "    words\n" * 20,
    "long_assignment": lambda n: "X = [\n" + "    1,\n" * (n // 7) + "]\n" + module(400),
}


@pytest.mark.parametrize("name", SOURCES)
def test_fold_time_grows_linearly(name: str) -> None:
    make = SOURCES[name]
    assert_linear(lambda n: _folded(make(n)), size=6_000)


@pytest.mark.parametrize("line", LINES)
def test_one_long_line_in_a_body(line: str) -> None:
    make = LINES[line]
    assert_linear(lambda n: _folded(f"def f(a):\n    s = {make(n)!r}\n" + "    y = 1\n" * 8 + "    return s\n"))
