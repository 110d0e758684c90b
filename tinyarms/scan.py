"""The deep scan: a whole repository, file by file, with no deadline; incremental and resumable.

    list the files (git ls-files, as ``lint`` does) -> per-file rules, one small batch at a time,
    each batch recorded in the journal -> cross-file rules over every file -> reports

The same engine runs in process (``tinyarms scan --no-daemon``) and in the daemon (the ``scan``
op, later the weekly schedule). *Incremental*: every per-file result and every model answer is
in the result cache, so an unchanged file costs a cache lookup. *Resumable*: the journal
(``tinyarms.stores.journal``) records each batch atomically; starting a scan with the same options
again continues an unfinished one (``restart=True`` starts over), so no file is judged twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from tinyarms import files, router
from tinyarms.finding import Finding, LintResult, Skipped
from tinyarms.ruleset import Settings, load_settings
from tinyarms.stores.cache import Cache
from tinyarms.stores.journal import Journal, Part, ScanBusy, ScanRecord, repo_key

DEEP_SKILL = "code-linting-deep"
MAX_QUESTIONS = 64  # model questions per file and rule; a commit gets models.max_candidates (8)
MODEL_BATCH = 1  # files per journal entry when model rules run: minutes of work each with a 7B model
PLAIN_BATCH = 32  # ... when only deterministic rules run

__all__ = ["DEEP_SKILL", "Progress", "ScanBusy", "ScanOptions", "ScanOutcome", "ScanStopped", "run"]


class ScanStopped(Exception):
    """The caller asked the scan to stop (daemon shutdown); it resumes where it stopped."""


class Progress(NamedTuple):
    stage: str  # files | cross-file | report | done
    done: int  # files done, this run and earlier runs of the same scan
    total: int
    resumed: int  # files that earlier runs had done
    started: float  # this run's start (time.time())


@dataclass(slots=True)
class ScanOptions:
    paths: list[str] = field(default_factory=list)  # absolute, or relative to cwd; empty: the repository
    skills: list[str] | None = None  # None: the deep skill
    select: list[str] | None = None
    ignore: list[str] | None = None
    restart: bool = False
    max_questions: int = MAX_QUESTIONS
    no_cache: bool = False
    env: dict[str, str] | None = None  # the client's TINYARMS_* variables; None: this process's

    def identity(self, cwd: Path, root: Path, settings: Settings) -> tuple[str, dict[str, Any]]:
        """(key, description): a scan started again with the same key resumes. The rule set's
        digest is part of it: results made under another config are not mixed into one report."""
        paths = sorted({_rel(_absolute(Path(p), cwd), root) for p in self.paths}) or ["."]
        described = {
            "paths": paths, "skills": self.skills or [DEEP_SKILL], "select": self.select, "ignore": self.ignore,
            "max_questions": self.max_questions, "no_cache": self.no_cache,
        }
        key = hashlib.sha256(json.dumps([described, settings.ruleset.digest]).encode()).hexdigest()[:24]
        return key, described


@dataclass(slots=True)
class ScanOutcome:
    result: LintResult
    report: dict[str, Any]  # paths of the written reports and the summary (report.latest's shape)
    exit_code: int
    scan: dict[str, Any]  # id, runs, files linted this run, resumed files


def find_root(cwd: Path, paths: list[str]) -> Path:
    from tinyarms.config import find_root as nearest

    first = Path(paths[0]) if paths else cwd
    first = first if first.is_absolute() else cwd / first
    start = first if first.is_dir() else first.parent
    root = nearest(start if start.exists() else cwd) or (start if start.exists() else cwd).resolve()
    here = nearest(cwd)
    if here is not None and not root.is_relative_to(here):  # as lint: ../other is not this repository's
        raise files.outside_repository(paths[0], here)
    return root


def load(root: Path, options: ScanOptions) -> Settings:
    return load_settings(root, None, options.skills or [DEEP_SKILL], options.select, options.ignore, options.env)


def identify(cwd: Path, options: ScanOptions) -> tuple[Path, str]:
    """(repository root, scan key): what makes two scan requests the same scan. Raises
    ``ConfigError`` for unknown skills or rules and bad config, before any work starts."""
    root = find_root(cwd, options.paths)
    return root, options.identity(cwd, root, load(root, options))[0]


def run(
    cwd: Path, options: ScanOptions, *, home: Path | None = None, store: Cache | None = None,
    progress: Callable[[Progress], None] | None = None, yield_to: Callable[[], bool] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ScanOutcome:
    """Scan the repository of ``cwd`` (or of the first path). ``store``: the daemon's long-lived
    cache (else one is opened here); ``yield_to``: model work waits while it says a request is
    waiting (the daemon's hooks go first); ``should_stop``: checked between batches (raises
    ``ScanStopped``; the journal keeps what was done). Raises ``ScanBusy`` when another process
    scans this repository, ``ConfigError`` for bad options or config."""
    from tinyarms import lintjob
    from tinyarms.paths import cache_path, state_dir

    home = home or state_dir()
    root = find_root(cwd, options.paths)
    settings = load(root, options)
    key, described = options.identity(cwd, root, settings)
    namer = files.Namer(root, root)  # scan reports name files relative to the repository root
    repo = repo_key(root)
    owned = store is None and not options.no_cache and settings.config.cache
    if owned:
        store = Cache(cache_path())
    try:
        with Journal(home) as journal, journal.lock(root):
            if options.restart:
                journal.discard_unfinished(repo, key)
            record = journal.unfinished(repo, key)
            if record is None:
                listed = files.list_paths([str(_absolute(Path(p), cwd)) for p in options.paths] or [str(root)],
                                          settings.ruleset, namer)
                names = [namer.rel(p) for p in listed.paths]
                record = journal.start(repo, key, {**described, "root": str(root)}, names,
                                       {"out_of_scope": listed.out_of_scope, "excluded": listed.excluded})
            else:
                record = journal.resumed(record)
            started = time.time()
            parts = journal.parts(record)
            done = {name for part in parts if part.kind == "files" for name in part.files}
            resumed = len(done)
            total = len(record.files)
            lint_options = router.LintOptions(
                use_cache=not options.no_cache, budget=None, yield_to=yield_to,
                max_candidates=options.max_questions, cross_file="later",
            )
            has_models = any(rule.level > 0 for rule in settings.ruleset.rules)
            batch_size = MODEL_BATCH if has_models else PLAIN_BATCH
            todo = [name for name in record.files if name not in done]
            _tell(progress, Progress("files", len(done), total, resumed, started))
            for first in range(0, len(todo), batch_size):
                if should_stop is not None and should_stop():
                    raise ScanStopped(f"stopped after {len(done)} of {total} files; it resumes when started again")
                batch = todo[first : first + batch_size]
                collected = files.read_paths([root / name for name in batch], namer, settings.config.max_file_bytes)
                result = router.run(settings, collected.jobs, lint_options, store if not options.no_cache else None)
                result.skipped = collected.skipped + result.skipped
                journal.record(record, "files", batch, result.to_dict())
                done.update(batch)
                _tell(progress, Progress("files", len(done), total, resumed, started))

            cross_rules = {r.id for r in settings.ruleset.rules if r.params.get("finder") == "cross-file"}
            if cross_rules and not any(part.kind == "cross-file" for part in journal.parts(record)):
                _tell(progress, Progress("cross-file", len(done), total, resumed, started))
                wanted = [n for n in record.files
                          if any(r.id in cross_rules for r in settings.ruleset.rules_for(n, _language(n)))]
                collected = files.read_paths([root / n for n in wanted], namer, settings.config.max_file_bytes)
                result = router.run_cross_file(settings, collected.jobs, lint_options, store)
                journal.record(record, "cross-file", wanted, result.to_dict())

            _tell(progress, Progress("report", len(done), total, resumed, started))
            result = assemble(journal.parts(record), settings, record)
            from tinyarms.stores import feedback

            feedback.mark(result, root)
            meta = {
                "id": record.id, "root": str(root), "repo": root.name, "skills": described["skills"],
                "paths": described["paths"], "started": record.started, "finished": time.time(),
                "runs": record.runs, "files_total": total, "files_this_run": total - resumed,
                "files_resumed": resumed, "options": described,
            }
            from tinyarms import report

            written = report.write(result, settings.ruleset.meta(), meta, root, home,
                                   exit_code=lintjob.exit_code(settings, result))
            journal.finish(record, written)
            _tell(progress, Progress("done", len(done), total, resumed, started))
            return ScanOutcome(result, written, written["exit_code"], {
                "id": record.id, "runs": record.runs, "files": total, "files_this_run": total - resumed,
                "files_resumed": resumed,
            })
    finally:
        if owned and store is not None:
            store.close()


def assemble(parts: list[Part], settings: Settings, record: ScanRecord) -> LintResult:
    """One result from every batch of the scan, whichever run did it, with summed stats."""
    result = LintResult()
    stats: dict[str, Any] = {"files": 0, "files_skipped": 0, "lines": 0, "suppressed": 0, "cache_hits": 0,
                             "cache_misses": 0, "duration_ms": 0.0}
    models: dict[str, dict[str, Any]] = {}
    for part in parts:
        data = part.result
        result.findings += [Finding.from_dict(f) for f in data["findings"]]
        result.skipped += [Skipped.from_dict(s) for s in data["skipped"]]
        part_stats = data.get("stats") or {}
        for name in stats:
            if part.kind == "files" or name == "duration_ms":
                stats[name] += part_stats.get(name) or 0
        for level, level_stats in (part_stats.get("models") or {}).items():
            _add_model_stats(models.setdefault(level, {}), level_stats)
    result.skipped = _dedupe_skips(result.skipped)
    result.findings.sort(key=lambda f: (f.path, f.line, f.column, f.rule))
    severities = {s: 0 for s in ("error", "warning", "info")}
    for f in result.findings:
        severities[f.severity] = severities.get(f.severity, 0) + 1
    stats.update({
        "files_skipped": sum(1 for s in result.skipped if s.rule is None),
        "findings": len(result.findings), "by_severity": severities, "rules": len(settings.ruleset.rules),
        "out_of_scope": record.listing.get("out_of_scope", 0), "excluded": record.listing.get("excluded", 0),
        "models": models or None, "duration_ms": round(stats["duration_ms"], 1),
    })
    result.stats = stats
    return result


_SUMMED = ("questions", "asked", "cached", "dropped", "pending", "seconds", "embedded", "functions", "pairs", "files")


def _add_model_stats(into: dict[str, Any], more: dict[str, Any]) -> None:
    for name, value in more.items():
        if name in _SUMMED and isinstance(value, int | float) and not isinstance(value, bool):
            into[name] = round(into.get(name, 0) + value, ndigits=3)
        elif isinstance(value, dict):
            if not isinstance(into.get(name), dict):  # None in an earlier batch (no model question there)
                into[name] = {}
            _add_model_stats(into[name], value)
        elif value is not None or name not in into:
            into[name] = value  # backend, model, why: the latest batch says


def _dedupe_skips(skipped: list[Skipped]) -> list[Skipped]:
    """Batches each report a rule-wide skip (``scan-only``, a missing model with no file): once."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for s in skipped:
        key = tuple(asdict(s).values())
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def _tell(progress: Callable[[Progress], None] | None, event: Progress) -> None:
    if progress is not None:
        progress(event)


def _language(rel: str) -> str | None:
    from tinyarms.source import language_of

    return language_of(rel)


def _absolute(path: Path, cwd: Path) -> Path:
    return path if path.is_absolute() else cwd / path


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix() or "."
    except ValueError:
        return path.as_posix()
