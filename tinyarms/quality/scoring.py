"""Findings matched to a corpus's labels (``tinyarms eval``): true and false positives, misses,
and the rates they give, per file and rule and summed.

Findings are matched to labels one to one, per file and rule: each label takes at most one
finding, narrowest label first: one whose line is within the label's range plus the rule's
tolerance, or, for a finding that spans lines (a copied block), one whose lines cover at least
half of the label's range or of its own (so a copy reported from its ``def`` line matches the
label on its body, and a wide block cannot take a label it barely touches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tinyarms.finding import FALSE_POSITIVE, Finding

if TYPE_CHECKING:
    from tinyarms.quality.labels import Corpus, Expected


@dataclass(slots=True)
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    files: int = 0  # files the rule was checked on
    files_with_fp: int = 0

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.files += other.files
        self.files_with_fp += other.files_with_fp

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 2 * p * r / (p + r)

    @property
    def fp_per_file(self) -> float | None:
        return self.fp / self.files if self.files else None

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, ndigits=3)

        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": rounded(self.precision),
                "recall": rounded(self.recall), "f1": rounded(self.f1), "files": self.files,
                "fp_per_file": rounded(self.fp_per_file), "files_with_fp": self.files_with_fp}


@dataclass(slots=True)
class Mismatch:
    path: str
    rule: str
    line: int
    kind: Literal["fp", "fn"]
    message: str = ""
    finding: Finding | None = None  # the false positive itself (kind "fp")


def score_file(corpus: Corpus, rel: str, rule: str, findings: list[Finding]) -> tuple[Score, list[Mismatch]]:
    """One file and rule: each label matches at most one finding (``_matches``); labels are taken
    narrowest first, so a wide range cannot steal a precise match."""
    expected = sorted((e for e in corpus.labels.files[rel].expect if e.rule == rule),
                      key=lambda e: ((e.end_line or e.line) - e.line, e.line))
    tolerance = corpus.tolerance(rule)
    free = sorted(findings, key=lambda f: f.line)
    score = Score(files=1)
    misses: list[Mismatch] = []
    for label in expected:
        hit = next((f for f in free if _matches(f, label, tolerance)), None)
        if hit is None:
            score.fn += 1
            misses.append(Mismatch(rel, rule, label.line, "fn", label.note or ""))
        else:
            score.tp += 1
            free.remove(hit)
    score.fp = len(free)
    score.files_with_fp = int(bool(free))
    misses += [Mismatch(rel, rule, f.line, "fp", f.message, f) for f in free]
    return score, misses



def _matches(finding: Finding, label: Expected, tolerance: int) -> bool:
    start, end = label.line, label.end_line or label.line
    if start - tolerance <= finding.line <= end + tolerance:
        return True
    if finding.end_line <= finding.line:
        return False
    shared = min(end, finding.end_line) - max(start, finding.line) + 1
    return 2 * shared >= min(end - start, finding.end_line - finding.line) + 1


@dataclass(slots=True)
class RuleInfo:
    id: str
    level: int
    skipped: int = 0  # model questions or files the rule could not be run on
    skip_reasons: set[str] = field(default_factory=set)



def score_files(corpus: Corpus, settings: Any, chosen: list[str], rules: dict[str, RuleInfo],
            findings: list[Finding]) -> tuple[dict[str, Score], list[Mismatch]]:
    from tinyarms.source import language_of

    by_key: dict[tuple[str, str], list[Finding]] = {}
    for f in findings:
        if f.feedback == FALSE_POSITIVE:  # a known false positive is reported as one, not as a problem
            continue
        by_key.setdefault((f.path, f.rule), []).append(f)
    scores = {rule_id: Score() for rule_id in rules}
    mismatches: list[Mismatch] = []
    for rel in chosen:
        for rule in settings.ruleset.rules_for(rel, language_of(rel)):
            if rule.id not in scores:
                continue
            score, misses = score_file(corpus, rel, rule.id, by_key.get((rel, rule.id), []))
            scores[rule.id].add(score)
            mismatches += misses
    return scores, mismatches

