"""Safe YAML loading that remembers where every key came from, and errors that say so.

Config and skill files are validated by pydantic; when validation fails the user must be told
the file, the line and the field (``team.yaml:5: rules[0].engine: 'telepathy' is not one of
pattern, ast, model``). PyYAML's safe loader only; a ``!!python/object`` tag is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tinyarms.errors import ConfigError

Loc = tuple[str | int, ...]


@dataclass(slots=True)
class Document:
    """A loaded YAML file: its data plus the line of every key and list item."""

    path: str  # as shown to the user
    data: Any
    lines: dict[Loc, int]

    def line_of(self, loc: Loc) -> int:
        """The line of ``loc``, or of its nearest ancestor that has one (a missing field)."""
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


# Far above any real config or skill; a file whose aliases expand past it ("billion laughs")
# is refused before anything walks the expansion.
MAX_NODES = 100_000
MAX_FLOW_DEPTH = 64
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)  # libyaml, when PyYAML was built with it


class _Loader(yaml.SafeLoader):
    """The safe loader with ``[``/``{`` nesting capped: PyYAML's scanner slows with the square of
    that depth (a 4 KB line of ``[`` took seconds), and no config nests more than a few levels."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise yaml.scanner.ScannerError(
                None, None, f"brackets nested more than {MAX_FLOW_DEPTH} deep", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)


def load_text(text: str, path: str, *, trusted: bool = False) -> Document:
    """``text`` as a Document. ``trusted`` text (the skills shipped with tinyarms) is parsed by
    libyaml where PyYAML has it, 5x faster; the nesting cap is for files a user or a repository wrote."""
    try:
        # the pure-Python reader refuses control characters here, before parsing
        loader = _FAST_LOADER(text) if trusted and _FAST_LOADER is not None else _Loader(text)
    except yaml.reader.ReaderError as exc:
        raise ConfigError([f"{path}:{_line_at(text, exc.position)}: YAML error: {str(exc).splitlines()[0]}"]) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(path, None, {(): 1})
        lines: dict[Loc, int] = {}
        _index(node, (), lines, path, set(), [MAX_NODES])
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in problem:
            problem = f"{problem} (tinyarms loads YAML safely: object tags are not allowed)"
        raise ConfigError([f"{path}:{line}: YAML error: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}:{loader.line + 1}: YAML error: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{path}:{loader.line + 1}: YAML error: nested too deeply"]) from None
    finally:
        loader.dispose()
    return Document(path, data, lines)


def _line_at(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def load_file(path: Path, shown: str | None = None, *, trusted: bool = False) -> Document:
    shown = shown or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{shown}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{shown}: not valid UTF-8 (byte {exc.start})"]) from None
    return load_text(text, shown, trusted=trusted)


def _index(node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: str, inside: set[int], left: list[int]) -> None:
    """Record the line of every key and item under ``node``. ``inside``: the nodes being walked,
    so an alias of its own ancestor is an error, not endless recursion; ``left``: how many more
    nodes may be walked, counting each alias again, as the data will repeat them."""
    left[0] -= 1
    if left[0] < 0:
        where = f"{path}:{node.start_mark.line + 1}"
        raise ConfigError([f"{where}: YAML error: over {MAX_NODES} values once aliases are expanded"])
    if id(node) in inside:
        where = f"{path}:{node.start_mark.line + 1}: {format_loc(loc)}"
        raise ConfigError([f"{where}: YAML error: an alias refers to a node that contains it"])
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        inside.add(id(node))
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(
                    [f"{path}:{line}: {format_loc((*loc, key))}: duplicate key "
                     f"(first defined on line {seen[key]})"]
                )
            seen[key] = line
            lines[(*loc, key)] = line
            _index(value_node, (*loc, key), lines, path, inside, left)
        inside.discard(id(node))
    elif isinstance(node, yaml.SequenceNode):
        inside.add(id(node))
        for i, item in enumerate(node.value):
            lines[(*loc, i)] = item.start_mark.line + 1
            _index(item, (*loc, i), lines, path, inside, left)
        inside.discard(id(node))


def format_loc(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_messages(error: Any, prefix: Loc = ()) -> list[tuple[Loc, str]]:
    """A pydantic ``ValidationError`` as (field location, plain message) pairs."""
    out = []
    for item in error.errors(include_url=False):
        loc = prefix + tuple(p for p in item["loc"] if not _is_union_tag(p))
        out.append((loc, _message(item, loc)))
    return out


def validation_problems(doc: Document, error: Any, prefix: Loc = ()) -> list[str]:
    """Turn a pydantic ``ValidationError`` into ``file:line: field: message`` lines."""
    return [
        f"{doc.path}:{doc.line_of(loc)}: {format_loc(loc)}: {message}"
        for loc, message in validation_messages(error, prefix)
    ]


def _is_union_tag(part: str | int) -> bool:
    # pydantic puts the union member or function name into loc ("function-after[...]").
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _message(item: dict[str, Any], loc: Loc) -> str:
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind in ("literal_error", "enum"):
        expected = ctx.get("expected", "")
        choices = [c.strip().strip("'") for c in expected.replace(" or ", ", ").split(",")]
        return f"{item['input']!r} is not one of {', '.join(c for c in choices if c)}"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":  # our validators' own words, without pydantic's "Value error, " in front
        return str(ctx.get("error") or item["msg"])
    return str(item["msg"])


def did_you_mean(word: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
