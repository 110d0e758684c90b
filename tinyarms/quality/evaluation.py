"""How often the rules are right: precision and recall on a labelled corpus (``tinyarms eval``).

The corpus (``tinyarms.quality.labels``) is linted through the real path — settings, the router,
Level 0, the model levels with the configured backend, the result cache — and its findings are
matched to the labels (``tinyarms.quality.scoring``). A scored model rule's candidates also say
what the model adds (``tinyarms.quality.calibration``); ``calibrate`` keeps the F1-best threshold
for the model, and ``tinyarms.quality.results`` reports it all.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinyarms.errors import ConfigError
from tinyarms.finding import FALSE_POSITIVE, Finding
from tinyarms.quality.calibration import Verdicts
from tinyarms.quality.labels import LABELS, Corpus, load
from tinyarms.quality.results import Report
from tinyarms.quality.scoring import RuleInfo, score_files

if TYPE_CHECKING:
    from tinyarms.levels.level0 import Job
    from tinyarms.ruleset import Settings


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

    from tinyarms.levels.thresholds import CALIBRATED, calibrated
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
    corpus, settings = load_corpus(root, options)
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
        alone = _finder_alone(settings, collected.jobs, limit)
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
    confirmed = score_files(corpus, settings, chosen, rules, result.findings)
    unconfirmed = None
    if result.rejected:
        model_rules = {r for r, info in rules.items() if info.level > 0}
        before = score_files(corpus, settings, chosen, rules, result.findings + result.rejected)
        unconfirmed = {r: s for r, s in before[0].items() if r in model_rules}
    elif settings.config.models.confirm and any(info.level > 0 and r not in thresholds for r, info in rules.items()):
        # nothing was dropped (scored verdicts are never confirmed: they are probabilities already)
        unconfirmed = {r: s for r, s in confirmed[0].items() if rules[r].level > 0 and r not in thresholds}
    lines = sum(job.raw.count(b"\n") + (not job.raw.endswith(b"\n") and bool(job.raw)) for job in collected.jobs)
    verdicts = {rule: _verdicts(corpus, settings, chosen, rules, rule, found, thresholds[rule], lines, rule in alone)
                for rule, found in candidates.items()}
    return Report(str(corpus_root), options.split, len(chosen), rules, confirmed[0], unconfirmed, confirmed[1],
                  result.stats.get("models"), time.monotonic() - started, verdicts)



def _scored_thresholds(stats: dict[str, Any] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for level in (stats or {}).values():
        if isinstance(level, dict) and level.get("verdict") == "probability":
            out.update(level.get("thresholds") or {})
    return out


def _finder_alone(settings: Settings, jobs: list[Job], limit: int) -> dict[str, list[Finding]]:
    """Every candidate of the claim finders (clone pairs, raw values equal to a token) as a
    finding, at most ``limit`` per file and rule as a lint asks: the baseline a model must beat,
    gathered and reported as a lint with ``models.verdict: finder`` does."""
    from tinyarms.levels.model_findings import finder_findings
    from tinyarms.levels.questions import PER_FILE_CLAIMS, finder_of, gather
    from tinyarms.source import language_of

    claims = {r.id for r in settings.ruleset.rules if r.level > 0 and finder_of(r) in PER_FILE_CLAIMS}
    pairs = [(job, rule) for job in jobs for rule in settings.ruleset.rules_for(job.rel, language_of(job.rel))
             if rule.id in claims]
    questions, _ = gather(settings, pairs, limit, [])  # past the limit: eval counts no skip for the finder alone
    return {rule.id: finder_findings([q for q in questions if q.rule.id == rule.id], rule.level)
            for rule in settings.ruleset.rules if rule.id in claims}


def _verdicts(corpus: Corpus, settings: Any, chosen: list[str], rules: dict[str, RuleInfo], rule: str,
              found: list[Finding], threshold: float, lines: int, finder_only: bool = False) -> Verdicts:
    finder, misses = score_files(corpus, settings, chosen, {rule: rules[rule]}, found)
    false = {id(m.finding) for m in misses if m.kind == "fp" and m.finding is not None}
    ranked = [(f.confidence, id(f) not in false) for f in found if f.feedback != FALSE_POSITIVE]
    model, _ = score_files(corpus, settings, chosen, {rule: rules[rule]},
                           [f for f in found if f.confidence >= threshold])
    return Verdicts(threshold, finder[rule], model[rule], ranked, lines, finder_only)


def load_corpus(root: Path, options: EvalOptions) -> tuple[Corpus, Settings]:
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
