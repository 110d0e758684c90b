"""The router: files in, one ``LintResult`` out. Level 0 always; model levels when a model can run.

Data flows one way: jobs -> cache lookup -> Level 0 on the misses -> model levels (reported as
``skipped`` until a model backend is available) -> one result with stats.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from tinyarms import cache as result_cache
from tinyarms.finding import LintResult, Skipped
from tinyarms.levels.level0 import FileOutcome, Job, Linter, lint_many
from tinyarms.ruleset import Settings
from tinyarms.source import language_of

MODEL_HINTS = {
    2: "install Ollama (https://ollama.com) and run `ollama pull qwen2.5-coder:3b`",
    3: "install Ollama (https://ollama.com) and run `ollama pull qwen2.5-coder:7b`",
}


@dataclass(slots=True)
class LintOptions:
    use_cache: bool = True
    report_unused: bool = False
    workers: int | None = None


def run(
    settings: Settings, jobs: list[Job], options: LintOptions | None = None, store: result_cache.Cache | None = None,
) -> LintResult:
    """Lint ``jobs``. The daemon passes its long-lived ``store``; otherwise a cache is opened and
    closed here."""
    options = options or LintOptions()
    started = time.perf_counter()
    ruleset = settings.ruleset
    digest = ruleset.digest + (":unused" if options.report_unused else "")

    use_cache = options.use_cache and settings.config.cache
    owned = use_cache and store is None
    cache_error = None
    if not use_cache:
        store = None
    elif owned:
        store, cache_error = _open_cache()
    keys = [result_cache.key(digest, job.rel, job.raw) for job in jobs]
    cached = store.get_many(keys) if store is not None else {}
    misses = [(k, job) for k, job in zip(keys, jobs) if k not in cached]
    linter = Linter(ruleset, settings.config.max_file_bytes, options.report_unused)
    fresh = dict(zip((k for k, _ in misses), lint_many(linter, [job for _, job in misses], options.workers)))
    if store is not None:
        store.put_many((k, outcome.to_dict()) for k, outcome in fresh.items())
        cache_error = store.error
        if owned:
            store.close()

    result = LintResult()
    suppressed = lines = linted = 0
    for k, job in zip(keys, jobs):
        outcome = fresh.get(k) or _from_cache(cached[k], job)
        result.findings += outcome.findings
        result.skipped += outcome.skipped
        suppressed += outcome.suppressed
        lines += outcome.lines
        if any(s.rule is None for s in outcome.skipped):
            continue  # the file itself could not be read; its model checks are moot
        linted += 1
        result.skipped += _model_skips(settings, job)

    result.findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    severities = Counter(f.severity for f in result.findings)
    result.stats = {
        "files": linted,
        "files_skipped": sum(1 for s in result.skipped if s.rule is None),
        "lines": lines,
        "findings": len(result.findings),
        "by_severity": {s: severities.get(s, 0) for s in ("error", "warning", "info")},
        "suppressed": suppressed,
        "rules": len(ruleset.rules),
        "cache_hits": len(cached),
        "cache_misses": len(misses),
        "cache_error": cache_error,
        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return result


def _open_cache() -> tuple[result_cache.Cache | None, str | None]:
    from tinyarms.paths import cache_path

    try:
        return result_cache.Cache(cache_path()), None
    except OSError as exc:  # the state directory itself cannot be made
        return None, f"cache unavailable: {exc}"


def _from_cache(data: dict, job: Job) -> FileOutcome:
    outcome = FileOutcome.from_dict(data)
    for item in (*outcome.findings, *outcome.skipped):
        item.path = job.path  # cached under the file's root-relative name; shown relative to cwd now
    return outcome


def _model_skips(settings: Settings, job: Job) -> list[Skipped]:
    rules = [r for r in settings.ruleset.rules_for(job.rel, language_of(job.rel)) if r.level > 0]
    return [
        Skipped(
            job.path, "model-unavailable",
            f"level {r.level} model rules need a model backend, and none is available",
            rule=r.id, level=r.level, hint=MODEL_HINTS.get(r.level),
        )
        for r in rules
    ]
