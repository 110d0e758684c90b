"""How often the rules are right: precision and recall on a labelled corpus (``tinyarms eval``).

A corpus is a folder of source files plus ``labels.yaml``, which lists every file and the
findings it should get (rule and line; model rules may give a line range and have a line
tolerance). A file with no expected findings is *clean*: whatever is found there is a false
positive. The corpus is linted through the real path — settings, the router, Level 0, the model
levels with the configured backend, the result cache — and findings are matched to labels one to
one, per file and rule.

Files fall deterministically into a ``train`` and a held-out ``test`` split by a hash of the
file's ``group`` (by default the file itself; the files of a cross-file pair share a group, so they
stay together): prompt tuning and feedback may look at ``train``; ``test`` measures whether that
generalises.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinyarms.errors import ConfigError
from tinyarms.finding import FALSE_POSITIVE, Finding
from tinyarms.yamlio import Document, load_file, validation_problems

if TYPE_CHECKING:
    from tinyarms.levels.level0 import Job
    from tinyarms.ruleset import Settings

LABELS = "labels.yaml"
TEST_SHARE = 30  # percent of groups held out as the test split
SPLITS = ("all", "train", "test")
_TIE = 0.5  # a real and a false finding scored alike: half a win (the Mann-Whitney U statistic)
_F1_EPSILON = 1e-12  # a better F1 is better by more than float error


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    line: int = Field(ge=1)
    end_line: int | None = Field(None, ge=1, description="a range: any line in it matches (whole-function rules)")
    note: str | None = None


class FileLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expect: list[Expected] = []
    # Hard negatives written down: places that look like a violation of a rule and are not. Any
    # finding there is already a false positive (it matches no `expect`); the note says why, and
    # is what `eval --feedback` tells the store, as a developer's `feedback --note` would.
    fine: list[Expected] = []
    group: str | None = Field(None, description="files that belong together share a split (default: each file alone)")
    source: str | None = Field(None, description="the PROVENANCE.md entry this file comes from")
    note: str | None = None
    # Where the text comes from (tinyarms.quality.corpus): a registry archive, the file in it and its hash,
    # and this project's own edit as a patch; or a file written here (synthetic).
    pypi: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+==[A-Za-z0-9.!+_-]+$", description="NAME==VERSION")
    npm: str | None = Field(None, pattern=r"^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+@[A-Za-z0-9.+_-]+$",
                            description="NAME@VERSION")
    dist: Literal["sdist", "wheel"] | None = Field(None, description="pypi: which archive (default sdist)")
    path: str | None = Field(None, description="the file inside the archive, below its top folder")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="of the file as the archive holds it")
    patch: str | None = Field(None, description="a unified diff in the corpus folder, applied after the fetch")
    synthetic: bool = Field(False, description="written for this corpus, not taken from anywhere")


class LabelsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1, 2]
    tolerance: dict[str, int] = Field({}, description="lines a finding may be off by, per rule id")
    files: dict[str, FileLabels]


@dataclass(slots=True)
class Corpus:
    root: Path
    labels: LabelsFile

    def split_of(self, rel: str) -> str:
        key = self.labels.files[rel].group or rel
        bucket = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
        return "test" if bucket < TEST_SHARE else "train"

    def files(self, split: str = "all") -> list[str]:
        return sorted(rel for rel in self.labels.files if split == "all" or self.split_of(rel) == split)

    def tolerance(self, rule: str) -> int:
        return self.labels.tolerance.get(rule, 0)


def builtin_corpus() -> Path:
    from tinyarms.resources import data_dir

    return data_dir("eval") / "corpus"


def load(root: Path, known_rules: set[str] | None = None) -> Corpus:
    """Read and check ``root/labels.yaml``: every labelled file exists, every lintable file is
    labelled, every rule id is known. Problems are ``file:line: field: message`` errors."""
    path = root / LABELS
    if not path.is_file():
        raise ConfigError([f"{root}: not a corpus: no {LABELS} (a corpus is source files plus {LABELS}; "
                           "see eval/corpus/ in the tinyarms repository)"])
    doc = load_file(path, str(path))
    try:
        labels = LabelsFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(doc, exc)) from None
    problems = _check(root, labels, doc, known_rules)
    if problems:
        raise ConfigError(problems)
    return Corpus(root, labels)


def _check(root: Path, labels: LabelsFile, doc: Document, known_rules: set[str] | None) -> list[str]:
    from tinyarms.source import language_of

    problems = []
    for rel, item in labels.files.items():
        where = f"{doc.path}:{doc.line_of(('files', rel))}"
        fetched = item.pypi or item.npm
        if fetched and not (item.path and item.sha256):
            problems.append(f"{where}: files.{rel}: a file from {'pypi' if item.pypi else 'npm'} needs its path "
                            "in the archive and its sha256")
        if item.pypi and item.npm:
            problems.append(f"{where}: files.{rel}: pypi and npm both given; a file comes from one archive")
        if not (root / rel).is_file():
            problems.append(f"{where}: files.{rel}: no such file in the corpus" + (
                " (it is fetched from its registry: run `tinyarms eval` on the corpus, not on this folder)"
                if fetched else ""))
        for key, entries in (("expect", item.expect), ("fine", item.fine)):
            problems += _check_entries(doc, rel, key, entries, known_rules)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and language_of(rel) and rel not in labels.files:
            problems.append(f"{doc.path}: {rel} is in the corpus but not labelled: add it under files "
                            "(with expect: [] if it should get no finding)")
    return problems


def _check_entries(doc: Document, rel: str, key: str, entries: list[Expected],
                   known_rules: set[str] | None) -> list[str]:
    problems = []
    for i, expected in enumerate(entries):
        where = f"{doc.path}:{doc.line_of(('files', rel, key, i))}: files.{rel}.{key}[{i}]"
        if known_rules is not None and expected.rule not in known_rules:
            problems.append(f"{where}.rule: unknown rule {expected.rule!r}")
        if expected.end_line is not None and expected.end_line < expected.line:
            problems.append(f"{where}.end_line: before line {expected.line}")
    return problems


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
    """One file and rule: each label matches at most one finding within its range plus the rule's
    tolerance; labels are taken narrowest first, so a wide range cannot steal a precise match."""
    expected = sorted((e for e in corpus.labels.files[rel].expect if e.rule == rule),
                      key=lambda e: ((e.end_line or e.line) - e.line, e.line))
    tolerance = corpus.tolerance(rule)
    free = sorted(findings, key=lambda f: f.line)
    score = Score(files=1)
    misses: list[Mismatch] = []
    for label in expected:
        low, high = label.line - tolerance, (label.end_line or label.line) + tolerance
        hit = next((f for f in free if low <= f.line <= high), None)
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


@dataclass(slots=True)
class RuleInfo:
    id: str
    level: int
    skipped: int = 0  # model questions or files the rule could not be run on
    skip_reasons: set[str] = field(default_factory=set)


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


@dataclass(slots=True)
class EvalOptions:
    split: str = "all"
    skills: list[str] | None = None
    levels: list[int] | None = None
    select: list[str] | None = None
    model: str | None = None
    backend: str | None = None
    # The eval asks the confirm question by default: its findings give the figures both with the
    # pass (confirmed) and without it (confirmed + turned down) in one run.
    confirm: bool | None = True
    question: str | None = None  # auto | report | yes-no; None: the configured models.question
    use_cache: bool = True
    max_candidates: int | None = None
    feedback_db: Path | None = None  # false positives the prompts learn from; None: the state dir's
    settle: bool = True  # run_feedback: teach kinds too (False: counter-examples alone)
    corpus_cache: Path | None = None  # where fetched corpus files are kept (None: the state directory's)


def calibrate(report: Report) -> dict[str, dict[str, float]]:
    """Fit each scored rule's threshold on ``report``'s candidates (the F1-best P(yes)) and keep
    it in the state directory for that model, where ``thresholds_for`` reads it. Returns the
    thresholds fitted now, {rule: {model: threshold}}."""
    import json

    from tinyarms.levels.model import CALIBRATED, calibrated
    from tinyarms.paths import state_dir

    models = {rule: info.get("model") for info in (report.models or {}).values() if isinstance(info, dict)
              for rule in (info.get("thresholds") or {})}
    fitted = {rule: {str(models[rule]): v.best_threshold()} for rule, v in report.verdicts.items() if models.get(rule)}
    kept = calibrated()
    for rule, by_model in fitted.items():
        kept.setdefault(rule, {}).update(by_model)
    (state_dir() / CALIBRATED).write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    return fitted


def prepared(corpus_root: Path, cache: Path | None = None) -> Path:
    """The folder to evaluate: the corpus itself, or its files fetched from their registries
    (``tinyarms.quality.corpus``) with a progress bar. A fetch that fails is a ``ConfigError`` (exit 2)."""
    from tinyarms.quality import corpus

    progress = corpus.print_progress if sys.stderr.isatty() else None
    try:
        return corpus.prepare(corpus_root.resolve(), cache, progress)
    except corpus.CorpusError as exc:
        raise ConfigError([f"{corpus_root / LABELS}: {p}" for p in exc.problems]) from None


def run(corpus_root: Path, options: EvalOptions) -> Report:
    import time

    from tinyarms import files, router

    started = time.monotonic()
    root = prepared(corpus_root, options.corpus_cache)
    corpus, settings = _load(root, options)
    chosen = corpus.files(options.split)
    namer = files.Namer(root, root)
    collected = files.read_paths([root / rel for rel in chosen], namer, settings.config.max_file_bytes)
    lint_options = router.LintOptions(use_cache=options.use_cache, budget=None, cross_file="run",
                                      max_candidates=options.max_candidates, feedback_db=options.feedback_db,
                                      every_candidate=True)
    result = router.run(settings, collected.jobs, lint_options)
    # Scored claims came back whatever their P(yes): the finder alone is all of them, the model's
    # findings those at its threshold, and P(yes) ranks them (what the model adds, in numbers).
    thresholds = _scored_thresholds(result.stats.get("models"))
    alone: dict[str, list[Finding]] = {}
    if options.backend == "none":
        # No model: the claim finders' candidates stand as findings, what the finder alone reports.
        limit = options.max_candidates or settings.config.models.max_candidates
        alone = _finder_alone(root, settings, collected.jobs, limit)
        result.findings += [f for found in alone.values() for f in found]
        result.skipped = [s for s in result.skipped if s.rule not in alone]
        thresholds |= {rule: 1.0 for rule in alone}
    candidates = {rule: [f for f in result.findings if f.rule == rule] for rule in thresholds}
    result.findings = [f for f in result.findings
                       if f.rule not in thresholds or f.confidence >= thresholds[f.rule]]

    rules = {r.id: RuleInfo(r.id, r.level) for r in settings.ruleset.rules}
    for s in collected.skipped + result.skipped:
        if s.rule in rules:
            rules[s.rule].skipped += 1
            rules[s.rule].skip_reasons.add(s.reason)
    confirmed = _scores(corpus, settings, chosen, rules, result.findings)
    unconfirmed = None
    if result.rejected:
        model_rules = {r for r, info in rules.items() if info.level > 0}
        before = _scores(corpus, settings, chosen, rules, result.findings + result.rejected)
        unconfirmed = {r: s for r, s in before[0].items() if r in model_rules}
    elif settings.config.models.confirm and any(info.level > 0 and r not in thresholds for r, info in rules.items()):
        # nothing was dropped (scored verdicts are never confirmed: they are probabilities already)
        unconfirmed = {r: s for r, s in confirmed[0].items() if rules[r].level > 0 and r not in thresholds}
    lines = sum(job.raw.count(b"\n") + (not job.raw.endswith(b"\n") and bool(job.raw)) for job in collected.jobs)
    verdicts = {rule: _verdicts(corpus, settings, chosen, rules, rule, found, thresholds[rule], lines, rule in alone)
                for rule, found in candidates.items()}
    return Report(str(corpus_root), options.split, len(chosen), rules, confirmed[0], unconfirmed, confirmed[1],
                  result.stats.get("models"), time.monotonic() - started, verdicts)


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


def _scored_thresholds(stats: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for level in (stats or {}).values():
        if isinstance(level, dict) and level.get("verdict") == "probability":
            out.update(level.get("thresholds") or {})
    return out


def _finder_alone(root: Path, settings: Settings, jobs: list[Job], limit: int) -> dict[str, list[Finding]]:
    """Every candidate of the claim finders (clone pairs, raw values equal to a token) as a
    finding, at most ``limit`` per file and rule as a lint asks: the baseline a model must beat."""
    from tinyarms.levels.model import CLAIM_FINDERS, candidates, dedupe, finder_of
    from tinyarms.source import Source, make_source

    per_file = CLAIM_FINDERS - {"cross-file"}  # cross-file pairs need the whole repository: the deep scan's
    claims = {r.id for r in settings.ruleset.rules if r.level > 0 and finder_of(r) in per_file}
    out: dict[str, list[Finding]] = {rule: [] for rule in claims}
    for job in jobs:
        src = make_source(job.path, job.rel, job.raw, settings.config.max_file_bytes)
        if not isinstance(src, Source):
            continue
        for rule in settings.ruleset.rules_for(job.rel, src.language):
            if rule.id in claims:  # one finding per place, as the model level reports them
                out[rule.id] += dedupe([Finding(job.path, c.report[0], (c.columns or (1, 1))[0], c.report[1],
                                                (c.columns or (1, 1))[1], rule.id, rule.skill, rule.severity,
                                                c.where or rule.message, c.suggestion, rule.level, "finder")
                                        for c in candidates(src, rule, limit, str(root))])
    return out


def _verdicts(corpus: Corpus, settings: Any, chosen: list[str], rules: dict[str, RuleInfo], rule: str,
              found: list[Finding], threshold: float, lines: int, finder_only: bool = False) -> Verdicts:
    finder, misses = _scores(corpus, settings, chosen, {rule: rules[rule]}, found)
    false = {id(m.finding) for m in misses if m.kind == "fp" and m.finding is not None}
    ranked = [(f.confidence, id(f) not in false) for f in found if f.feedback != FALSE_POSITIVE]
    model, _ = _scores(corpus, settings, chosen, {rule: rules[rule]}, [f for f in found if f.confidence >= threshold])
    return Verdicts(threshold, finder[rule], model[rule], ranked, lines, finder_only)


def _load(root: Path, options: EvalOptions) -> tuple[Corpus, Settings]:
    from tinyarms.ruleset import load_settings
    from tinyarms.skills import BUILTIN_SKILLS, load_skills

    skills = load_skills(root)
    corpus = load(root, {r.id for skill, _ in skills.values() for r in skill.rules})
    names = options.skills or list(BUILTIN_SKILLS)
    settings = load_settings(root, _cli_layer(options), names, options.select)
    if options.levels is not None:
        settings.ruleset.rules = [r for r in settings.ruleset.rules if r.level in options.levels]
    if not settings.ruleset.rules:
        raise ConfigError(["eval: no rule left to evaluate (check --level, --select and --skill)"])
    return corpus, settings


def _cli_layer(options: EvalOptions) -> dict[str, Any]:
    models: dict[str, Any] = {}
    if options.model:
        every = {"ollama": options.model, "embedded": options.model, "openai": options.model}
        models["fast"] = every
        models["deep"] = every
    if options.backend:
        models["backend"] = options.backend
    if options.confirm is not None:
        models["confirm"] = options.confirm
    if options.question is not None:
        models["question"] = options.question
    return {"models": models} if models else {}


def _scores(corpus: Corpus, settings: Any, chosen: list[str], rules: dict[str, RuleInfo],
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


def _cell(value: float | None) -> str:
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
        lines.append(f"| `{rule_id}` | {info.level} | {score.tp} | {score.fp} | {score.fn} | {_cell(score.precision)} "
                     f"| {_cell(score.recall)} | {_cell(score.f1)} | {_cell(score.fp_per_file)} | {skipped} |")
    lines += ["", "| level | TP | FP | FN | precision | recall | F1 | FP/file |", "|---|---|---|---|---|---|---|---|"]
    for level_number, total in sorted(report.by_level(report.scores).items()):
        lines.append(f"| {level_number} | {total.tp} | {total.fp} | {total.fn} | {_cell(total.precision)} "
                     f"| {_cell(total.recall)} | {_cell(total.f1)} | {_cell(total.fp_per_file)} |")
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
                f"{v.threshold:.2f}", f"{_cell(v.model.precision)} / {_cell(v.model.recall)}")
            lines.append(f"| `{rule_id}` | {len(v.ranked)} ({real}) | {density} | {_cell(v.finder.precision)} / "
                         f"{_cell(v.finder.recall)} | {threshold} | {model} | {_cell(v.auc)} | "
                         f"{_cell(v.average_precision)} |")
    if report.unconfirmed is not None:
        lines += ["", "Model rules without the confirm pass (every finding the first question produced):", "",
                  "| rule | TP | FP | FN | precision | recall |", "|---|---|---|---|---|---|"]
        for rule_id, score in sorted(report.unconfirmed.items()):
            lines.append(f"| `{rule_id}` | {score.tp} | {score.fp} | {score.fn} | {_cell(score.precision)} "
                         f"| {_cell(score.recall)} |")
    return "\n".join(lines) + "\n"


# -- what feedback is worth ------------------------------------------------------------------------


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

    from tinyarms.levels.model import claim_kind
    from tinyarms.source import Source, make_source
    from tinyarms.stores.feedback import Store

    with tempfile.TemporaryDirectory(prefix="tinyarms-eval-") as tmp:
        base = dataclasses.replace(options, feedback_db=Path(tmp) / "feedback.db")
        before = run(corpus_root, dataclasses.replace(base, split="test"))
        train = run(corpus_root, dataclasses.replace(base, split="train"))
        corpus, settings = _load(prepared(corpus_root, options.corpus_cache), options)
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
        rows.append(f"| `{rule}` | {b.fp} | {a.fp} | {_cell(b.fp_per_file)} | {_cell(a.fp_per_file)} "
                    f"| {_cell(b.precision)} | {_cell(a.precision)} | {_cell(b.recall)} | {_cell(a.recall)} |")
    def after(key: str) -> int:
        return sum(int(info.get(key) or 0) for info in (report.after.models or {}).values() if isinstance(info, dict))

    head = (f"Feedback on corpus `{report.before.corpus}`: {len(report.taught)} false positives of the training split "
            f"({report.train.files} files) reported; held-out split ({report.before.files} files) linted before and "
            f"after; after, {after('with_counter_examples')} questions carried counter-examples and "
            f"{after('settled_by_feedback')} were settled by a reported kind without the model.")
    return "\n".join([head, "", *rows]) + "\n"
