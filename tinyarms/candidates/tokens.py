"""A project's design tokens: where its token files are, what each token is worth, and the
families and scales they make (``design_tokens`` compares raw values with them).

Token files are found by name (``tokens.*``, ``*.tokens.*``, ``theme.*``, ``design-tokens/``,
``tailwind.config.*``) and read for CSS custom properties (``--space-4: 16px``; a step of a
scale, ``calc(16px * var(--scaling))``, at scale 1) and theme objects (``space: {4: "16px"}``).
A token's family is in its name (``--size-3``: spacing); its px and rem tokens, in pixels at the
rule's root font size, make the family's scale.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from tinyarms.paths import within
from tinyarms.source import Source, language_of, make_source

if TYPE_CHECKING:
    from tree_sitter import Node

TOKEN_GLOBS = ("**/tokens.*", "**/*.tokens.*", "**/theme.*", "**/design-tokens/**", "**/tailwind.config.*")
_CSS_TOKEN = re.compile(r"(--[\w-]+)\s*:\s*([^;{}]+);")
_SCALED = re.compile(r"calc\(\s*(-?\d*\.?\d+(?:px|rem|em))\s*\*\s*var\(--[\w-]+\)\s*\)")
ROOT_FONT_PX = 16.0  # pixels to a rem where the rule's params do not say (root_font_px)
_PX_DIGITS = 4  # lengths in px are compared rounded to this many decimals (1.1rem is 17.6px, not 17.6000...01)
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
    return round(size * root_font_px if number.group(2) == "rem" else size, _PX_DIGITS)


def token_index(root: str) -> tuple[dict[str, tuple[str, ...]], frozenset[str]]:
    """(normalised value -> how to name each token of that value, the token files' paths) for ``root``."""
    found, files = stamp(root)
    return dict(_index(root, found)), files


def stamp(root: str) -> tuple[tuple[tuple[str, int], ...], frozenset[str]]:
    """The token files of ``root`` with their modification times (what the caches key on), and
    their root-relative paths."""
    files = _token_files(root, int(time.monotonic() / _LIST_TTL))
    found = tuple((str(p), p.stat().st_mtime_ns) for p in files if p.exists())
    return found, frozenset(p.relative_to(root).as_posix() for p in files)


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
def tokens_of(root: str, files: tuple[tuple[str, int], ...], root_font_px: float) -> Tokens:
    """The tokens of ``files`` (``stamp``), their lengths at ``root_font_px`` pixels to the rem."""
    by_value = dict(_index(root, files))
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


def family_of_token(token: str) -> str | None:
    """The family a token's name says (``var(--size-3)``: spacing), or None (``--shadow-2``)."""
    words = re.split(r"[^a-z]+|(?<=[a-z])(?=\d)", token.lower().removeprefix("var(").removesuffix(")"))
    name = token.lower()
    for family, keys in FAMILIES:
        if any(k in words or ("-" in k and k in name) for k in keys):
            return family
    return None


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


def token_family(token: str) -> str:
    """A token's family: its name without the step, ``var(--size-3)`` -> ``--size``,
    ``var(--radius-md)`` -> ``--radius``, ``theme.space.4`` -> ``theme.space``."""
    if not token.startswith("var("):
        return token.rsplit(".", 1)[0]
    name = token[4:-1]
    head, _, step = name.rpartition("-")
    return head if head.strip("-") and _STEP.fullmatch(step) else name


_STEP = re.compile(r"\w*\d\w*|x*s|sm|md|lg|x*l")
