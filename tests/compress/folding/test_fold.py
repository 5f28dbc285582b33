"""What a fold keeps and what it folds, in each language with a grammar, and how the marker reads."""

from __future__ import annotations

import re

import pytest

from headroom_twisted.compress.compressors.result import NotApplicable
from headroom_twisted.compress.folding.fold import fold, language_of
from headroom_twisted.compress.folding.reads import SourceRead, recognise
from headroom_twisted.compress.tool_call import tool_call

MARKER = re.compile(r"\[\.\.\. lines (\d+)-(\d+) folded \((.*?)\); (.*) \.\.\.\]")


def read_of(source: str, path: str) -> SourceRead:
    text = "\n".join(f"{i}\t{line}" for i, line in enumerate(source.split("\n"), 1))
    read = recognise(tool_call("Read", {"file_path": path}), text)
    assert read is not None
    return read


def shown(source: str, path: str, query: str = "") -> str:
    read = read_of(source, path)
    language = language_of(read)
    assert language is not None
    return fold(read, query, language).text


def statements(prefix: str, count: int, indent: str, end: str = "") -> str:
    return "\n".join(f"{indent}{prefix}{i} = compute({i}){end}" for i in range(count))


PYTHON = f'''"""Module summary line.

More words about the module that nobody needs to read
in order to find their way in it,
repeated to make the docstring long,
and longer,
and longer still.
"""
import os
from typing import Any

LIMIT = 10


@decorated(1)
def handle_request(request: Any,
                   strict: bool = False) -> int:
    """Handle one request."""
{statements("value", 12, "    ")}
    return value0


class Channel(Base):
    """A channel."""

    timeout = 30

    def lineReceived(self, line: bytes) -> None:
{statements("part", 10, "        ")}
        def nested(x):
            return x
        raise ValueError("this error line stays")

    def connectionLost(self, reason) -> None:
{statements("gone", 10, "        ")}
'''


def test_python_keeps_the_outline_and_folds_bodies() -> None:
    text = shown(PYTHON, "/srv/app/channel.py")
    for definition in (
        "@decorated(1)",
        "def handle_request(request: Any,",
        "strict: bool = False) -> int:",
        "class Channel(Base):",
        "    timeout = 30",
        "def lineReceived(self, line: bytes) -> None:",
        "def nested(x):",
        'raise ValueError("this error line stays")',
        "def connectionLost(self, reason) -> None:",
        "import os",
        "LIMIT = 10",
        '"""Module summary line.',
    ):
        assert definition in text
    whats = [match.group(3) for match in MARKER.finditer(text)]
    assert whats == ["docstring", "body", "body", "body"]
    assert "value5 = compute(5)" not in text


def test_a_definition_the_question_names_keeps_its_whole_body() -> None:
    text = shown(PYTHON, "channel.py", "Why does Channel.lineReceived fail on long lines?")
    assert "part7 = compute(7)" in text
    assert "gone7 = compute(7)" not in text
    text = shown(PYTHON, "channel.py", "what does handle_request return?")
    assert "value11 = compute(11)" in text


def test_a_class_the_question_names_keeps_its_members_unless_a_member_is_named() -> None:
    text = shown(PYTHON, "channel.py", "How does Channel work?")
    assert "part7 = compute(7)" in text and "gone7 = compute(7)" in text
    assert "value5 = compute(5)" not in text
    text = shown(PYTHON, "channel.py", "How does Channel.connectionLost clean up?")
    assert "gone7 = compute(7)" in text and "part7 = compute(7)" not in text


def test_a_rare_question_word_keeps_the_body_it_occurs_in() -> None:
    text = shown(PYTHON.replace("gone3 = compute(3)", "gone3 = reconnect_backoff(3)"), "c.py", "reconnect_backoff?")
    assert "gone7 = compute(7)" in text and "part7 = compute(7)" not in text


def test_words_of_the_path_select_nothing() -> None:
    source = PYTHON.replace("gone3 = compute(3)", "gone3 = channel(3)")
    assert "gone7 = compute(7)" not in shown(source, "/x/channel.py", "read channel.py")


def test_marker_names_exact_lines_and_the_read_that_shows_them() -> None:
    """The body's fold runs from its first row to the blank rows before the next definition."""
    text = shown(PYTHON, "channel.py")
    first, last = (int(n) for n in MARKER.search(text, text.index("def handle_request")).groups()[:2])
    lines = PYTHON.split("\n")
    assert lines[first - 1] == '    """Handle one request."""'
    assert lines[last].startswith("class ")
    assert lines[lines.index("    return value0") + 1 : last] == ["", ""]
    assert f"Read offset={first} limit={last - first + 1}" in text


GO = f"""package server

import (
\t"fmt"
)

// Server serves.
type Server struct {{
\tAddr string
}}

func (s *Server) Serve(addr string) error {{
{statements("v", 10, chr(9))}
\treturn nil
}}

func helper() {{
{statements("w", 10, chr(9))}
}}
"""

RUST = f"""use std::io;

pub struct Point {{
    x: i32,
}}

impl Point {{
    pub fn new(x: i32) -> Self {{
{statements("let a", 10, "        ", ";")}
        Point {{ x }}
    }}
}}

fn main() {{
{statements("let b", 10, "    ", ";")}
}}
"""

JAVA = f"""package a;

import java.util.List;

/**
 * A class.
 * with a long
 * comment
 * that goes
 * on and on
 * and on.
 */
public class Service {{
    private int count = 0;

    @Override
    public String toString() {{
{statements("int c", 10, "        ", ";")}
        return "s";
    }}

    public Service(int n) {{
{statements("int d", 10, "        ", ";")}
    }}
}}
"""

JAVASCRIPT = f"""import x from "y";

export function start(options) {{
{statements("const e", 10, "  ", ";")}
}}

const handler = (event) => {{
{statements("const f", 10, "  ", ";")}
}};

class Router extends Base {{
  route(path) {{
{statements("const g", 10, "    ", ";")}
  }}
}}
"""

TYPESCRIPT = f"""import {{ x }} from "y";

export interface Options {{
  port: number;
}}

export class Server implements Options {{
  port = 80;
  private listen(port: number): void {{
{statements("const h", 10, "    ", ";")}
  }}
}}
"""


@pytest.mark.parametrize(
    ("source", "path", "kept", "folded"),
    [
        (GO, "server.go", ["func (s *Server) Serve(addr string) error {", "func helper() {", "\tAddr string"], 2),
        (RUST, "point.rs", ["pub fn new(x: i32) -> Self {", "fn main() {", "    x: i32,"], 2),
        (JAVA, "Service.java", ["public String toString() {", "@Override", "public Service(int n) {", "/**"], 2),
        (
            JAVASCRIPT,
            "router.js",
            ["export function start(options) {", "const handler = (event) => {", "route(path) {"],
            3,
        ),
        (TYPESCRIPT, "server.ts", ["private listen(port: number): void {", "  port: number;", "  port = 80;"], 1),
    ],
)
def test_brace_languages_keep_signatures_and_fold_bodies_with_their_braces(
    source: str, path: str, kept: list[str], folded: int
) -> None:
    text = shown(source, path)
    for line in kept:
        assert line in text
    assert len(MARKER.findall(text)) == folded

    def closers(rows: list[str]) -> int:
        return sum(1 for row in rows if row.split("\t")[-1].strip() in ("}", "};"))

    bodies = [match for match in MARKER.finditer(text) if match.group(3) == "body"]
    assert closers(text.split("\n")) == closers(source.split("\n")) - len(bodies), "a body's brace folds with it"


def test_a_read_cut_inside_a_definition_folds_the_clean_part_and_shows_the_rest() -> None:
    cut = PYTHON.split("\n")[:-6]
    cut[-1] = '        """An unterminated docstring'
    text = shown("\n".join(cut), "channel.py")
    assert "part7 = compute(7)" not in text
    assert '"""An unterminated docstring' in text


def test_source_that_does_not_parse_before_its_last_definitions_is_not_folded() -> None:
    broken = PYTHON.replace("import os", "import ))) (((")
    with pytest.raises(NotApplicable):
        fold(read_of(broken, "channel.py"), "", "python")


def test_a_read_of_a_file_in_no_language_with_a_grammar_is_no_source_read() -> None:
    text = "\n".join(f"{n}\tjust some prose" for n in range(1, 41))
    assert recognise(tool_call("Read", {"file_path": "notes.txt"}), text) is None
    assert language_of(read_of("just some prose, said twice.\n" * 40, "NOTES")) is None


def test_magika_names_the_language_when_the_path_does_not() -> None:
    assert "part7 = compute(7)" not in shown(PYTHON, "/usr/local/bin/channel-tool")


def test_a_doc_comment_folds_with_the_definition_below_it_and_touching_folds_join() -> None:
    source = f"""/**
 * Start the server.
 *
 * It listens on every address it is given, in order, and resolves once all are bound.
 *
 * @param {{Object}} options
 * @return {{Promise}}
 */

function start(options) {{
{statements("const a", 10, "  ", ";")}
}}

// stop ends it.
// It takes no arguments.
// It returns nothing at all.
function stop() {{
{statements("const b", 10, "  ", ";")}
}}
"""
    text = shown(source, "server.js")
    assert " * Start the server." not in text and "// stop ends it." not in text
    assert [match.group(3) for match in MARKER.finditer(text)] == ["doc", "body, doc", "body"]
    assert "function start(options) {" in text and "function stop() {" in text


def test_a_rust_attribute_between_a_doc_comment_and_its_function_stays() -> None:
    source = f"""/// Reserve capacity.
///
/// Grows the buffer when it must, and copies what it holds into the new
/// allocation only when the old one cannot be extended in place.
///
/// Never shrinks it.
#[inline]
pub fn reserve(&mut self, n: usize) {{
{statements("let c", 10, "    ", ";")}
}}
"""
    text = shown(source, "buf.rs")
    assert "#[inline]" in text and "pub fn reserve(&mut self, n: usize) {" in text
    assert "/// Grows the buffer" not in text


def test_a_named_definition_keeps_its_doc_comment() -> None:
    source = f"""// Serve answers.
// It is the entry point.
// Read it first.
func Serve() {{
{statements("v", 10, chr(9))}
}}

// helper helps.
// It is called by everyone, from every corner of the package,
// and nobody asked about it, so it folds with its body:
// this comment is long enough to be worth a marker of its own.
func helper() {{
{statements("w", 10, chr(9))}
}}
"""
    text = shown(source, "s.go", "what does Serve() do?")
    assert "// It is the entry point." in text and "v7 = compute(7)" in text
    assert "// It is called by everyone." not in text and "w7 = compute(7)" not in text
