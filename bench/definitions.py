"""Definitions in source text, found by simple per-language rules, to check what a code folder kept.

Deliberately independent of the proxy (no tree-sitter, nothing from
``headroom_twisted``): a benchmark that checked the folder with the folder's
own parser would only check that the parser agrees with itself. The rules
are an approximation, good enough for the real files of bench/corpus/source:

- Python: ``def``, ``async def`` and ``class`` lines outside triple-quoted
  strings. The body runs from the definition line (its signature may span
  lines) to the last non-blank line indented deeper.
- Go: ``func`` (a method's receiver type is its scope) and ``type`` at the
  start of a line.
- Rust: ``fn``, ``struct``, ``enum``, ``trait``, ``union`` and ``impl`` lines
  (with ``pub``, ``unsafe``, ``async``, ``const``, ``extern`` before them); a
  function in an ``impl`` has the implemented type as its scope.
- JavaScript and TypeScript: ``function``, ``class`` and ``interface``
  declarations (``export``, ``default``, ``async``, ``abstract`` before them),
  functions assigned to a name (``res.send = function send(...)``, whose
  object path is the scope), and method signatures directly inside a class
  body, overloads included.
- Brace languages: the body runs from the definition line to the brace that
  closes the first ``{`` outside parentheses, or ends at a ``;`` before any
  such brace (a declaration without a body). Strings, character literals
  and comments are blanked first so their braces do not count.

A definition's ``scope`` is the names of the definitions around it
(outermost first), so a question can name ``LineReceiver.dataReceived``,
``BytesMut::reserve_inner`` or ``res.sendFile``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LANGUAGES = {".py": "python", ".go": "go", ".rs": "rust", ".js": "javascript", ".ts": "typescript"}


@dataclass(frozen=True)
class Definition:
    name: str
    scope: tuple[str, ...]
    first: int
    """1-based line number of the definition line."""
    last: int
    """1-based line number of the last line of its body."""


def language_of(path: str) -> str | None:
    return next((language for suffix, language in LANGUAGES.items() if path.endswith(suffix)), None)


def definitions(text: str, language: str) -> list[Definition]:
    """Every definition of ``text``, in order, each with its scope and the extent of its body."""
    lines = text.split("\n")
    if language == "python":
        found = _python(lines)
    else:
        found = _braced(lines, language)
    scoped: list[Definition] = []
    for definition in found:
        around = [outer for outer in scoped if outer.first < definition.first <= outer.last]
        prefix = around[-1].scope + (around[-1].name,) if around else ()
        scoped.append(Definition(definition.name, prefix + definition.scope, definition.first, definition.last))
    return scoped


def named_definitions(found: list[Definition], question: str) -> list[Definition]:
    """The definitions a question names: ``Class.method``, ``Type::method``, ``obj.fn``, ``name()``,
    or a bare identifier that can only be code (it holds ``_`` or an inner capital: ``cleanPath``).

    A dotted name matches a definition of its last part whose scope ends with
    the parts before it; plain words never name anything.
    """
    chains = []
    for token in re.findall(r"[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*(?:\(\))?", question):
        call = token.endswith("()")
        chain = tuple(re.split(r"\.|::", token.removesuffix("()")))
        if call or len(chain) > 1 or "_" in token or any(c.isupper() for c in chain[-1][1:]):
            chains.append(chain)
    return [
        definition
        for definition in found
        if any(
            chain[-1] == definition.name and definition.scope[len(definition.scope) - len(chain) + 1 :] == chain[:-1]
            for chain in chains
            if len(chain) - 1 <= len(definition.scope)
        )
    ]


# --------------------------------------------------------------------------
# Python

_PY_DEF = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")
_PY_STRING = re.compile(r"\"\"\"|'''|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")


def _python(lines: list[str]) -> list[Definition]:
    inside = _python_string_lines(lines)
    found = []
    for index, line in enumerate(lines):
        match = _PY_DEF.match(line)
        if match is None or index in inside:
            continue
        indent = len(match.group(1).expandtabs())
        found.append(Definition(match.group(2), (), index + 1, _python_end(lines, index, indent, inside) + 1))
    return found


def _python_string_lines(lines: list[str]) -> set[int]:
    """Indexes of the lines that start inside a triple-quoted string."""
    inside: set[int] = set()
    quote: str | None = None
    for index, line in enumerate(lines):
        if quote is not None:
            inside.add(index)
        for token in _PY_STRING.findall(line):
            if token in ('"""', "'''"):
                if quote is None:
                    quote = token
                elif quote == token:
                    quote = None
    return inside


def _python_code(line: str) -> str:
    """The line with string literals and its comment removed."""
    return _PY_STRING.sub('""', line).split("#", 1)[0]


def _python_end(lines: list[str], index: int, indent: int, inside: set[int]) -> int:
    depth = 0
    end = index
    while end < len(lines):
        code = _python_code(lines[end])
        depth += sum(code.count(c) for c in "([{") - sum(code.count(c) for c in ")]}")
        if depth <= 0 and code.rstrip().endswith(":"):
            break
        if depth <= 0 and end == index and ":" in code.split(")")[-1]:
            return index  # a one-line definition: `class Error(Exception): pass`
        end += 1
    last = end
    for later in range(end + 1, len(lines)):
        line = lines[later]
        if not line.strip() and later not in inside:
            continue
        if later not in inside and len(line) - len(line.lstrip()) <= indent:
            break
        last = later
    return last


# --------------------------------------------------------------------------
# Brace languages

_MODIFIER_WORDS = "export default declare async abstract static public private protected readonly override get set"
_MODIFIERS = r"(?:(?:" + "|".join(_MODIFIER_WORDS.split()) + r")\s+)*"
_GO_FUNC = re.compile(r"^func\s+(?:\(\s*\w*\s*\*?\s*([A-Za-z_]\w*)[^)]*\)\s*)?([A-Za-z_]\w*)")
_GO_TYPE = re.compile(r"^type\s+([A-Za-z_]\w*)")
_RUST_ITEM = re.compile(
    r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:default\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
    r"(?:extern\s+\"[^\"]*\"\s+)?(fn|struct|enum|trait|union|impl)\b(.*)"
)
_JS_DECLARATION = re.compile(r"^\s*" + _MODIFIERS + r"(function\s*\*?|class|interface)\s+([A-Za-z_$][\w$]*)")
_JS_ASSIGNED = re.compile(
    r"^\s*(?:(?:var|let|const)\s+)?((?:[A-Za-z_$][\w$]*\.)*)([A-Za-z_$][\w$]*)\s*=\s*"
    r"(?:[\w$.]+\s*=\s*)*(?:async\s+)?function\b"
)
_JS_METHOD = re.compile(r"^\s*" + _MODIFIERS + r"\*?\s*([A-Za-z_$][\w$]*)\s*(?:<.*>)?\s*\(")
_JS_KEYWORDS = frozenset(
    "if for while switch catch return function new typeof else do try with super await yield throw delete void"
    " in of case".split()
)
_QUOTED = r"\"(?:\\.|[^\"\\])*\"|"
_LITERALS = {
    "go": _QUOTED + r"'(?:\\.|[^'\\])+'|`[^`]*`",
    "rust": r"b?" + _QUOTED + r"b?'(?:\\.|\\u\{[0-9a-fA-F]+\}|[^'\\])'",
    "javascript": _QUOTED + r"'(?:\\.|[^'\\])*'|`(?:\\.|[^`\\])*`",
}
_LITERALS["typescript"] = _LITERALS["javascript"]
_OPEN_TICK = r"|(?P<tick>`(?:\\.|[^`\\])*$)"
_TOKENS = {
    language: re.compile(literals + r"|//.*|/\*.*?\*/|(?P<comment>/\*.*)" + (_OPEN_TICK if language != "rust" else ""))
    for language, literals in _LITERALS.items()
}


def _braced(lines: list[str], language: str) -> list[Definition]:
    code = _blank_literals(lines, language)
    depths = _depths(code)
    found: list[Definition] = []
    classes: list[Definition] = []
    for index, line in enumerate(lines):
        if not code[index].strip():
            continue
        head = _braced_head(line, language)
        if head is None and language in ("javascript", "typescript"):
            head = _method_head(line, index, depths, classes)
        if head is None:
            continue
        kind, name, scope = head
        definition = Definition(name, scope, index + 1, _braced_end(code, index, language) + 1)
        found.append(definition)
        if kind == "class":
            classes.append(definition)
    return found


def _braced_head(line: str, language: str) -> tuple[str, str, tuple[str, ...]] | None:
    """``(kind, name, scope)`` if ``line`` opens a definition other than a class method."""
    if language == "go":
        if match := _GO_FUNC.match(line):
            return "func", match.group(2), (match.group(1),) if match.group(1) else ()
        if match := _GO_TYPE.match(line):
            return "type", match.group(1), ()
        return None
    if language == "rust":
        match = _RUST_ITEM.match(line)
        if match is None:
            return None
        if match.group(1) == "impl":
            return "impl", _impl_type(match.group(2)), ()
        name = re.match(r"\s*([A-Za-z_]\w*)", match.group(2))
        return (match.group(1), name.group(1), ()) if name else None
    if match := _JS_DECLARATION.match(line):
        return ("function" if match.group(1).startswith("function") else "class"), match.group(2), ()
    if match := _JS_ASSIGNED.match(line):
        return "function", match.group(2), tuple(part for part in match.group(1).split(".") if part)
    return None


def _method_head(
    line: str, index: int, depths: list[int], classes: list[Definition]
) -> tuple[str, str, tuple[str, ...]] | None:
    """A method signature: a name and ``(`` directly inside the body of the innermost class."""
    match = _JS_METHOD.match(line)
    if match is None or match.group(1) in _JS_KEYWORDS:
        return None
    around = [c for c in classes if c.first - 1 < index < c.last - 1]
    if not around or depths[index] != depths[around[-1].first - 1] + 1:
        return None
    return "method", match.group(1), ()


def _impl_type(rest: str) -> str:
    """The type an ``impl`` block is for: ``impl<'a> From<&'a str> for BytesMut`` -> ``BytesMut``."""
    rest = rest.strip()
    if rest.startswith("<"):
        level = 0
        for position, char in enumerate(rest):
            level += (char == "<") - (char == ">")
            if level == 0:
                rest = rest[position + 1 :]
                break
    target = rest.split(" for ", 1)[-1]
    names = re.findall(r"[A-Za-z_]\w*", re.sub(r"<.*", "", target))
    return names[-1] if names else ""


def _blank_literals(lines: list[str], language: str) -> list[str]:
    """Each line with strings, character literals and comments replaced by spaces.

    A block comment or a backquoted string left open goes on to the line
    that closes it.
    """
    tokens = _TOKENS[language]
    blanked = []
    closer: str | None = None
    for line in lines:
        text = line
        if closer is not None:
            end = text.find(closer)
            if end == -1:
                blanked.append("")
                continue
            text = " " * (end + len(closer)) + text[end + len(closer) :]
            closer = None
        for match in tokens.finditer(text):
            if match.group("comment"):
                closer = "*/"
            elif language != "rust" and match.group("tick"):
                closer = "`"
        blanked.append(tokens.sub(lambda m: " " * len(m.group(0)), text))
    return blanked


def _depths(code: list[str]) -> list[int]:
    """Brace depth at the start of each line."""
    depths = []
    depth = 0
    for line in code:
        depths.append(depth)
        depth += line.count("{") - line.count("}")
    return depths


def _braced_end(code: list[str], index: int, language: str) -> int:
    """Index of the line that closes the body opened at ``index`` (or ends its declaration)."""
    parens = 0
    braces = 0
    opened = False
    for later in range(index, len(code)):
        for char in code[later]:
            if char in "([":
                parens += 1
            elif char in ")]":
                parens -= 1
            elif char == "{" and (opened or parens == 0):
                opened = True
                braces += 1
            elif char == "}" and opened:
                braces -= 1
                if braces == 0:
                    return later
            elif char == ";" and not opened and parens == 0:
                return later
        if not opened and parens == 0 and language == "go" and not code[later].rstrip().endswith(("(", ",")):
            return later
    return len(code) - 1
