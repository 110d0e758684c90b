"""magic-numbers: numeric literals whose meaning has no name.

A number is fine when it is on the allow-list, or when something names it: a constant
definition (``MAX_RETRIES = 5``, ``const TIMEOUT_MS = 3000``), a default argument or a
destructuring default (``({ fftSize = 256 }) => ...``), a keyword argument, an enum member, an
array index, a literal type. A lower-case ``const`` names its value only when that value is made
of literals alone (``const ratio = 16 / 9``), not a number inside a computation
(``const value = data[i] || 0.1``); in Python so does a class attribute (``weight = 200``), not
a lower-case module variable or a local. A JSX prop does not name its number (``maxLength={10}``), as
in ESLint's no-magic-numbers. Tests are exempt through the rule's ``exclude`` globs. Python and
JS/TS only: CSS values are the design-tokens rule's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tinyarms.rules import Context, Hit, MagicNumbersParams
from tinyarms.source import Source

if TYPE_CHECKING:
    from tree_sitter import Node

_UPPER = re.compile(r"_*[A-Z][A-Z0-9_]*")
# Nodes a number may sit inside and still belong to the same named value:
# ``TIMEOUT = 60 * 5``, ``SIZES = (8, 16)``, ``const THEME = {gap: 8}``.
_TRANSPARENT = frozenset({
    "binary_operator", "binary_expression", "unary_operator", "unary_expression",
    "parenthesized_expression", "tuple", "list", "set", "dictionary", "pair", "expression_list",
    "array", "object", "as_expression", "satisfies_expression", "type_assertion",
})
_ARITHMETIC = frozenset({"binary_operator", "binary_expression", "parenthesized_expression"})
_NAMED_OWNERS = frozenset({
    "default_parameter", "typed_default_parameter", "keyword_argument",  # Python
    "assignment_pattern", "object_assignment_pattern",  # JS/TS defaults: (a = 3), ({ a = 3 })
    "required_parameter", "optional_parameter", "enum_assignment", "enum_body", "literal_type",
    "type",  # Python annotations: Literal[0, 2, 3]
})
# What a value made of literals alone may hold besides transparent nodes: `const ratio = 16 / 9`,
# `const sizes = [8, 16]`, `const gaps = { small: 4, large: 16 }`.
_LITERALS = frozenset({
    "number", "string", "string_fragment", "escape_sequence", "true", "false", "null", "undefined",
    "property_identifier", "comment",
    "integer", "float", "none", "string_start", "string_content", "string_end",  # Python
})
_TYPED = frozenset({"as_expression", "satisfies_expression"})  # `[1, 2] as const`: the type is no value
_ENUM_BASES = re.compile(r"\b(?:Enum|IntEnum|StrEnum|Flag|IntFlag)\b")


def check(src: Source, params: MagicNumbersParams, ctx: Context) -> Iterator[Hit]:
    if src.language not in ("python", "javascript", "typescript", "tsx"):
        return
    allow = frozenset(params.allow)
    walked: dict[int, tuple[bool, Node, Node | None]] = {}
    literal: dict[int, bool] = {}
    for node in src.captures("number"):
        value = _value(src.node_text(node))
        if value is None:
            continue
        outer = node
        parent = node.parent
        if (parent is not None and parent.type in ("unary_operator", "unary_expression")
                and src.data[parent.start_byte : parent.start_byte + 1] == b"-"):
            value = -value
            outer = parent
            parent = parent.parent
        if value in allow:
            continue
        if _is_named(src, outer, walked, literal):
            continue
        text = src.data[outer.start_byte : outer.end_byte].decode("utf-8", "replace")
        yield Hit(outer.start_byte, outer.end_byte, {"value": text})


def _value(text: str) -> float | None:
    text = text.replace("_", "").rstrip("nNlL")
    try:
        if len(text) > 1 and text[0] == "0" and text[1] in "xXoObB":
            return float(int(text, 0))
        if text.endswith(("j", "J")):
            return None
        return float(text)
    except ValueError:
        return None


def _climb(node: Node, walked: dict[int, tuple[bool, Node, Node | None]]) -> tuple[bool, Node, Node | None]:
    """(used as a key, child, owner): the first ancestor of ``node`` that is not transparent
    and its child on the way. ``walked`` remembers the answer for every transparent node passed:
    ``Node.parent`` costs the node's depth in tree-sitter, and without it 1,000 numbers in one
    nested sum took 30 s (each number climbing the whole chain again)."""
    passed = []
    child, parent = node, node.parent
    while parent is not None and parent.type in _TRANSPARENT:
        known = walked.get(parent.id)
        if known is not None and not (parent.type == "pair" and parent.child_by_field_name("key") == child):
            outcome = known
            break
        if parent.type == "pair" and parent.child_by_field_name("key") == child:
            outcome = (True, child, parent)  # a number used as a key names itself: {404: "not found"}
            break
        passed.append(parent)
        child, parent = parent, parent.parent
    else:
        outcome = (False, child, parent)
    for seen in passed:
        walked[seen.id] = outcome
    return outcome


def _is_named(src: Source, node: Node, walked: dict[int, tuple[bool, Node, Node | None]],
              literal: dict[int, bool]) -> bool:
    keyed, child, parent = _climb(node, walked)
    if keyed:
        return True
    if parent is None:
        return False
    kind = parent.type
    if kind in _NAMED_OWNERS:
        return True
    if kind in ("subscript", "slice", "subscript_expression"):
        # an index or a slice bound (`data[3]`, `data[1:9]`), not arithmetic inside one (`cube[(i // 36) % 6]`)
        return (parent.child_by_field_name("value") != child and parent.child_by_field_name("object") != child
                and child.type not in _ARITHMETIC)
    if kind in ("comparison_operator",) and child.type == "tuple":
        # `sys.version_info >= (3, 8)`: the tuple is a Python version, named by what it is compared with
        return src.node_text(parent).startswith("sys.version_info")
    if kind == "argument_list" and _is_field_default(src, parent, child):
        return True
    if kind == "assignment":  # Python
        left = parent.child_by_field_name("left")
        if left is None or parent.child_by_field_name("right") != child:
            return False
        if _is_constant_name(src, left) or _in_enum_body(src, parent):
            return True
        # a dataclass or pydantic field default (`retries: int = 3` in a class body) is a default value
        if parent.child_by_field_name("type") is not None and _in_class_body(parent) is not None:
            return True
        # a class attribute names a value made of literals (`weight = 200`, `code = 308`: subclasses
        # override it), as a `readonly` field does in TypeScript; a lower-case module variable or
        # a local does not (PEP 8 names constants in upper case)
        return left.type == "identifier" and _in_class_body(parent) is not None and _is_literal(child, literal)
    if kind == "variable_declarator":  # JS/TS
        name = parent.child_by_field_name("name")
        declaration = parent.parent
        if name is not None and _is_constant_name(src, name):
            return True
        is_const = declaration is not None and declaration.type == "lexical_declaration" and (
            src.data.startswith(b"const", declaration.start_byte)
        )
        return is_const and _is_literal(child, literal)
    if kind in ("public_field_definition", "field_definition"):
        name = parent.child_by_field_name("name") or parent.child_by_field_name("property")
        if name is not None and _is_constant_name(src, name):
            return True
        return b"readonly" in src.data[parent.start_byte : child.start_byte] and _is_literal(child, literal)
    return False


def _is_literal(value: Node, known: dict[int, bool]) -> bool:
    """Whether a value is made of literals alone (`16 / 9`, `[8, 16]`, `-0.5`): then a lower-case
    constant names the value it computes. A number inside a computation with anything else
    (`data[i] || 0.1`) is one term of it, and the name is the result's, not the number's.
    ``known`` keeps the answer per value, so the numbers of one long literal walk it once."""
    answer = known.get(value.id)
    if answer is not None:
        return answer
    answer = True
    stack = [value]
    while stack:
        node = stack.pop()
        kind = node.type
        if kind in _LITERALS:
            continue
        if kind == "template_string":  # literal unless it has a ${substitution}
            stack.extend(node.named_children)
        elif kind not in _TRANSPARENT:
            answer = False
            break
        elif kind in _TYPED:
            stack.append(node.named_child(0))
        else:
            stack.extend(child for child in node.named_children if child.type != "type_arguments")
    known[value.id] = answer
    return answer


def _is_constant_name(src: Source, node: Node) -> bool:
    if node.type == "attribute":  # self.MAX_SIZE = 10, cls.LIMIT = 3
        node = node.child_by_field_name("attribute") or node
    if node.type not in ("identifier", "property_identifier"):
        return False
    return _UPPER.fullmatch(src.node_text(node)) is not None


def _is_field_default(src: Source, arguments: Node, value: Node) -> bool:
    """`timeout: float = Field(10.0, gt=0)`: the first argument of pydantic's or attrs' field
    call is the default of an annotated class attribute, named by it as `timeout: float = 10.0` is."""
    call = arguments.parent
    if call is None or call.type != "call" or arguments.named_children[:1] != [value]:
        return False
    function = call.child_by_field_name("function")
    if function is None or src.node_text(function).rsplit(".", 1)[-1] not in ("Field", "field", "attrib"):
        return False
    assignment = call.parent
    return (assignment is not None and assignment.type == "assignment"
            and assignment.child_by_field_name("type") is not None and _in_class_body(assignment) is not None)


def _in_class_body(assignment: Node) -> Node | None:
    block = assignment.parent.parent if assignment.parent is not None else None
    if block is None or block.type != "block" or block.parent is None:
        return None
    return block.parent if block.parent.type == "class_definition" else None


def _in_enum_body(src: Source, assignment: Node) -> bool:
    klass = _in_class_body(assignment)
    if klass is None:
        return False
    bases = klass.child_by_field_name("superclasses")
    return bases is not None and _ENUM_BASES.search(src.node_text(bases)) is not None
