"""The records every part of tinyarms passes around: a finding, a skipped check, a lint result.

Plain dataclasses inside the program; their ``to_dict`` shapes are the JSON contract of
``tinyarms lint --format json`` and of the daemon's replies (DESIGN.md, "Finding").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
# A developer's verdict on a finding (``tinyarms feedback``), in ``Finding.feedback``.
FALSE_POSITIVE = "false-positive"
CONFIRMED = "confirmed"
# Engines whose findings stand for a candidate's claim (a model's verdict, or the finder's as it
# stands with ``models.verdict: finder``): feedback on one settles its kind of claim.
CLAIM_ENGINES = frozenset({"model", "finder"})

_WS = re.compile(r"\s+")


@dataclass(slots=True)
class Finding:
    """One violation. Lines and columns are 1-based and count characters (Unicode code points),
    not bytes; ``end_column`` is exclusive, as in SARIF."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    rule: str
    skill: str
    severity: str
    message: str
    suggestion: str | None = None
    level: int = 0
    engine: str = "pattern"
    model: str | None = None
    confidence: float = 1.0
    fingerprint: str = ""
    feedback: str | None = None  # FALSE_POSITIVE or CONFIRMED when a developer said so (feedback.py)

    def to_dict(self) -> dict[str, Any]:
        # Every field is a plain value: no deep copy (dataclasses.asdict was 40 % of a cached lint).
        return dict(zip(_FINDING_FIELDS, _finding_values(self), strict=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        return cls(**data)


@dataclass(slots=True)
class Skipped:
    """A file or a check that was not done, and why. Nothing is dropped silently."""

    path: str | None
    reason: str  # a stable code: binary, encoding, too-large, unreadable, model-unavailable, ...
    message: str
    rule: str | None = None
    level: int | None = None
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(zip(_SKIPPED_FIELDS, _skipped_values(self), strict=True))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Skipped:
        return cls(**data)


_FINDING_FIELDS = tuple(f.name for f in fields(Finding))
_finding_values = attrgetter(*_FINDING_FIELDS)
_SKIPPED_FIELDS = tuple(f.name for f in fields(Skipped))
_skipped_values = attrgetter(*_SKIPPED_FIELDS)


@dataclass(slots=True)
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    # Model findings the confirm pass turned down: not reported, kept so `tinyarms eval` can
    # measure precision with and without that pass.
    rejected: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "skipped": [s.to_dict() for s in self.skipped],
            "stats": self.stats,
        }


def normalise_line(text: str) -> str:
    return _WS.sub(" ", text).strip()


def assign_fingerprints(path: str, findings: list[Finding], lines: list[str]) -> None:
    """Give each finding a fingerprint that survives code moving up or down.

    It hashes the path, the rule, the finding's line with whitespace normalised, and the
    occurrence index of that (rule, line content) pair in the file, so two identical lines
    stay distinct and an edit elsewhere in the file changes nothing.
    """
    seen: dict[tuple[str, str], int] = {}
    # Per line, not per finding: a minified 1 MB line with 100,000 findings is normalised and
    # hashed once, and each finding only adds its index to a copy of that hash.
    contents: dict[int, str] = {}
    prefixes: dict[tuple[str, int], Any] = {}
    for f in sorted(findings, key=lambda f: (f.line, f.column, f.rule)):
        content = contents.get(f.line)
        if content is None:
            content = contents[f.line] = normalise_line(lines[f.line - 1]) if 0 < f.line <= len(lines) else ""
        key = (f.rule, content)
        index = seen.get(key, 0)
        seen[key] = index + 1
        prefix = prefixes.get((f.rule, f.line))
        if prefix is None:
            # surrogatepass: file names that are not UTF-8 arrive as lone surrogates (os.fsdecode)
            prefix = prefixes[(f.rule, f.line)] = hashlib.sha256(
                f"{path}\0{f.rule}\0{content}\0".encode("utf-8", "surrogatepass"))
        digest = prefix.copy()
        digest.update(str(index).encode())
        f.fingerprint = digest.hexdigest()[:20]


def fails(finding: Finding, fail_on: str) -> bool:
    """Whether a finding fails the run; ``info`` never does, nor a known false positive, nor
    anything with ``fail_on: never``."""
    if finding.severity == "info" or fail_on == "never" or finding.feedback == FALSE_POSITIVE:
        return False
    return SEVERITY_RANK[finding.severity] >= SEVERITY_RANK[fail_on]


@dataclass(slots=True, frozen=True)
class RuleMeta:
    """What a renderer needs to know about a rule (SARIF's tool.driver.rules, help text)."""

    id: str
    skill: str
    description: str
    severity: str
    level: int
    engine: str
    suggestion: str | None = None
