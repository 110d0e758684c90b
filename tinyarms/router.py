"""The router: files in, one ``LintResult`` out. Level 0 always; model levels when a model can run.

Data flows one way: jobs -> cache lookup -> Level 0 on the misses -> model levels (candidates,
then narrow questions, within the budget) -> one result with stats. Model checks that cannot
run are listed in ``skipped`` with the reason and a fix; nothing is dropped silently.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyarms.finding import Finding, LintResult, Skipped
from tinyarms.levels.level0 import FileOutcome, Job, Linter, lint_many
from tinyarms.ruleset import ActiveRule, Settings
from tinyarms.source import Source, language_of
from tinyarms.stores import cache as result_cache

# Model work stops this long before the budget ends: the result still has to be put together,
# rendered and sent. (The hook sends the time it really has left as the budget.)
BUDGET_RESERVE = 0.2
MIN_MODEL_TIME = 0.1  # seconds model work gets however little budget is left
DEFAULT_MAX_PAIRS = 50  # cross-file pairs asked about when the rule's params do not say
FINDER_LIMIT = 1000  # findings per file and rule with models.verdict: finder (no model time to ration)


@dataclass(slots=True)
class LintOptions:
    use_cache: bool = True
    report_unused: bool = False
    workers: int | None = None
    budget: float | None = None  # seconds for model levels; None: no deadline (scans)
    since: float | None = None  # time.monotonic() the budget counts from; None: the start of run()
    on_pending: Callable[[PendingWork], None] | None = None  # questions the budget cut, for the background
    # Background work: before each model question, wait while this says a request is waiting.
    yield_to: Callable[[], bool] | None = None
    max_candidates: int | None = None  # model questions per file and rule; None: models.max_candidates
    # Cross-file rules (params.finder: cross-file) compare files with each other:
    #   skip  - report them in ``skipped`` (scan-only): a lint sees too few files to compare
    #   later - leave them out; the caller runs ``run_cross_file`` over every file (a scan's batches)
    #   run   - compare this run's files with each other
    #   only  - only the cross-file rules (``run_cross_file`` sets it)
    cross_file: str = "skip"
    feedback_db: Path | None = None  # where false positives are read from; None: the state dir's (eval uses its own)
    # Scored yes/no claims become findings whatever their P(yes) (confidence carries it): eval
    # ranks every candidate and compares the finder alone with finder + model at the threshold.
    every_candidate: bool = False


@dataclass(slots=True)
class PendingWork:
    """Model questions a deadline cut short, with what is needed to ask them later."""

    questions: list[Any]
    models: Any  # ModelsConfig
    level: int


def run(
    settings: Settings, jobs: list[Job], options: LintOptions | None = None, store: result_cache.Cache | None = None,
) -> LintResult:
    """Lint ``jobs``. The daemon passes its long-lived ``store``; otherwise a cache is opened and
    closed here."""
    options = options or LintOptions()
    started = time.perf_counter()
    deadline = _deadline(options)
    ruleset = settings.ruleset
    digest = ruleset.digest + (":unused" if options.report_unused else "")

    use_cache = options.use_cache and settings.config.cache
    owned = use_cache and store is None
    cache_error = None
    if not use_cache:
        store = None
    elif owned:
        store, cache_error = _open_cache()
    try:
        keys = [result_cache.key(digest, job.rel, job.raw) for job in jobs]
        cached = store.get_many(keys) if store is not None else {}
        misses = [(k, job) for k, job in zip(keys, jobs, strict=True) if k not in cached]
        linter = Linter(ruleset, settings.config.max_file_bytes, options.report_unused)
        outcomes = lint_many(linter, [job for _, job in misses], options.workers)
        fresh = dict(zip((k for k, _ in misses), outcomes, strict=True))
        if store is not None:
            store.put_many((k, outcome.to_dict()) for k, outcome in fresh.items())

        result = LintResult()
        suppressed = lines = 0
        readable: list[Job] = []
        for k, job in zip(keys, jobs, strict=True):
            outcome = fresh.get(k) or _from_cache(cached[k], job)
            result.findings += outcome.findings
            result.skipped += outcome.skipped
            suppressed += outcome.suppressed
            lines += outcome.lines
            if not any(s.rule is None for s in outcome.skipped):
                readable.append(job)  # a file that could not be read has no model checks either
        model_stats = _model_levels(settings, readable, result, store, deadline, options)
        if store is not None:
            cache_error = store.error
    finally:
        if owned and store is not None:
            store.close()

    result.findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    severities = Counter(f.severity for f in result.findings)
    result.stats = {
        "files": len(readable),
        "files_skipped": sum(1 for s in result.skipped if s.rule is None),
        "lines": lines,
        "findings": len(result.findings),
        "by_severity": {s: severities.get(s, 0) for s in ("error", "warning", "info")},
        "suppressed": suppressed,
        "rules": len(ruleset.rules),
        "cache_hits": len(cached),
        "cache_misses": len(misses),
        "cache_error": cache_error,
        "models": model_stats,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return result


def _deadline(options: LintOptions) -> float | None:
    if options.budget is None:
        return None
    since = time.monotonic() if options.since is None else options.since
    return since + max(MIN_MODEL_TIME, options.budget - BUDGET_RESERVE)


def _model_levels(settings: Settings, jobs: list[Job], result: LintResult, store: result_cache.Cache | None,
                  deadline: float | None, options: LintOptions) -> dict[str, Any] | None:
    """Run every model level the active rules need; findings and skips go into ``result``."""
    from tinyarms.levels.questions import finder_of

    work: dict[int, list[tuple[Job, ActiveRule]]] = {}
    scan_only: dict[str, ActiveRule] = {}
    for job in jobs:
        for rule in settings.ruleset.rules_for(job.rel, language_of(job.rel)):
            if rule.level == 0:
                continue
            cross = finder_of(rule) == "cross-file"
            if cross and options.cross_file == "skip":
                scan_only[rule.id] = rule
            elif (cross and options.cross_file == "later") or (not cross and options.cross_file == "only"):
                continue
            else:
                work.setdefault(rule.level, []).append((job, rule))
    # One entry per rule, not per file: a lint cannot compare a whole repository, and says where it happens.
    result.skipped += [
        Skipped(None, "scan-only", f"{rule.id} compares functions across the repository; it runs in the deep scan",
                rule=rule.id, level=rule.level, hint="tinyarms scan --deep")
        for rule in scan_only.values()
    ]
    if not work:
        return None
    import asyncio

    return asyncio.run(_run_levels(settings, work, result, store, deadline, options))


async def _run_levels(settings: Settings, work: dict[int, list[tuple[Job, ActiveRule]]], result: LintResult,
                      store: result_cache.Cache | None, deadline: float | None,
                      options: LintOptions) -> dict[str, Any]:
    from tinyarms.config import question_mode
    from tinyarms.levels import model as model_level
    from tinyarms.levels import questions as questions_level
    from tinyarms.levels import thresholds
    from tinyarms.models import select

    config = settings.config.models
    limit = options.max_candidates or config.max_candidates
    stats: dict[str, Any] = {}
    finder_stats: dict[str, Any] = {}
    for level, checks in sorted(work.items()):
        pairs = checks
        if config.verdict == "finder":  # the claim finders' candidates are findings: no model for them
            per_file = questions_level.PER_FILE_CLAIMS
            claims = [(job, rule) for job, rule in checks if questions_level.finder_of(rule) in per_file]
            if claims:
                finder_stats[str(level)] = _finder_verdicts(settings, claims, level, result, options)
            pairs = [(job, rule) for job, rule in checks if questions_level.finder_of(rule) not in per_file]
            if not pairs:
                continue
        choice = await select.choose(config, level)
        if choice.backend is None:
            result.skipped += [
                Skipped(job.path, "model-unavailable", choice.why, rule=rule.id, level=level, hint=choice.hint)
                for job, rule in pairs
            ]
            stats[str(level)] = {"backend": None, "why": choice.why}
            continue
        model = select.model_for(config, choice.name or "", level)
        questions, cross = questions_level.gather(settings, pairs, limit, result.skipped)
        cross_stats = None
        try:
            if cross:
                asked, cross_stats, embed_stats = await _cross_file_questions(
                    list(cross.values()), choice.backend, config, store, deadline)
                questions += asked
                if embed_stats is not None:
                    stats["1"] = embed_stats
            questions_level.attach_counter_examples(questions, settings.root, options.feedback_db)
            outcome = await model_level.run(
                questions, choice.backend, model, level, deadline=deadline, store=store,
                concurrency=config.concurrency, min_confidence=config.min_confidence, confirm=config.confirm,
                mode=question_mode(config, choice.name), slots=_slots(choice.backend, config.concurrency),
                defer=options.yield_to,
                thresholds={"*": 0.0} if options.every_candidate else thresholds.thresholds_for(config, model))
        except Exception as exc:  # noqa: BLE001 - a bug in the model level must not cost Level 0's findings
            from tinyarms.log import get_logger

            get_logger().exception("model_level_failed", level=level)
            result.skipped += [
                Skipped(job.path, "internal-error", f"level {level} failed: {type(exc).__name__}: {exc}",
                        rule=rule.id, level=level, hint="please report this with the file that triggers it")
                for job, rule in pairs
            ]
            continue
        finally:
            await choice.backend.close()
        result.findings += outcome.findings
        result.rejected += outcome.rejected
        result.skipped += outcome.skipped
        if outcome.pending and options.on_pending is not None:
            options.on_pending(PendingWork(outcome.pending, config, level))
        stats[str(level)] = {
            "backend": choice.name, "model": model, "why": choice.why, "questions": len(questions),
            "asked": outcome.asked, "cached": outcome.cached, "dropped": outcome.dropped,
            "pending": len(outcome.pending),
            "verdict": "probability" if outcome.scored else "answer",
            "thresholds": {r: thresholds.threshold(thresholds.thresholds_for(config, model), r)
                           for r in sorted({rule.id for _, rule in pairs})} if outcome.scored else None,
            "seconds": round(outcome.seconds, ndigits=3),
            "with_counter_examples": sum(1 for q in questions if q.counter_examples),
            "settled_by_feedback": outcome.settled,
            "confirm": {"asked": outcome.confirm_asked, "rejected": len(outcome.rejected)} if config.confirm else None,
        }
        if cross_stats is not None:
            stats[str(level)]["cross_file"] = cross_stats
    for key, found in finder_stats.items():  # a level of claim rules only, or the finder's part of one
        stats[key] = {**stats[key], "finder": found} if key in stats else found
    return stats


def _finder_verdicts(settings: Settings, pairs: list[tuple[Job, ActiveRule]], level: int, result: LintResult,
                     options: LintOptions) -> dict[str, Any]:
    """``models.verdict: finder``: each candidate of a claim finder (a clone pair, a raw value
    equal to a token or off its scale) that touches the change is a finding as it stands, no
    model asked."""
    from tinyarms.levels import model_findings
    from tinyarms.levels import questions as questions_level

    started = time.monotonic()
    questions, _ = questions_level.gather(settings, pairs, FINDER_LIMIT, result.skipped)
    questions_level.attach_counter_examples(questions, settings.root, options.feedback_db)
    found = model_findings.finder_findings(questions, level)
    result.findings += found
    return {"backend": None, "verdict": "finder", "findings": len(found),
            "why": "models.verdict: finder: the finders' candidates are the findings, no model asked",
            "seconds": round(time.monotonic() - started, ndigits=3)}


async def _cross_file_questions(
    rules: list[tuple[ActiveRule, list[Source]]], backend: Any, config: Any, store: result_cache.Cache | None,
    deadline: float | None,
) -> tuple[list[Any], dict[str, Any], dict[str, Any] | None]:
    """Questions about pairs of functions in different files, found by embeddings (Level 1) when
    the backend gives them, else by token shingles; and stats saying which, and how many."""
    from tinyarms.candidates import cross_file
    from tinyarms.levels import embed
    from tinyarms.levels.questions import Question

    everything = {src.rel: src for _, sources in rules for src in sources}
    index = cross_file.Index(everything.values())
    vectors, embed_stats = await embed.vectors(index, backend, config, store, deadline)
    questions = []
    for rule, sources in rules:
        found = cross_file.find(sources, rule.id, rule.params, int(rule.params.get("max_pairs", DEFAULT_MAX_PAIRS)),
                                index, vectors)
        questions += [Question(src, rule, candidate) for src, candidate in found]
    finder_stats = {
        "finder": "embeddings" if vectors else "shingles", "files": len(everything),
        "functions": len(index.functions), "pairs": len(questions),
    }
    return questions, finder_stats, embed_stats


def run_cross_file(settings: Settings, jobs: list[Job], options: LintOptions | None = None,
                   store: result_cache.Cache | None = None) -> LintResult:
    """Only the cross-file model rules, comparing ``jobs`` with each other: the deep scan's last
    stage, after every file was linted on its own (``cross_file="later"``). Files that cannot be
    read are left out silently here: the per-file stage reported them."""
    from dataclasses import replace

    options = replace(options or LintOptions(), cross_file="only")
    started = time.perf_counter()
    deadline = _deadline(options)
    owned = options.use_cache and settings.config.cache and store is None
    if not (options.use_cache and settings.config.cache):
        store = None
    elif owned:
        store, _ = _open_cache()
    result = LintResult()
    try:
        model_stats = _model_levels(settings, jobs, result, store, deadline, options)
    finally:
        if owned and store is not None:
            store.close()
    result.findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    result.stats = {"files": len(jobs), "findings": len(result.findings), "models": model_stats,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1)}
    return result


def _open_cache() -> tuple[result_cache.Cache | None, str | None]:
    from tinyarms.paths import cache_path

    try:
        return result_cache.Cache(cache_path()), None
    except OSError as exc:  # the state directory itself cannot be made
        return None, f"cache unavailable: {exc}"


def _from_cache(data: dict[str, Any], job: Job) -> FileOutcome:
    outcome = FileOutcome.from_dict(data)
    items: list[Finding | Skipped] = [*outcome.findings, *outcome.skipped]
    for item in items:
        item.path = job.path  # cached under the file's root-relative name; shown relative to cwd now
    return outcome


def answer_pending(work: PendingWork, store: result_cache.Cache | None,
                   yield_to: Callable[[], bool] | None = None) -> int:
    """Ask the questions a deadline cut, with no deadline; answers land in the cache. Returns
    how many were answered. ``yield_to``: as ``LintOptions.yield_to``."""
    import asyncio

    from tinyarms.config import question_mode
    from tinyarms.levels import model as model_level
    from tinyarms.levels import thresholds
    from tinyarms.models import select

    async def go() -> int:
        choice = await select.choose(work.models, work.level)
        if choice.backend is None:
            return 0
        try:
            model = select.model_for(work.models, choice.name or "", work.level)
            outcome = await model_level.run(
                work.questions, choice.backend, model,
                work.level, deadline=None, store=store, concurrency=work.models.concurrency,
                min_confidence=work.models.min_confidence, confirm=work.models.confirm,
                mode=question_mode(work.models, choice.name), slots=_slots(choice.backend, work.models.concurrency),
                defer=yield_to, thresholds=thresholds.thresholds_for(work.models, model))
        finally:
            await choice.backend.close()
        return outcome.asked

    return asyncio.run(go())


def _slots(backend: Any, limit: int) -> Any:
    """The process's slots for this backend: ``models.concurrency`` questions in flight at once,
    across every lint and the background (models/slots.py)."""
    from tinyarms.models import slots

    return slots.for_backend(slots.backend_key(backend), limit)
