"""The languages the folder parses, and what their syntax trees call a definition.

Grammars come from the tree-sitter grammar wheels installed with the
package (nothing is downloaded). Each is loaded on first use and kept for
the life of the process: a parser costs a few hundred microseconds to make,
a parse of a 40 KB file about 12 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import tree_sitter
import tree_sitter_go
import tree_sitter_java
import tree_sitter_javascript
import tree_sitter_python
import tree_sitter_rust
import tree_sitter_typescript


@dataclass(frozen=True)
class Grammar:
    """What the outline needs to know of one language's node types.

    ``functions`` are definitions whose body folds; ``containers`` hold
    definitions (classes, impls, traits): their own lines stay and their
    members are visited; ``passages`` are statements to look inside for
    definitions (``export``, decorated definitions, ``if TYPE_CHECKING:``),
    and ``bindings`` name a function through a declarator or an assignment
    (``const f = () => {...}``, ``res.send = function (body) {...}``).
    ``docstring_first`` says a leading string statement of a body is its
    documentation (Python); ``comments`` are the types of comment nodes,
    which fold when long or with the definition right below them;
    ``attributes`` (``#[inline]``) may stand between the two.
    """

    name: str
    load: Callable[[], object]
    functions: frozenset[str]
    containers: frozenset[str]
    passages: frozenset[str] = frozenset()
    bindings: frozenset[str] = frozenset()
    docstring_first: bool = False
    comments: frozenset[str] = frozenset({"comment"})
    attributes: frozenset[str] = frozenset()


def _javascript_family(name: str, load: Callable[[], object], namespaces: frozenset[str] = frozenset()) -> Grammar:
    """JavaScript, TypeScript and TSX name their definitions alike; TypeScript adds namespaces."""
    return Grammar(
        name,
        load,
        functions=frozenset(
            {
                "function_declaration",
                "generator_function_declaration",
                "method_definition",
                "function_expression",
                "arrow_function",
            }
        ),
        containers=frozenset({"class_declaration", "class", "abstract_class_declaration"}) | namespaces,
        passages=frozenset({"export_statement"}),
        bindings=frozenset({"lexical_declaration", "variable_declaration", "expression_statement"}),
    )


GRAMMARS: dict[str, Grammar] = {
    "python": Grammar(
        "python",
        tree_sitter_python.language,
        functions=frozenset({"function_definition"}),
        containers=frozenset({"class_definition"}),
        passages=frozenset(
            {
                "decorated_definition",
                "if_statement",
                "try_statement",
                "with_statement",
                "else_clause",
                "elif_clause",
                "except_clause",
                "finally_clause",
                "block",
            }
        ),
        docstring_first=True,
    ),
    "javascript": _javascript_family("javascript", tree_sitter_javascript.language),
    "typescript": _javascript_family(
        "typescript", tree_sitter_typescript.language_typescript, frozenset({"module", "internal_module"})
    ),
    "tsx": _javascript_family("tsx", tree_sitter_typescript.language_tsx),
    "go": Grammar(
        "go",
        tree_sitter_go.language,
        functions=frozenset({"function_declaration", "method_declaration"}),
        containers=frozenset(),
    ),
    "rust": Grammar(
        "rust",
        tree_sitter_rust.language,
        functions=frozenset({"function_item"}),
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        comments=frozenset({"line_comment", "block_comment"}),
        attributes=frozenset({"attribute_item"}),
    ),
    "java": Grammar(
        "java",
        tree_sitter_java.language,
        functions=frozenset({"method_declaration", "constructor_declaration", "static_initializer"}),
        containers=frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"}),
        passages=frozenset({"enum_body_declarations"}),
        comments=frozenset({"line_comment", "block_comment"}),
    ),
}

_EXTENSIONS = {
    ".py": "python",
    ".pyi": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".jsx": "javascript",
    ".ts": "typescript",
    ".mts": "typescript",
    ".cts": "typescript",
    ".tsx": "tsx",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
}

_FUNCTION_VALUES = frozenset({"function_expression", "arrow_function", "class"})

_parsers: dict[str, tree_sitter.Parser] = {}
_definition_queries: dict[str, tree_sitter.Query] = {}
_lock = threading.Lock()


def language_of_path(path: str) -> str | None:
    """The language a file name says, by its extension; None for any other file."""
    return _EXTENSIONS.get(PurePosixPath(path).suffix.lower())


def language_of_label(label: str) -> str | None:
    """The language for a Magika label (``python``, ``javascript``, ``go``...), if it has a grammar here."""
    return label if label in GRAMMARS and label != "tsx" else None


def parse(language: str, source: bytes, old_tree: tree_sitter.Tree | None = None) -> tree_sitter.Tree:
    """``source`` parsed as ``language`` by this process's one parser for it.

    With ``old_tree`` (edited to match ``source``) the parse reuses what did
    not change: re-parsing a prefix costs a tenth of a full parse. A parser
    is not thread-safe, so parses are serialised (a worker process runs one
    job at a time anyway).
    """
    with _lock:
        parser = _parsers.get(language)
        if parser is None:
            parser = _parsers[language] = tree_sitter.Parser(_language(language))
        return parser.parse(source, old_tree) if old_tree is not None else parser.parse(source)


def definitions(language: str, root: tree_sitter.Node) -> list[tree_sitter.Node]:
    """Every function and container definition under ``root``, at any depth, found in one C pass."""
    with _lock:
        query = _definition_queries.get(language)
        if query is None:
            query = _definition_queries[language] = _definition_query(language)
    return tree_sitter.QueryCursor(query).captures(root).get("definition", [])


def _definition_query(language: str) -> tree_sitter.Query:
    """A query for the grammar's named definition node types that this grammar version knows.

    Function expressions and arrow functions are values, not definitions: a
    callback inside a folded body folds with it (one bound to a name at the
    top of a file is found by the outline's walker).
    """
    grammar, compiled = GRAMMARS[language], _language(language)
    known = []
    for kind in sorted((grammar.functions | grammar.containers) - _FUNCTION_VALUES):
        try:
            tree_sitter.Query(compiled, f"({kind})")
        except tree_sitter.QueryError:
            continue
        known.append(f"({kind})")
    return tree_sitter.Query(compiled, f"[{' '.join(known)}] @definition")


def _language(language: str) -> tree_sitter.Language:
    return tree_sitter.Language(GRAMMARS[language].load())
