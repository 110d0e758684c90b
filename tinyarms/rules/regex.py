"""regex: a rule a skill defines with its own regular expression (``check: regex``).

``scope`` says where the expression looks: ``comments``, ``strings``, ``code`` (everything
but comments and strings) or ``all`` (the raw text, also for languages tinyarms cannot parse).

A skill's pattern comes from a repository, so it may backtrack for ever on some file (``(a|aa)+$``);
it runs through the ``regex`` module, with ``re``'s syntax (``V0``) and a time limit per file,
and a pattern that runs over is this file's ``skipped`` entry, not a stuck lint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import lru_cache

import regex

from tinyarms.rules import Context, Hit, PatternTimeout, RegexParams
from tinyarms.source import Source

SECONDS_PER_FILE = 0.5  # a pattern that needs longer on one file is backtracking, not searching
_NEWLINE = ord("\n")
_SPACE = ord(" ")


@lru_cache(maxsize=256)
def _compile(pattern: str, ignore_case: bool) -> regex.Pattern[bytes]:
    return regex.compile(pattern.encode("utf-8"), regex.V0 | (regex.IGNORECASE if ignore_case else 0))


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
                if masked[i] != _NEWLINE:
                    masked[i] = _SPACE
        regions = [(0, bytes(masked))]
    deadline = time.monotonic() + SECONDS_PER_FILE
    for base, data in regions:
        try:
            matches = list(pattern.finditer(data, timeout=max(0.0, deadline - time.monotonic())))
        except TimeoutError:
            raise PatternTimeout(
                f"its pattern {params.regex!r} ran over {SECONDS_PER_FILE} s on this file (catastrophic "
                "backtracking?); simplify it, e.g. without a repeated group that can match the same text two ways"
            ) from None
        for match in matches:
            if match.end() > match.start():
                value = match.group().decode("utf-8", "replace")
                yield Hit(base + match.start(), base + match.end(), {"value": value})
