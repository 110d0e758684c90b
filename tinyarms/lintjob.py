"""A lint job, from what was asked to a result and an exit code; the same in process and in the daemon.

The command line builds a ``LintJob`` from its flags, the daemon from a socket request; both
then load settings, collect files, run the router and apply the baseline here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyarms import baseline, files, router
from tinyarms.errors import ConfigError
from tinyarms.finding import LintResult, fails
from tinyarms.levels.level0 import Job
from tinyarms.models.base import UNAVAILABLE
from tinyarms.ruleset import Settings, load_settings
from tinyarms.source import too_large
from tinyarms.stores import feedback
from tinyarms.stores.cache import Cache


@dataclass(slots=True)
class SentFile:
    """A file whose bytes the client sent (the hook sends staged blobs); ``raw`` None = left out."""

    path: str  # relative to the root
    raw: bytes | None
    size: int | None = None
    changed: tuple[tuple[int, int], ...] | None = None


@dataclass(slots=True)
class LintJob:
    paths: list[str] = field(default_factory=list)
    staged: bool = False
    sent: list[SentFile] | None = None
    root: Path | None = None
    skill: list[str] | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    fail_on: str | None = None
    budget: float | None = None
    baseline: Path | None = None
    report_unused: bool = False
    no_cache: bool = False
    env: dict[str, str] | None = None  # the client's TINYARMS_* variables; None: this process's
    # When the request arrived (time.monotonic()): a request that waited for a free lint thread
    # has that much less of its budget left. None: the budget counts from the start of the lint.
    received: float | None = None

    def cli_layer(self) -> dict[str, Any]:
        layer: dict[str, Any] = {}
        if self.fail_on:
            layer["fail_on"] = self.fail_on
        if self.budget is not None:
            layer["budget"] = self.budget
        return layer

    def settings_key(self) -> tuple[Any, ...]:
        """What besides the files on disk decides the settings: the daemon caches by it.

        Not the budget: the hook sends the time it has left, different on every commit, and a
        key per commit would load the settings anew each time and keep every copy."""
        return (
            str(self.root), tuple(self.skill or ()), tuple(self.select or ()), tuple(self.ignore or ()),
            self.fail_on, tuple(sorted((self.env or {}).items())),
        )


def find_root(job: LintJob, cwd: Path) -> Path | None:
    if job.root is not None:
        return job.root
    from tinyarms.config import find_root as nearest

    first = cwd / job.paths[0] if job.paths else cwd
    start = first if first.is_dir() else first.parent
    return nearest(start if start.exists() else cwd)


def load(job: LintJob, cwd: Path) -> Settings:
    job.root = find_root(job, cwd)
    return load_settings(job.root, job.cli_layer(), job.skill, job.select, job.ignore, job.env)


def execute(job: LintJob, cwd: Path, settings: Settings, store: Cache | None = None,
            on_pending: Callable[[Any], None] | None = None) -> LintResult:
    """Lint as the job says. Model levels get the config's budget; ``on_pending`` receives the
    model questions the budget cut (the daemon answers them in the background)."""
    fingerprints = baseline.read(cwd / job.baseline) if job.baseline else None
    namer = files.Namer(settings.root, cwd, _boundary(settings.root, cwd))
    max_bytes = settings.config.max_file_bytes
    if job.sent is not None:
        collected = _collect_sent(job.sent, settings, namer, max_bytes)
    elif job.staged:
        collected = files.collect_staged(job.paths, settings.ruleset, namer, max_bytes)
    else:
        collected = files.collect_paths(job.paths, settings.ruleset, namer, max_bytes)
    options = router.LintOptions(
        use_cache=not job.no_cache, report_unused=job.report_unused,
        budget=job.budget if job.budget is not None else settings.config.budget, since=job.received,
        on_pending=on_pending,
    )
    result = router.run(settings, collected.jobs, options, store)
    result.skipped = collected.skipped + result.skipped
    result.stats["files_skipped"] += sum(1 for s in collected.skipped if s.rule is None)
    result.stats["out_of_scope"] = collected.out_of_scope
    result.stats["excluded"] = collected.excluded
    if fingerprints is not None:
        baseline.apply(result, fingerprints)
    feedback.mark(result, settings.root)  # after the cache: a verdict applies to cached findings too
    return result


def _boundary(root: Path | None, cwd: Path) -> Path | None:
    """The repository a lint may read in: the one it was started in (a path that leaves it,
    ``../other/x.py`` or ``/etc/passwd``, is refused), else the one of the files named."""
    from tinyarms.config import find_root as nearest

    here = nearest(cwd)
    return here if here is not None else root


def _collect_sent(sent: list[SentFile], settings: Settings, namer: files.Namer, max_bytes: int) -> files.Collected:
    if settings.root is None:
        raise ConfigError(["files were sent without a repository root"])
    out = files.Collected()
    for item in sent:
        rel_to_root = posixpath.normpath(item.path)
        if item.path.startswith("/") or rel_to_root == ".." or rel_to_root.startswith("../"):
            raise ConfigError([f"{item.path}: path escapes the repository"])
        path = settings.root / rel_to_root
        rel, shown = namer.rel(path), namer.shown(path)
        if settings.ruleset.excluded(rel):
            out.excluded += 1
        elif not files.in_scope(settings.ruleset, rel):
            out.out_of_scope += 1
        elif item.raw is None:
            out.skipped.append(too_large(shown, item.size or 0, max_bytes))
        else:
            out.jobs.append(Job(shown, rel, item.raw, item.changed))
    return out


def exit_code(settings: Settings, result: LintResult) -> int:
    fail_on = settings.config.fail_on
    if fail_on != "never" and any(fails(f, fail_on) for f in result.findings):
        return 1
    if settings.config.on_model_unavailable == "fail" and any(s.reason in UNAVAILABLE for s in result.skipped):
        return 1
    return 0
