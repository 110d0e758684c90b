"""The text edits behind "suppress on this line" and "suppress in this file", in the syntax
``tinyarms.suppress`` reads: ``tinyarms: ignore[rule]`` in a comment of its own on the line
above (it covers the next line), ``tinyarms: ignore-file[rule]`` at the top. An existing
directive at that place gets the rule added to its list instead of a second comment.

Edits are plain tuples (0-based line and column in code points, end, new text) so this module
needs no LSP library; the server turns them into ``TextEdit``s.
"""

from __future__ import annotations

import posixpath
import re
from typing import NamedTuple

from tinyarms import suppress


class Edit(NamedTuple):
    line: int
    column: int
    end_line: int
    end_column: int
    text: str


_BLOCK_COMMENT = {".css", ".scss", ".less"}
_HASH_COMMENT = {".py", ".pyi", ".sh", ".rb", ".yaml", ".yml", ".toml"}
_INDENT = re.compile(r"[ \t]*")
_CODING = re.compile(r"[ \t\f]*#.*?coding[:=]")  # PEP 263: must stay on the first two lines


def comment(path: str, body: str) -> str:
    ext = posixpath.splitext(path)[1].lower()
    if ext in _BLOCK_COMMENT:
        return f"/* {body} */"
    if ext in _HASH_COMMENT:
        return f"# {body}"
    return f"// {body}"


def _directive(file_wide: bool, ids: list[str]) -> str:
    return f"tinyarms: {'ignore-file' if file_wide else 'ignore'}[{', '.join(ids)}]"


def _extend(lines: list[str], d: suppress.Directive, rule: str) -> Edit:
    assert d.ids is not None
    ids = sorted(d.ids | {rule})
    return Edit(d.line - 1, d.column - 1, d.line - 1, d.end_column - 1, _directive(d.file_wide, ids))


def on_line(lines: list[str], line: int, rule: str, path: str) -> Edit | None:
    """Silence ``rule`` on ``line`` (0-based); None when a directive there already does."""
    directives = suppress.parse(lines)
    for d in directives:
        if d.file_wide or not d.covers(rule):
            continue
        if d.line - 1 == line or (d.own_line and d.line == line):
            return None
    for d in directives:  # a directive alone on the line above takes one more id
        if d.own_line and not d.file_wide and d.line == line and d.ids is not None:
            return _extend(lines, d, rule)
    indent = _INDENT.match(lines[line]).group(0) if line < len(lines) else ""  # type: ignore[union-attr]
    return Edit(line, 0, line, 0, f"{indent}{comment(path, _directive(False, [rule]))}\n")


def in_file(lines: list[str], rule: str, path: str) -> Edit | None:
    """Silence ``rule`` in the whole file; None when a directive already does."""
    directives = [d for d in suppress.parse(lines) if d.file_wide]
    if any(d.covers(rule) for d in directives):
        return None
    if directives and directives[0].ids is not None:
        return _extend(lines, directives[0], rule)
    top = 1 if lines and lines[0].startswith("#!") else 0  # after a shebang, which must stay first
    if top < len(lines) and _CODING.match(lines[top]):
        top += 1
    return Edit(top, 0, top, 0, f"{comment(path, _directive(True, [rule]))}\n")
