"""regex: a rule a skill defines with its own regular expression (``check: regex``).

``scope`` says where the expression looks: ``comments``, ``strings``, ``code`` (everything
but comments and strings) or ``all`` (the raw text, also for languages tinyarms cannot parse).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from tinyarms.rules import Context, Hit, RegexParams
from tinyarms.source import Source


@lru_cache(maxsize=256)
def _compile(pattern: str, ignore_case: bool) -> re.Pattern[bytes]:
    return re.compile(pattern.encode("utf-8"), re.IGNORECASE if ignore_case else 0)


def check(src: Source, params: RegexParams, ctx: Context) -> Iterator[Hit]:
    pattern = _compile(params.regex, params.ignore_case)
    if params.scope == "all" or src.tree is None:
        regions = [(0, src.data)]
    elif params.scope in ("comments", "strings"):
        nodes = src.captures("comment" if params.scope == "comments" else "string")
        regions = [(n.start_byte, src.data[n.start_byte : n.end_byte]) for n in nodes]
    else:
        masked = bytearray(src.data)
        for node in src.captures("comment") + src.captures("string"):
            for i in range(node.start_byte, node.end_byte):
                if masked[i] != 0x0A:
                    masked[i] = 0x20
        regions = [(0, bytes(masked))]
    for base, data in regions:
        for match in pattern.finditer(data):
            if match.end() > match.start():
                value = match.group().decode("utf-8", "replace")
                yield Hit(base + match.start(), base + match.end(), {"value": value})
