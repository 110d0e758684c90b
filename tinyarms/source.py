"""One file to lint: its decoded text, its language, and its syntax tree, parsed lazily.

Reading is where bad input is met, so ``read_source`` never raises for a bad file: it returns
a ``Skipped`` record that says why (binary, undecodable, too large, unreadable).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING

from tinyarms.finding import Skipped
from tinyarms.units import KIB, MIB

if TYPE_CHECKING:
    import tree_sitter

LANGUAGES: dict[str, str] = {
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
    ".css": "css",
}
LANGUAGE_NAMES = ("python", "javascript", "typescript", "tsx", "css")

DEFAULT_MAX_BYTES = 1 << 20
_PLUS_NEWLINE = (1).__add__
_BOM = b"\xef\xbb\xbf"
# PEP 263 and CSS @charset: the encodings a file may declare for itself.
_PY_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")
_CSS_CHARSET = re.compile(rb'^@charset\s+"([-\w.]+)"\s*;')


def language_of(path: str) -> str | None:
    """By the name's suffix, as ``PurePosixPath(path).suffix`` reads it, on the string: asked for
    every file a lint lists, where pathlib's parsing cost more than the answer."""
    path = path.rstrip("/")
    name = path[path.rfind("/") + 1 :]
    dot = name.rfind(".")
    return LANGUAGES.get(name[dot:].lower()) if 0 < dot < len(name) - 1 else None


@dataclass(slots=True)
class Source:
    path: str  # as shown to the user
    rel: str  # posix path relative to the project root: what globs and suggestions see
    text: str
    data: bytes  # UTF-8, BOM stripped: what the parser sees; byte offsets index into this
    language: str | None
    _line_starts: list[int] | None = field(default=None, repr=False)
    _last_position: tuple[int, int, int] = field(default=(-1, 0, 0), repr=False)  # (row, offset, column)
    _lines: list[str] | None = field(default=None, repr=False)
    _tree: tree_sitter.Tree | None = field(default=None, repr=False)
    _captures: dict[str, list[tree_sitter.Node]] | None = field(default=None, repr=False)
    _comment_spans: list[tuple[int, int]] | None = field(default=None, repr=False)

    @property
    def lines(self) -> list[str]:
        if self._lines is None:
            lines = self.text.split("\n")
            self._lines = [line.rstrip("\r") for line in lines] if "\r" in self.text else lines
        return self._lines

    @property
    def tree(self) -> tree_sitter.Tree | None:
        if self._tree is None and self.language is not None:
            from tinyarms import syntax

            self._tree = syntax.parse(self.language, self.data)
        return self._tree

    def captures(self, name: str) -> list[tree_sitter.Node]:
        """Nodes of one kind (comment, string, number, import, ...) in source order."""
        if self._captures is None:
            from tinyarms import syntax

            tree = self.tree
            self._captures = syntax.captures(self.language, tree) if tree is not None and self.language else {}
        return self._captures.get(name, [])

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a byte offset; columns count characters, not bytes."""
        starts = self._starts()
        row = bisect.bisect_right(starts, offset) - 1
        last_row, last_offset, last_column = self._last_position
        if row == last_row and last_offset <= offset:
            # Checks report in order: count on from the last hit, or a 1 MB line with 100,000
            # hits would be decoded from its start 100,000 times.
            column = last_column + len(self.data[last_offset:offset].decode("utf-8", "replace"))
        else:
            column = len(self.data[starts[row]:offset].decode("utf-8", "replace")) + 1
        self._last_position = (row, offset, column)
        return row + 1, column

    def _starts(self) -> list[int]:
        """The byte offset where each line starts: 0, then one past each newline."""
        if self._line_starts is None:
            ends = accumulate(map(_PLUS_NEWLINE, map(len, self.data.split(b"\n"))), initial=0)
            self._line_starts = list(ends)[:-1]
        return self._line_starts

    def in_comment(self, line: int, column: int) -> bool:
        """Whether 1-based (line, column) lies in a comment; True where there is no syntax tree to ask."""
        if self.tree is None or not 0 < line <= len(self.lines):
            return True
        if self._comment_spans is None:
            self._comment_spans = [(n.start_byte, n.end_byte) for n in self.captures("comment")]
        offset = self._starts()[line - 1] + len(self.lines[line - 1][: column - 1].encode())
        i = bisect.bisect_right(self._comment_spans, (offset, float("inf"))) - 1
        return i >= 0 and self._comment_spans[i][0] <= offset < self._comment_spans[i][1]

    def node_text(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")


def decode(path: str, raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, bytes] | Skipped:
    """Text and UTF-8 bytes of a file's content, or why it cannot be linted."""
    if len(raw) > max_bytes:
        return too_large(path, len(raw), max_bytes)
    if b"\0" in raw[:8192]:
        return Skipped(path, "binary", "binary file (contains NUL bytes)")
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    try:
        return raw.decode("utf-8"), raw
    except UnicodeDecodeError as exc:
        bad = exc
    declared = _declared_encoding(raw)
    if declared:
        try:
            text = raw.decode(declared)
        except (LookupError, UnicodeDecodeError):
            pass
        else:
            return text, text.encode("utf-8")
    line = raw.count(b"\n", 0, bad.start) + 1
    return Skipped(
        path, "encoding",
        f"not valid UTF-8 (byte 0x{raw[bad.start]:02x} on line {line}) and no encoding declared",
        hint="convert the file to UTF-8, or declare its encoding (PEP 263 coding comment, CSS @charset)",
    )


def _declared_encoding(raw: bytes) -> str | None:
    head = raw.split(b"\n", 2)[:2]
    for line in head:
        match = _PY_CODING.match(line)
        if match:
            return match.group(1).decode("ascii")
    match = _CSS_CHARSET.match(raw[:128])
    return match.group(1).decode("ascii") if match else None


def too_large(path: str, size: int, max_bytes: int) -> Skipped:
    return Skipped(
        path, "too-large", f"file is {_size(size)}, over the {_size(max_bytes)} cap",
        hint="raise max_file_bytes in .tinyarms.yaml to lint it",
    )


def _size(n: int) -> str:
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= KIB:
        return f"{n / KIB:.1f} KiB"
    return f"{n} bytes"


def make_source(path: str, rel: str, raw: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Source | Skipped:
    decoded = decode(path, raw, max_bytes)
    if isinstance(decoded, Skipped):
        return decoded
    text, data = decoded
    return Source(path, rel, text, data, language_of(rel))
