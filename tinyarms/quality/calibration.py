"""What the model adds to a scored rule (``tinyarms eval``): its candidates' P(yes) next to
whether each is real, the finder alone against finder + model at the threshold, how well P(yes)
ranks real candidates above false ones, and the F1-best threshold ``eval --calibrate`` keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyarms.quality.scoring import Score

_TIE = 0.5  # a real and a false finding scored alike: half a win (the Mann-Whitney U statistic)
_F1_EPSILON = 1e-12  # a better F1 is better by more than float error


@dataclass(slots=True)
class Verdicts:
    """A scored rule: the finder alone next to finder + model at ``threshold``, and how well
    P(yes) ranks the real candidates above the false ones."""

    threshold: float
    finder: Score
    model: Score
    ranked: list[tuple[float, bool]]  # (P(yes), a real violation) per candidate
    lines: int = 0  # of the files evaluated: candidates per 1,000 lines say how much the finder proposes
    finder_only: bool = False  # no model was asked (eval --backend none): no P(yes), no threshold

    @property
    def auc(self) -> float | None:
        """ROC AUC: the chance a real candidate gets a higher P(yes) than a false one (0.5: chance)."""
        real = [p for p, ok in self.ranked if ok]
        false = [p for p, ok in self.ranked if not ok]
        if not real or not false or self.finder_only:
            return None
        wins = sum(1.0 if r > f else _TIE if r == f else 0.0 for r in real for f in false)
        return wins / (len(real) * len(false))

    @property
    def average_precision(self) -> float | None:
        ranked = sorted(self.ranked, key=lambda pair: -pair[0])
        real = sum(ok for _, ok in ranked)
        if not real or self.finder_only:
            return None
        hits, total = 0, 0.0
        for i, (_, ok) in enumerate(ranked, 1):
            if ok:
                hits += 1
                total += hits / i
        return total / real

    def best_threshold(self) -> float:
        """The P(yes) that maximises F1 on these candidates (ties: the higher, fewer findings)."""
        best, best_f1 = self.threshold, -1.0
        real_total = self.finder.tp + self.finder.fn
        for t in sorted({p for p, _ in self.ranked}, reverse=True):
            tp = sum(ok for p, ok in self.ranked if p >= t)
            fp = sum(not ok for p, ok in self.ranked if p >= t)
            f1 = 2 * tp / (2 * tp + fp + (real_total - tp)) if tp else 0.0
            if f1 > best_f1 + _F1_EPSILON:
                best, best_f1 = t, f1
        return round(best, ndigits=4)

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, ndigits=3)

        return {"threshold": None if self.finder_only else self.threshold, "finder_alone": self.finder.to_dict(),
                "with_model": None if self.finder_only else self.model.to_dict(),
                "roc_auc": rounded(self.auc), "average_precision": rounded(self.average_precision),
                "candidates": len(self.ranked), "real": sum(ok for _, ok in self.ranked),
                "candidates_per_1000_lines": round(1000 * len(self.ranked) / self.lines, 2) if self.lines else None}

