"""hardcoded-colors: hex, rgb()/rgba()/hsl()/hsla() colour literals outside the design tokens.

In CSS a colour is a declaration value; in Python and JS/TS/JSX it lives in a string (a style
object, a className with a Tailwind arbitrary value like ``bg-[#ff0000]``, a styled-components
template). Comments are never searched. Custom property definitions (``--brand: #3b82f6``) are
token definitions and ``var(--x, #000)`` is a token reference, so both are fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tinyarms.rules import Context, HardcodedColorsParams, Hit
from tinyarms.source import Source

if TYPE_CHECKING:
    from tree_sitter import Node

_COLOR = re.compile(
    r"(?<![\w&/?#-])#(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{6}|[0-9a-fA-F]{3,4})(?![\w-])"
    r"|\b(?:rgba?|hsla?)\(\s*-?[\d.]+(?:deg|g?rad|turn|%)?\s*[,\s]\s*-?[\d.]+%?[^)]*\)",
    re.ASCII,
)
_SHORT_HEX = re.compile(r"#[0-9a-fA-F]{3,4}")
# "#add", "issue #123": short hex is a word or a number as often as a colour, so in a string it
# counts only where the string reads as CSS (a declaration, a Tailwind value, a border shorthand).
_CSS_LIKE = re.compile(r"[:;\[]|\d(?:px|r?em|%|vh|vw)\b|\b(?:solid|dashed|dotted|double)\b")
_URL = r"\burl\([^)]*\)"  # url(#a1b2c3) is an SVG fragment reference (an element id), not a colour
_CSS_HIDDEN = re.compile(r"\bvar\([^()]*(?:\([^()]*\)[^()]*)*\)|" + _URL + r"|/\*.*?\*/", re.S)
_STRING_HIDDEN = re.compile(_URL)


def check(src: Source, params: HardcodedColorsParams, ctx: Context) -> Iterator[Hit]:
    if src.language == "css":
        yield from _css(src)
    else:
        yield from _strings(src, frozenset(params.ignore_attributes))


def _css(src: Source) -> Iterator[Hit]:
    for decl in src.captures("declaration"):
        prop = decl.child(0)
        if prop is not None and prop.type == "property_name" and src.node_text(prop).startswith("--"):
            continue
        start = prop.end_byte if prop is not None else decl.start_byte
        text = src.data[start : decl.end_byte].decode("utf-8", "replace")
        masked = _CSS_HIDDEN.sub(lambda m: " " * len(m.group()), text)
        yield from _hits(src, start, text, masked)


def _strings(src: Source, ignore_attributes: frozenset[str]) -> Iterator[Hit]:
    for node in src.captures("string"):
        text = src.node_text(node)
        if "#" not in text and "(" not in text:
            continue  # most strings: no colour can be in them, whoever owns them
        if _is_docstring(node) or _owner_name(src, node) in ignore_attributes:
            continue
        css_like = None
        masked = _STRING_HIDDEN.sub(lambda m: " " * len(m.group()), text) if "url(" in text else text
        for hit in _hits(src, node.start_byte, text, masked):
            if _SHORT_HEX.fullmatch(hit.values["value"]):
                if css_like is None:
                    inner = text.strip("'\"`").strip()
                    css_like = _COLOR.fullmatch(inner) is not None or _CSS_LIKE.search(inner) is not None
                if not css_like:
                    continue
            yield hit


def _hits(src: Source, base: int, text: str, masked: str) -> Iterator[Hit]:
    for match in _COLOR.finditer(masked):
        value = text[match.start() : match.end()]
        start = base + len(text[: match.start()].encode("utf-8"))
        yield Hit(start, start + len(value.encode("utf-8")), {"value": value})


def _is_docstring(node: Node) -> bool:
    parent = node.parent
    return parent is not None and parent.type == "expression_statement" and parent.named_child_count == 1


def _owner_name(src: Source, node: Node) -> str | None:
    """The JSX attribute or object key a string is the value of, if any."""
    parent = node.parent
    if parent is None:
        return None
    if parent.type in {"jsx_attribute", "pair"}:
        key = parent.child(0)
        if key is not None and key is not node:
            return src.node_text(key).strip("'\"")
    return None
