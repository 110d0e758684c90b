"""design-tokens candidates: raw spacing/radius/type/border values equal to a token of their
family, or off that family's scale.

The project's tokens are read from its token files (CSS custom properties such as
``--space-4: 16px``, or a step of a scale, ``--space-4: calc(16px * var(--scaling))``, read at
scale 1; theme objects such as ``space: {4: "16px"}``). A raw ``16px`` for a
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
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from tinyarms.candidates import Candidate
from tinyarms.paths import within
from tinyarms.source import Source, language_of, make_source

if TYPE_CHECKING:
    from tree_sitter import Node

TOKEN_GLOBS = ("**/tokens.*", "**/*.tokens.*", "**/theme.*", "**/design-tokens/**", "**/tailwind.config.*")
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
_CSS_TOKEN = re.compile(r"(--[\w-]+)\s*:\s*([^;{}]+);")
_SCALED = re.compile(r"calc\(\s*(-?\d*\.?\d+(?:px|rem|em))\s*\*\s*var\(--[\w-]+\)\s*\)")


ROOT_FONT_PX = 16.0  # pixels to a rem where the rule's params do not say (root_font_px)
_NUMBER = re.compile(r"-?\d*\.?\d+")
_UNIT_LENGTH = re.compile(r"(-?\d*\.?\d+)(px|rem|em)")


def normalise(value: str, bare_px: bool = True) -> str:
    """A value as compared: lower case, no spaces, numbers as ``16px`` / ``0.5rem``. ``bare_px``:
    a bare number is pixels, as in a style object or a theme (in CSS it is not a length)."""
    value = value.strip().strip("'\"").lower().replace(" ", "")
    if bare_px and _NUMBER.fullmatch(value):
        value += "px"
    number = _UNIT_LENGTH.fullmatch(value)
    if number:
        return f"{float(number.group(1)):g}{number.group(2)}"
    return value


def px_of(value: str, root_font_px: float = ROOT_FONT_PX) -> float | None:
    """A normalised length in pixels: px as it is, rem at ``root_font_px``; None for anything else.
    An em is not converted: it depends on the element's own font size."""
    number = _UNIT_LENGTH.fullmatch(value)
    if number is None or number.group(2) == "em":
        return None
    size = float(number.group(1))
    return round(size * root_font_px if number.group(2) == "rem" else size, 4)


def token_index(root: str) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(normalised value -> how to name each token of that value, the token files' paths) for ``root``."""
    stamp, files = _stamp(root)
    return dict(_index(root, stamp)), files


def _stamp(root: str) -> tuple[tuple[tuple[str, int], ...], frozenset[str]]:
    files = _token_files(root, int(time.monotonic() / _LIST_TTL))
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())
    return stamp, frozenset(p.relative_to(root).as_posix() for p in files)


Step = tuple[tuple[str, str], ...]  # the tokens of one step of a scale, each with its value as written
Scale = tuple[tuple[float, Step], ...]


@dataclass(frozen=True, slots=True)
class Tokens:
    """A project's tokens as the finder compares with them: by value as written (normalised), and
    by length in pixels at the rule's root font size, each with the value it is written as."""

    by_value: dict[str, tuple[str, ...]]
    by_px: dict[float, tuple[tuple[str, str], ...]]
    # Per family, its scale: the px lengths of its tokens, in order, each with its tokens and their
    # values as written. em, ch, % and clamp() tokens are no steps: they have no length of their own.
    scales: dict[str, Scale]


@lru_cache(maxsize=16)
def _tokens(root: str, stamp: tuple[tuple[str, int], ...], root_font_px: float) -> Tokens:
    by_value = dict(_index(root, stamp))
    by_px: dict[float, list[tuple[str, str]]] = {}
    scales: dict[str, dict[float, list[tuple[str, str]]]] = {}
    for value, names in by_value.items():
        px = px_of(value, root_font_px)
        if px is None:
            continue
        by_px.setdefault(px, []).extend((name, value) for name in names)
        for name in names:
            family = family_of_token(name)
            if family is not None:
                scales.setdefault(family, {}).setdefault(px, []).append((name, value))
    return Tokens(by_value, {px: tuple(found) for px, found in by_px.items()},
                  {family: tuple((px, tuple(steps[px])) for px in sorted(steps)) for family, steps in scales.items()})


# A family's words, looked for in a token's name (``--size-3``, ``theme.radii.md``) or a property.
FAMILIES = (
    ("radius", ("radius", "radii", "rounded")),
    ("type", ("font-size", "fontsize", "font-sizes", "fontsizes", "text", "fs", "type")),
    ("border", ("border-width", "borderwidth", "border-widths", "borderwidths", "border-size", "border-sizes",
                "stroke")),
    ("spacing", ("spacing", "space", "spaces", "size", "sizes", "gap", "gaps", "margin", "padding", "inset")),
)
_TAILWIND_FAMILIES = {"rounded": "radius", "text": "type", "border": "border"}  # the rest: p, m, gap, space...
_SPACING_PROPERTY = re.compile(r"^(?:margin|padding|gap|row-gap|column-gap|top|right|bottom|left|inset)\b")


def family_of_token(token: str) -> str | None:
    """The family a token's name says (``var(--size-3)``: spacing), or None (``--shadow-2``)."""
    words = re.split(r"[^a-z]+|(?<=[a-z])(?=\d)", token.lower().removeprefix("var(").removesuffix(")"))
    name = token.lower()
    for family, keys in FAMILIES:
        if any(k in words or ("-" in k and k in name) for k in keys):
            return family
    return None


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


_LIST_TTL = 2.0  # seconds a listing of the token files is reused (one lint asks once per file)


@lru_cache(maxsize=16)
def _token_files(root: str, _epoch: int) -> list[Path]:
    import pathspec

    try:
        listed = subprocess.run(
            ["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True, timeout=10,
        ).stdout.decode(errors="replace").split("\0")
    except (OSError, subprocess.SubprocessError):
        listed = _walk(root)  # not a git checkout (an unpacked project, the installed eval corpus)
    spec = pathspec.GitIgnoreSpec.from_lines(TOKEN_GLOBS)
    return [Path(root, name) for name in listed
            if name and spec.match_file(name) and language_of(name) and within(Path(root, name), root)]


def _walk(root: str) -> list[str]:
    import os

    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "node_modules"]
        rel = os.path.relpath(folder, root)
        out += [name if rel == "." else f"{rel}/{name}".replace(os.sep, "/") for name in names]
    return out


@lru_cache(maxsize=16)
def _index(root: str, stamp: tuple[tuple[str, int], ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    found: dict[str, list[str]] = {}
    for path_text, _ in stamp:
        path = Path(path_text)
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        src = make_source(path_text, path.name, raw)
        if not isinstance(src, Source):
            continue
        if src.language == "css":
            for name, value in _CSS_TOKEN.findall(src.text):
                scaled = _SCALED.fullmatch(value.strip())
                # `--space-4: calc(16px * var(--scaling))` (Radix Themes): the step is 16px at scale 1
                _add(found, normalise(scaled.group(1) if scaled else value, bare_px=False), f"var({name})")
        elif src.language in ("javascript", "typescript", "tsx"):
            for node in src.captures("string") + src.captures("number"):
                pair = node.parent
                if pair is None or pair.type != "pair" or pair.child_by_field_name("value") != node:
                    continue
                keys = _key_path(src, pair)
                if keys:
                    _add(found, normalise(src.node_text(node)), "theme." + ".".join(keys))
    return tuple((value, tuple(tokens)) for value, tokens in found.items())


def _add(found: dict[str, list[str]], value: str, token: str) -> None:
    tokens = found.setdefault(value, [])
    if token not in tokens:
        tokens.append(token)


def _key_path(src: Source, pair: Node) -> list[str]:
    keys: list[str] = []
    node: Node | None = pair
    while node is not None and node.type in ("pair", "object"):
        if node.type == "pair":
            key = node.child_by_field_name("key")
            if key is not None:
                keys.append(src.node_text(key).strip("'\"`"))
        node = node.parent
    return list(reversed(keys))


def find(src: Source, rule: str, limit: int, root: str | None,
         root_font_px: float = ROOT_FONT_PX) -> list[Candidate]:
    """Each raw value (each of a shorthand's, ``padding: 2rem 1rem``) equal to a token of its own
    family, or off that family's scale (``off_scale``), a candidate of its own; at most ``limit``,
    the values equal to a token first. A px value equals a rem token at ``root_font_px`` pixels to
    the rem, and the other way round; an em value only an em token, and is never off a scale."""
    if not root:
        return []
    stamp, token_files = _stamp(root)
    if not stamp or src.rel in token_files:
        return []
    tokens = _tokens(root, stamp, root_font_px)
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


def token_family(token: str) -> str:
    """A token's family: its name without the step, ``var(--size-3)`` -> ``--size``,
    ``var(--radius-md)`` -> ``--radius``, ``theme.space.4`` -> ``theme.space``."""
    if not token.startswith("var("):
        return token.rsplit(".", 1)[0]
    name = token[4:-1]
    head, _, step = name.rpartition("-")
    return head if head.strip("-") and _STEP.fullmatch(step) else name


_STEP = re.compile(r"\w*\d\w*|x*s|sm|md|lg|x*l")


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
