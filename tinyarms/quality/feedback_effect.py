"""What feedback is worth (``tinyarms eval --feedback``): the held-out split linted before and
after every model false positive of the training split was reported, as a developer would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyarms.finding import FALSE_POSITIVE
from tinyarms.quality.evaluation import EvalOptions, load_corpus, prepared, run
from tinyarms.quality.labels import Corpus
from tinyarms.quality.results import Report, cell
from tinyarms.quality.scoring import Mismatch


@dataclass(slots=True)
class Taught:
    path: str
    rule: str
    line: int
    note: str | None
    kind: str | None  # what else the report settles (Candidate.kind)


@dataclass(slots=True)
class FeedbackReport:
    """The held-out split linted before and after every model false positive of the training
    split was reported with ``tinyarms feedback false-positive``."""

    before: Report
    train: Report
    after: Report
    taught: list[Taught]

    def model_rules(self) -> list[str]:
        return sorted(r for r, info in self.before.rules.items() if info.level > 0)

    def to_dict(self) -> dict[str, Any]:
        def side(report: Report) -> dict[str, Any]:
            levels = report.models or {}
            return {
                "rules": {r: report.scores[r].to_dict() for r in self.model_rules()},
                "levels": {str(level): score.to_dict() for level, score in sorted(report.by_level(
                    {r: report.scores[r] for r in self.model_rules()}).items())},
                "questions": {level: {k: info.get(k) for k in ("model", "questions", "with_counter_examples",
                                                               "settled_by_feedback")}
                              for level, info in sorted(levels.items())
                              if isinstance(info, dict) and info.get("model")},
                "seconds": round(report.seconds, 1),
            }

        return {"corpus": self.before.corpus, "held_out": self.before.files, "training": self.train.files,
                "taught": [{"path": t.path, "rule": t.rule, "line": t.line, "note": t.note, "kind": t.kind}
                           for t in self.taught],
                "before": side(self.before), "after": side(self.after)}


def run_feedback(corpus_root: Path, options: EvalOptions) -> FeedbackReport:
    """Lint the test split; report every model false positive of the train split as a developer
    would (the note from the file's ``fine`` label when there is one); lint the test split again.
    The feedback goes to a file of its own, never the user's: the corpus is not their repository."""
    import dataclasses
    import tempfile

    from tinyarms.levels.questions import claim_kind
    from tinyarms.source import Source, make_source
    from tinyarms.stores.feedback import Store

    with tempfile.TemporaryDirectory(prefix="tinyarms-eval-") as tmp:
        base = dataclasses.replace(options, feedback_db=Path(tmp) / "feedback.db")
        before = run(corpus_root, dataclasses.replace(base, split="test"))
        train = run(corpus_root, dataclasses.replace(base, split="train"))
        corpus, settings = load_corpus(prepared(corpus_root, options.corpus_cache), options)
        rules = {r.id: r for r in settings.ruleset.rules}
        taught = []
        with Store(base.feedback_db) as store:
            for miss in train.mismatches:
                if miss.kind != "fp" or miss.finding is None or train.rules[miss.rule].level == 0:
                    continue
                note = _fine_note(corpus, miss)
                src = make_source(miss.path, miss.path, (corpus.root / miss.path).read_bytes())
                assert isinstance(src, Source)  # it was linted a moment ago
                kind = (claim_kind(src, rules[miss.rule], miss.line, settings.ruleset.root, miss.finding.column)
                        if options.settle else None)
                store.record_finding(corpus.root, miss.finding, miss.path, src.lines, FALSE_POSITIVE, note=note,
                                     kind=kind)
                taught.append(Taught(miss.path, miss.rule, miss.line, note, kind))
        after = run(corpus_root, dataclasses.replace(base, split="test"))
    return FeedbackReport(before, train, after, taught)


def _fine_note(corpus: Corpus, miss: Mismatch) -> str | None:
    tolerance = corpus.tolerance(miss.rule)
    for fine in corpus.labels.files[miss.path].fine:
        if fine.rule == miss.rule and fine.line - tolerance <= miss.line <= (fine.end_line or fine.line) + tolerance:
            return fine.note
    return None


def feedback_markdown(report: FeedbackReport) -> str:
    rows = [("| rule | FP before | FP after | FP/file before | FP/file after | precision before | precision after "
             "| recall before | recall after |"), "|---|---|---|---|---|---|---|---|---|"]
    for rule in report.model_rules():
        b, a = report.before.scores[rule], report.after.scores[rule]
        rows.append(f"| `{rule}` | {b.fp} | {a.fp} | {cell(b.fp_per_file)} | {cell(a.fp_per_file)} "
                    f"| {cell(b.precision)} | {cell(a.precision)} | {cell(b.recall)} | {cell(a.recall)} |")
    def after(key: str) -> int:
        return sum(int(info.get(key) or 0) for info in (report.after.models or {}).values() if isinstance(info, dict))

    head = (f"Feedback on corpus `{report.before.corpus}`: {len(report.taught)} false positives of the training split "
            f"({report.train.files} files) reported; held-out split ({report.before.files} files) linted before and "
            f"after; after, {after('with_counter_examples')} questions carried counter-examples and "
            f"{after('settled_by_feedback')} were settled by a reported kind without the model.")
    return "\n".join([head, "", *rows]) + "\n"
