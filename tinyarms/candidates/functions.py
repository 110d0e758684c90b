"""Whole-function review: each function (or method) is one question, for model rules that have
no sharper finder. Files are thereby split at function and class boundaries, so a prompt stays
a few dozen lines however long the file; a function longer than ``MAX_LINES`` is shown in
windows of that size."""

from __future__ import annotations

from tinyarms.candidates import Candidate
from tinyarms.source import Source

MIN_LINES = 4
MAX_LINES = 60
FUNCTION_NODES = frozenset({
    "function_definition",  # Python
    "function_declaration", "generator_function_declaration", "method_definition",
    "function_expression", "arrow_function",  # JS/TS
})


def spans(src: Source) -> list[tuple[int, int, str]]:
    """(first line, last line, name) of every function, outermost first, in source order."""
    tree = src.tree
    if tree is None:
        return []
    out: list[tuple[int, int, str]] = []
    cursor = tree.walk()
    while True:
        node = cursor.node
        assert node is not None  # a cursor from tree.walk() always stands on a node
        if node.type in FUNCTION_NODES and node.is_named:
            name = node.child_by_field_name("name")
            if name is None and node.parent is not None and node.parent.type == "variable_declarator":
                name = node.parent.child_by_field_name("name")
            out.append((node.start_point[0] + 1, node.end_point[0] + 1, src.node_text(name) if name else "(anonymous)"))
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return out


def find(src: Source, rule: str, limit: int) -> list[Candidate]:
    out: list[Candidate] = []
    covered: list[tuple[int, int]] = []
    for start, end, name in spans(src):
        if end - start + 1 < MIN_LINES or any(s <= start and end <= e and e - s + 1 <= MAX_LINES for s, e in covered):
            continue  # too small, or inside a function already shown whole
        covered.append((start, end))
        for first in range(start, end + 1, MAX_LINES):
            last = min(end, first + MAX_LINES - 1)
            out.append(Candidate(
                rule=rule, lines=((first, last),), report=(first, last),
                question=(
                    f"Does the code of {name} (lines {first}-{last}) violate rule {rule}? If it clearly does, "
                    f"report one violation of rule {rule} on the line where it is; otherwise report none."
                ),
                key=f"{name}:{first}-{last}",
            ))
            if len(out) >= limit:
                return out
    return out
