"""Deterministic candidate finders for model rules: cheap code that proposes, a model that judges.

Small models cannot be asked to "review this file" (measured here: precision and recall 0.00).
Each finder returns a few narrow questions, each about a handful of lines, so the model answers
one yes-or-no at a time and the lint fits a commit's budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Excerpt(NamedTuple):
    """Code from another file shown next to a candidate's own lines (cross-file rules)."""

    path: str  # root-relative, as the finding's message names it
    start: int  # the real line number of ``lines[0]``
    lines: tuple[str, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.lines) - 1


@dataclass(slots=True, frozen=True)
class Candidate:
    rule: str
    lines: tuple[tuple[int, int], ...]  # 1-based inclusive ranges shown to the model, in order
    report: tuple[int, int]  # the range a violation may be reported on
    question: str  # what the model is asked about these lines
    suggestion: str | None = None  # a deterministic suggestion (e.g. the token's name)
    key: str = ""  # what makes this candidate itself (for the cache), besides the shown code
    other: Excerpt | None = None  # the other place a cross-file candidate compares with; findings name it
    # What kind of claim this is, for finders whose claims fall into kinds (design-tokens: the
    # property and the token family, "font-size:--size"). A false positive reported for one
    # candidate settles the others of its kind in that repository (feedback.py).
    kind: str | None = None
    # tinyarms: ignore[line-references]  an example of the message's words, not a reference
    # Where the claim points, in words a finding's message ends with: "same logic as lines 5-11,
    # in invoice_eu()". Deterministic: whatever the model says, the finding says where.
    where: str | None = None
    # The 1-based columns (start, end exclusive) a finding of this candidate spans on report[0], when
    # the claim is about part of the line: each value of `padding: 2rem 1rem` is a finding of its own.
    # None: from the line's first non-blank character to the end of report[1].
    columns: tuple[int, int] | None = None
