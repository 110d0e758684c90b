"""line-references: comments that cite line numbers of code ("see line 42", "L120", "app.py:42").

Line numbers in comments rot the moment code above them moves; name the function or the
symbol instead. Only comments are searched, never strings or docstrings. A link pinned to a
commit (``.../blob/3f2a9c1/app.py#L90``) cites lines that never move: not a finding; a link to a
branch (``.../blob/main/app.py#L90``) is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tinyarms.rules import Context, Hit, LineReferencesParams
from tinyarms.source import Source

_REFERENCE = re.compile(
    r"\blines?\s+\d+(?:\s*(?:-|–|to|and)\s*\d+)?\b"
    r"|(?<![\w/.-])#?L\d{2,}(?:-L?\d+)?\b"
    r"|\b[\w./-]+\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|css|scss):\d+\b",
    re.IGNORECASE,
)
_CAPITAL_L = re.compile(r"#?L\d")
_DIGIT = re.compile(r"\d")
_PERMALINK = re.compile(r"://\S*/(?:blob|tree|blame|raw|src|commit)/[0-9a-f]{7,40}/", re.IGNORECASE)


def check(src: Source, params: LineReferencesParams, ctx: Context) -> Iterator[Hit]:
    for node in src.captures("comment"):
        text = src.node_text(node)
        if not _DIGIT.search(text):
            continue  # most comments: nothing to cite a line with
        for match in _REFERENCE.finditer(text):
            value = match.group()
            if _in_permalink(text, match.start()):
                continue  # a link pinned to a commit (the docstring's example): those lines never move
            l_number = value[:2].lower() in ("l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "#l")
            if l_number and not _CAPITAL_L.match(value):
                continue  # "l10n" and friends; only a capital L cites a line
            start = node.start_byte + len(text[: match.start()].encode("utf-8"))
            yield Hit(start, start + len(value.encode("utf-8")), {"value": value})


def _in_permalink(text: str, start: int) -> bool:
    """Whether the word the match ends (no space before it) is a link pinned to a commit."""
    word_start = max(text.rfind(c, 0, start) for c in " \t\n(<[\"'") + 1
    return _PERMALINK.search(text, word_start, start) is not None
