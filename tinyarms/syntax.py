"""Tree-sitter parsing for every language tinyarms understands.

Rules never walk whole trees in Python: one query per language collects, in C, the nodes rules
care about (comments, strings, numbers, import sources, CSS declarations), and rules look only
at those and their few ancestors. That is what keeps Level 0 under a millisecond per file.
"""

from __future__ import annotations

from functools import cache
from operator import attrgetter

import tree_sitter as ts

_QUERIES = {
    "python": """
        (comment) @comment
        (string) @string
        (integer) @number
        (float) @number
        (import_from_statement module_name: (relative_import) @relative_import)
    """,
    "javascript": """
        (comment) @comment
        (string) @string
        (template_string) @string
        (number) @number
        (import_statement source: (string) @import)
        (export_statement source: (string) @import)
        (call_expression function: (import) arguments: (arguments . (string) @import))
        (call_expression
            function: (identifier) @_require
            arguments: (arguments . (string) @import)
            (#eq? @_require "require"))
    """,
    "css": """
        (comment) @comment
        (declaration) @declaration
    """,
}
_QUERIES["typescript"] = _QUERIES["tsx"] = _QUERIES["javascript"]


@cache
def language(name: str) -> ts.Language:
    if name == "python":
        import tree_sitter_python

        return ts.Language(tree_sitter_python.language())
    if name == "javascript":
        import tree_sitter_javascript

        return ts.Language(tree_sitter_javascript.language())
    if name in ("typescript", "tsx"):
        from tree_sitter_typescript import language_tsx, language_typescript

        return ts.Language(language_tsx() if name == "tsx" else language_typescript())
    if name == "css":
        import tree_sitter_css

        return ts.Language(tree_sitter_css.language())
    raise ValueError(f"no grammar for {name!r}")


_START = attrgetter("start_byte")


@cache
def _parser(name: str) -> ts.Parser:
    return ts.Parser(language(name))


@cache
def _query(name: str) -> ts.Query:
    return ts.Query(language(name), _QUERIES[name])


def parse(name: str, data: bytes) -> ts.Tree:
    return _parser(name).parse(data)


def captures(name: str, tree: ts.Tree) -> dict[str, list[ts.Node]]:
    found = ts.QueryCursor(_query(name)).captures(tree.root_node)
    for nodes in found.values():
        nodes.sort(key=_START)
    return found
