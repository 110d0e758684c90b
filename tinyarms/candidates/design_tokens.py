"""design-tokens candidates: raw spacing/radius/type/border values equal to a token of their
family, or off that family's scale.

The project's tokens are read from its token files (``tokens.py``: CSS custom properties such as
``--space-4: 16px``, theme objects such as ``space: {4: "16px"}``). A raw ``16px`` for a
padding in a style, a JSX style object or a Tailwind arbitrary value (``p-[16px]``) then becomes
a candidate whose suggestion names the token; the model judges whether the token was meant.
px and rem are compared in pixels (``root_font_px`` to the rem, 16 by default); em is compared
as written only, since it depends on the element.

Tokens and properties fall into families, by name: spacing (padding, margin, gap, the offsets
top/right/bottom/left/inset; tokens named space, spacing, size, gap), radius (border-radius;
radius, rounded), type size (font-size; font-size, text, fs) and border width (border-width, and
the width in a border shorthand, ``border-top: 2px solid``). A value is a
candidate only for a token of its own property's family: a font size that happens to equal a
spacing step is no claim. Widths and heights have no family: a dimension is no spacing step.

A family's px and rem tokens make its scale. A value equal to no token of its family but strictly
between two steps of that scale is off the scale, a candidate of another kind whose suggestion
names the nearest steps (``13px``: 8px and 16px). Not off the scale: 0 and hairlines (1px or
less), a value below the smallest or above the largest step (a negative value is compared with
the negative steps), and the operands of a function (``calc(var(--radius) - 2px)``).
Each value of a shorthand (``padding: 2rem 13px``) is a candidate of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from tinyarms.candidates import Candidate
from tinyarms.candidates.tokens import (
    ROOT_FONT_PX,
    Scale,
    Step,
    Tokens,
    family_of_token,
    normalise,
    px_of,
    stamp,
    token_family,
    tokens_of,
)
from tinyarms.source import Source

_SIDE = r"(?:-(?:top|right|bottom|left|inline|block)(?:-(?:start|end))?)?"
# A border's width, alone or in a shorthand (`border-top: 2px solid`): border-spacing, -image, -style
# and -color are not.
_BORDER_WIDTH = re.compile(rf"^border{_SIDE}(?:-width)?$")
_PROPERTIES = re.compile(
    r"^(?:(?:margin|padding|gap|row-gap|column-gap|width|height|min-width|min-height|max-width|max-height|top|right|"
    rf"bottom|left|inset|border-radius|font-size|line-height|letter-spacing){_SIDE}"
    rf"|border{_SIDE}(?:-width)?|border-(?:top|bottom|start|end)-(?:left|right|start|end)-radius)$"
)
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_LENGTH = re.compile(r"(?<![\w.#-])(-?\d*\.?\d+)(px|rem|em)\b")
_TAILWIND = re.compile(r"\b[a-z]{1,8}(?:-[a-z]{1,8})?-\[(-?\d*\.?\d+(?:px|rem|em))\]")
_TAILWIND_FAMILIES = {"rounded": "radius", "text": "type", "border": "border"}  # the rest: p, m, gap, space...
_SPACING_PROPERTY = re.compile(r"^(?:margin|padding|gap|row-gap|column-gap|top|right|bottom|left|inset)\b")


def family_of_property(what: str) -> str | None:
    """The family of what a raw value sets: a CSS property, or ``tw:UTILITY`` for a Tailwind class."""
    if what.startswith("tw:"):
        utility = what[3:].split("-", 1)[0]
        if utility in _TAILWIND_FAMILIES:
            return _TAILWIND_FAMILIES[utility]
        return "spacing" if re.fullmatch(r"[pm][xytrbl]?|gap|space|inset|top|right|bottom|left", utility) else None
    if what.startswith("border") and "radius" in what:
        return "radius"
    if what == "font-size":
        return "type"
    if _BORDER_WIDTH.match(what):
        return "border"
    return "spacing" if _SPACING_PROPERTY.match(what) else None


def find(src: Source, rule: str, limit: int, root: str | None,
         root_font_px: float = ROOT_FONT_PX) -> list[Candidate]:
    """Each raw value (each of a shorthand's, ``padding: 2rem 1rem``) equal to a token of its own
    family, or off that family's scale (``off_scale``), a candidate of its own; at most ``limit``,
    the values equal to a token first. A px value equals a rem token at ``root_font_px`` pixels to
    the rem, and the other way round; an em value only an em token, and is never off a scale."""
    if not root:
        return []
    files, token_files = stamp(root)
    if not files or src.rel in token_files:
        return []
    tokens = tokens_of(root, files, root_font_px)
    if not tokens.by_value:
        return []
    equal: list[Candidate] = []
    off: list[Candidate] = []
    for value in _raw_values(src):
        family = family_of_property(value.what)
        if family is None:
            continue  # a width, a height, a line height: no token family
        raw = normalise(value.raw)
        same = _equal(tokens, raw, family, root_font_px)
        if same is not None:
            equal.append(_equal_candidate(rule, value, *same))
            if len(equal) >= limit:
                break
            continue
        px = px_of(raw, root_font_px)
        steps = off_scale(tokens.scales.get(family, ()), px) if px is not None else None
        if steps is not None:
            off.append(_off_scale_candidate(rule, value, family, raw, *steps))
    return (equal + off)[:limit]


HAIRLINE_PX = 1.0  # a length this small (a 1px border, a -1px overlap) is never off a scale
_SCALE_NAMES = {"spacing": "spacing", "radius": "radius", "type": "font size", "border": "border width"}


def off_scale(scale: Scale, px: float) -> tuple[Step, Step] | None:
    """The steps either side of a length that lies strictly between two steps of ``scale`` (its
    tokens' lengths in px) and on none: the nearest below and above, each its tokens and their values.
    None for a length on a step, outside the scale's range, 0 or a hairline. A negative length is
    compared with the negative steps only (margins pulled in), a positive one with the positive."""
    if abs(px) <= HAIRLINE_PX:
        return None
    side = [(step, names) for step, names in scale if step != 0 and (step > 0) == (px > 0)]
    below = [names for step, names in side if step < px]
    above = [names for step, names in side if step > px]
    if not below or not above or any(step == px for step, _ in side):
        return None
    return below[-1], above[0]


def _equal(tokens: Tokens, raw: str, family: str, root_font_px: float) -> tuple[str, str] | None:
    """The token of ``family`` that equals the normalised ``raw`` and its value as written: one
    written alike first (``16px``: ``--size-px-3: 16px`` before ``--size-3: 1rem``)."""
    same = next((t for t in tokens.by_value.get(raw, ()) if family_of_token(t) == family), None)
    if same is not None:
        return same, raw
    px = px_of(raw, root_font_px)
    if px is None:
        return None
    return next(((t, v) for t, v in tokens.by_px.get(px, ()) if family_of_token(t) == family), None)


def _equal_candidate(rule: str, value: RawValue, token: str, written: str) -> Candidate:
    line, prop, raw = value.line, value.prop, value.raw
    converted = written != normalise(raw)  # a rem token for a px value, or the other way round
    same = f"has this same value ({written} is {raw})" if converted else "has this same value"
    return Candidate(
        rule=rule, lines=((line, line),), report=(line, line),
        question=(
            f"Line {line} sets {prop} to the raw value {raw}. The project's design token {token} {same}. "
            f"Should line {line} use the token {token} instead of the raw value? If yes, report one violation "
            f"of rule {rule} on line {line}; if the value is unrelated to the token, report none."
        ),
        suggestion=f"use {token} instead of {raw}", key=f"{line}:{value.column}:{prop}:{raw}",
        kind=f"{value.what}:{token_family(token)}",
        where=f"{raw} is the value of the token {token}" + (f" ({written})" if converted else ""),
        columns=(value.column, value.end_column),
    )


def _off_scale_candidate(rule: str, value: RawValue, family: str, raw: str, low: Step, high: Step) -> Candidate:
    line, prop = value.line, value.prop
    scale = _SCALE_NAMES.get(family, family)
    (low_token, low_value), (high_token, high_value) = _named(low, raw), _named(high, raw)
    return Candidate(
        rule=rule, lines=((line, line),), report=(line, line),
        question=(
            f"Line {line} sets {prop} to the raw value {value.raw}, which is on no step of the project's {scale} "
            f"scale: the nearest steps are the design tokens {low_token} ({low_value}) and {high_token} "
            f"({high_value}). Should line {line} use a step of the scale instead of the raw value? If yes, report "
            f"one violation of rule {rule} on line {line}; if the value is meant to be off the scale, report none."
        ),
        suggestion=f"use {low_token} or {high_token} instead of {value.raw}",
        key=f"{line}:{value.column}:{prop}:{value.raw}:off-scale", kind=f"{value.what}:off-scale:{family}",
        where=(f"{value.raw} is off the {scale} scale: nearest steps {low_token} {low_value} and "
               f"{high_token} {high_value}"),
        columns=(value.column, value.end_column),
    )


def _named(step: Step, raw: str) -> tuple[str, str]:
    """The token that names a step for ``raw``: one written in its unit, else the first."""
    unit = raw.lstrip("-.0123456789")
    return next(((t, v) for t, v in step if v.lstrip("-.0123456789") == unit), step[0])


class RawValue(NamedTuple):
    """A length in a style position: where it is (1-based line, columns; the end exclusive), the
    property as written, the value, and what it sets: the property, or for a Tailwind class its
    utility (``p-[16px]``: ``tw:p``)."""

    line: int
    column: int
    end_column: int
    prop: str
    raw: str
    what: str


def _raw_values(src: Source) -> Iterator[RawValue]:
    """Every length in a style position, each value of a shorthand on its own."""
    if src.language == "css":
        for decl in src.captures("declaration"):
            prop_node = decl.child(0)
            if prop_node is None:
                continue
            prop = src.node_text(prop_node)
            if _PROPERTIES.match(prop):
                yield from _lengths(src, decl.start_byte, src.node_text(decl), _LENGTH, prop, prop)
        return
    nodes = sorted(src.captures("string") + src.captures("number"), key=lambda n: n.start_byte)  # in source order
    for node in nodes:
        text = src.node_text(node)
        pair = node.parent
        if pair is not None and pair.type == "pair" and pair.child_by_field_name("value") == node:
            key_node = pair.child_by_field_name("key")
            assert key_node is not None  # tree-sitter's pair always has its key
            key = src.node_text(key_node).strip("'\"")
            prop = _CAMEL.sub("-", key).lower()
            if _PROPERTIES.match(prop):
                if node.type == "number":  # a bare number in a style object is pixels
                    yield _value(src, node.start_byte, text, prop, text, prop)
                else:
                    yield from _lengths(src, node.start_byte, text, _LENGTH, prop, prop)
                continue
        if node.type != "number":
            for match in _TAILWIND.finditer(text):
                utility = match.group().split("-[", 1)[0]
                yield _value(src, node.start_byte + len(text[: match.start()].encode()), match.group(),
                             "a Tailwind class", match.group(1), f"tw:{utility}")


def _lengths(src: Source, start: int, text: str, pattern: re.Pattern[str], prop: str,
             what: str) -> Iterator[RawValue]:
    """The lengths ``pattern`` finds in ``text``, which starts at byte ``start`` of the file, but
    for the operands of a function (``calc(var(--radius) - 2px)``, ``var(--x, 13px)``): the value
    set is the function's, not theirs."""
    depth, seen = 0, 0
    for match in pattern.finditer(text):
        between = text[seen : match.start()]
        depth = max(0, depth + between.count("(") - between.count(")"))
        seen = match.start()
        if depth == 0:
            yield _value(src, start + len(text[: match.start()].encode()), match.group(), prop, match.group(), what)


def _value(src: Source, offset: int, written: str, prop: str, raw: str, what: str) -> RawValue:
    line, column = src.position(offset)
    return RawValue(line, column, column + len(written), prop, raw, what)
