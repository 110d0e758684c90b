"""How alike two pieces of code are, for the counter-examples feedback puts in a prompt.

A stored false positive is shown with a question only when its code is like the code asked
about: Jaccard of token-pair shingles, at least ``MIN_SIMILARITY``, the most alike first. The
order is part of the prompt, so of the model-cache key: it is stable for the same inputs.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from functools import lru_cache
from itertools import pairwise
from typing import Protocol, TypeVar

MIN_SIMILARITY = 0.1  # below this, a counter-example says nothing about the code asked about
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d[\w.]*|\S")


class Example(Protocol):
    """What ranking reads of a stored example (``feedback.Entry``)."""

    @property
    def id(self) -> int: ...

    @property
    def code(self) -> str: ...

    @property
    def created(self) -> float: ...


E = TypeVar("E", bound=Example)


@lru_cache(maxsize=4096)  # each stored example is compared with every question of a lint
def shingles(code: str) -> frozenset[int]:
    """Pairs of consecutive tokens: cheap, and short snippets (a line or two) still have some."""
    tokens = _TOKEN.findall(code)
    if len(tokens) < 2:
        return frozenset(zlib.crc32(t.encode()) for t in tokens)
    return frozenset(zlib.crc32(f"{a}\x1f{b}".encode()) for a, b in pairwise(tokens))


def rank(entries: Iterable[E], code: str, limit: int) -> list[E]:
    """The ``limit`` entries most like ``code`` (at least ``MIN_SIMILARITY``), newest first
    among equals. The order is stable for the same inputs: it is part of the prompt, so of the
    model-cache key."""
    from tinyarms.candidates.cross_file import jaccard

    target = shingles(code)
    scored = [(round(jaccard(target, shingles(e.code)), ndigits=3), e) for e in entries]
    alike = [(score, e) for score, e in scored if score >= MIN_SIMILARITY]
    alike.sort(key=lambda pair: (-pair[0], -pair[1].created, -pair[1].id))
    return [e for _, e in alike[:limit]]
