"""file-size: a file with more than ``max_lines`` non-blank lines; one finding at line 1."""

from __future__ import annotations

from collections.abc import Iterator

from tinyarms.rules import Context, FileSizeParams, Hit
from tinyarms.source import Source


def check(src: Source, params: FileSizeParams, ctx: Context) -> Iterator[Hit]:
    if src.data.count(b"\n") + 1 <= params.max_lines:
        return  # fewer lines than the limit, blank or not: most files, without counting
    lines = src.lines
    count = len(lines) - lines.count("") - sum(map(str.isspace, lines))  # blank: empty or only whitespace
    if count > params.max_lines:
        first = src.data.find(b"\n")
        yield Hit(0, first if first != -1 else len(src.data), {"lines": count, "max_lines": params.max_lines})
