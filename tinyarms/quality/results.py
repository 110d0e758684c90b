"""What an evaluation found (``tinyarms eval``): per rule and level, with and without the confirm
pass and what the model adds, as a dictionary for ``--json`` and as Markdown tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinyarms.quality.scoring import Mismatch, RuleInfo, Score

if TYPE_CHECKING:
    from tinyarms.quality.calibration import Verdicts


@dataclass(slots=True)
class Report:
    corpus: str
    split: str
    files: int
    rules: dict[str, RuleInfo]
    scores: dict[str, Score]  # per rule
    unconfirmed: dict[str, Score] | None  # per model rule, before the confirm pass dropped findings
    mismatches: list[Mismatch]
    models: dict[str, Any] | None
    seconds: float
    verdicts: dict[str, Verdicts] = field(default_factory=dict)  # per scored model rule

    def by_level(self, scores: dict[str, Score]) -> dict[int, Score]:
        out: dict[int, Score] = {}
        for rule_id, score in scores.items():
            level = self.rules[rule_id].level
            out.setdefault(level, Score()).add(score)
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "corpus": self.corpus, "split": self.split, "files": self.files, "seconds": round(self.seconds, 1),
            "rules": {
                rule_id: {"level": self.rules[rule_id].level, **score.to_dict(),
                          "skipped": self.rules[rule_id].skipped,
                          "skip_reasons": sorted(self.rules[rule_id].skip_reasons)}
                for rule_id, score in sorted(self.scores.items())
            },
            "levels": {str(level): score.to_dict() for level, score in sorted(self.by_level(self.scores).items())},
            "models": self.models,
            "mismatches": [{"path": m.path, "rule": m.rule, "line": m.line, "kind": m.kind, "message": m.message}
                           for m in self.mismatches],
        }
        if self.verdicts:
            out["verdicts"] = {rule: v.to_dict() for rule, v in sorted(self.verdicts.items())}
        if self.unconfirmed is not None:
            out["without_confirm"] = {
                "rules": {rule_id: score.to_dict() for rule_id, score in sorted(self.unconfirmed.items())},
                "levels": {str(level): score.to_dict()
                           for level, score in sorted(self.by_level(self.unconfirmed).items())},
            }
        return out



def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def markdown(report: Report) -> str:
    """The report as Markdown tables: per rule, per level, and (when the confirm pass ran) the
    model rules before it."""
    lines = [f"Corpus `{report.corpus}`, split `{report.split}`: {report.files} files, {report.seconds:.0f} s.", ""]
    models = report.models or {}
    for level, info in sorted(models.items()):
        if isinstance(info, dict) and info.get("model"):
            lines.append(f"Level {level}: {info.get('backend')} `{info['model']}`, "
                         f"{info.get('questions', 0)} questions ({info.get('cached', 0)} cached).")
        elif isinstance(info, dict) and info.get("why") and level == "1":  # candidate search, no rules of its own
            lines.append(f"Level 1: {info['why']}.")
        elif isinstance(info, dict) and info.get("why"):
            lines.append(f"Level {level}: not run: {info['why']}; its rules' figures below count no finding.")
    lines += ["", "| rule | level | TP | FP | FN | precision | recall | F1 | FP/file | skipped |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for rule_id, score in sorted(report.scores.items(), key=lambda kv: (report.rules[kv[0]].level, kv[0])):
        info = report.rules[rule_id]
        skipped = f"{info.skipped} ({', '.join(sorted(info.skip_reasons))})" if info.skipped else "0"
        lines.append(f"| `{rule_id}` | {info.level} | {score.tp} | {score.fp} | {score.fn} | {cell(score.precision)} "
                     f"| {cell(score.recall)} | {cell(score.f1)} | {cell(score.fp_per_file)} | {skipped} |")
    lines += ["", "| level | TP | FP | FN | precision | recall | F1 | FP/file |", "|---|---|---|---|---|---|---|---|"]
    for level_number, total in sorted(report.by_level(report.scores).items()):
        lines.append(f"| {level_number} | {total.tp} | {total.fp} | {total.fn} | {cell(total.precision)} "
                     f"| {cell(total.recall)} | {cell(total.f1)} | {cell(total.fp_per_file)} |")
    if report.verdicts:
        lines += ["", "What the model adds: every candidate of the finder alone, then those whose P(yes) reaches "
                  "the rule's threshold; ROC AUC and average precision say how well P(yes) ranks real candidates "
                  "above false ones (AUC 0.5: no better than chance).", "",
                  "| rule | candidates (real) | per 1,000 lines | finder alone P / R | threshold "
                  "| finder + model P / R "
                  "| ROC AUC | AP |", "|---|---|---|---|---|---|---|---|"]
        for rule_id, v in sorted(report.verdicts.items()):
            real = sum(ok for _, ok in v.ranked)
            density = f"{1000 * len(v.ranked) / v.lines:.1f}" if v.lines else "–"
            threshold, model = ("–", "no model asked") if v.finder_only else (
                f"{v.threshold:.2f}", f"{cell(v.model.precision)} / {cell(v.model.recall)}")
            lines.append(f"| `{rule_id}` | {len(v.ranked)} ({real}) | {density} | {cell(v.finder.precision)} / "
                         f"{cell(v.finder.recall)} | {threshold} | {model} | {cell(v.auc)} | "
                         f"{cell(v.average_precision)} |")
    if report.unconfirmed is not None:
        lines += ["", "Model rules without the confirm pass (every finding the first question produced):", "",
                  "| rule | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|"]
        for rule_id, score in sorted(report.unconfirmed.items()):
            lines.append(f"| `{rule_id}` | {score.tp} | {score.fp} | {score.fn} | {cell(score.precision)} "
                         f"| {cell(score.recall)} |")
    return "\n".join(lines) + "\n"

