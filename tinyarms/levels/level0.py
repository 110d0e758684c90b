"""Level 0: the deterministic rules, run on one file at a time, in process or in a pool.

Everything here is CPU work on bytes already read; no I/O but the import of a check.
A check that fails on some odd input does not take the run down: its failure becomes a
``skipped`` entry naming the rule, and the other rules' findings stand.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tinyarms import suppress
from tinyarms.finding import Finding, Skipped, assign_fingerprints
from tinyarms.rules import CHECKS, Context, PatternTimeout, load_check
from tinyarms.ruleset import ActiveRule, RuleSet
from tinyarms.skills import format_message
from tinyarms.source import Source, make_source

if TYPE_CHECKING:
    import multiprocessing.context


@dataclass(slots=True)
class FileOutcome:
    """Level 0's verdict on one file: what the result cache stores."""

    findings: list[Finding] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    suppressed: int = 0
    lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "findings": [f.to_dict() for f in self.findings],
            "skipped": [s.to_dict() for s in self.skipped],
            "suppressed": self.suppressed,
            "lines": self.lines,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileOutcome:
        return cls(
            [Finding.from_dict(f) for f in data["findings"]],
            [Skipped.from_dict(s) for s in data["skipped"]],
            data["suppressed"],
            data["lines"],
        )


@dataclass(frozen=True, slots=True)
class Job:
    path: str  # shown
    rel: str
    raw: bytes
    # Lines a staged change touched (1-based, inclusive); None: all of them (a new file, or
    # not a staged lint). Model levels ask only about candidates that touch these.
    changed: tuple[tuple[int, int], ...] | None = None


class Linter:
    """Runs a rule set's Level 0 rules; holds the imported checks and validated parameters."""

    def __init__(self, ruleset: RuleSet, max_bytes: int, report_unused: bool = False):
        self.ruleset = ruleset
        self.max_bytes = max_bytes
        self.report_unused = report_unused
        self.context = Context(ruleset.root)
        self._compiled: dict[str, tuple[Any, Any]] = {}

    def _compile(self, rule: ActiveRule) -> tuple[Any, Any]:
        compiled = self._compiled.get(rule.id)
        if compiled is None:
            assert rule.check is not None
            compiled = (load_check(rule.check), CHECKS[rule.check].params.model_validate(rule.params))
            self._compiled[rule.id] = compiled
        return compiled

    def lint(self, job: Job) -> FileOutcome:
        src = make_source(job.path, job.rel, job.raw, self.max_bytes)
        if isinstance(src, Skipped):
            return FileOutcome(skipped=[src])
        return self.lint_source(src)

    def lint_source(self, src: Source) -> FileOutcome:
        outcome = FileOutcome(lines=len(src.lines) if src.text else 0)
        rules = [r for r in self.ruleset.rules_for(src.rel, src.language) if r.level == 0]
        for rule in rules:
            try:
                check, params = self._compile(rule)
                for hit in check(src, params, self.context):
                    outcome.findings.append(self._finding(src, rule, hit))
            except PatternTimeout as exc:  # a skill's own pattern, not our bug: the skill's author can fix it
                outcome.skipped.append(Skipped(src.path, "rule-timeout", f"{rule.id}: {exc}", rule=rule.id, level=0,
                                               hint=f"fix the pattern of rule {rule.id} in skill {rule.skill}"))
            except Exception as exc:  # noqa: BLE001 - a check's bug must not cost the other rules' findings
                outcome.skipped.append(Skipped(
                    src.path, "internal-error", f"{rule.id} failed on this file: {type(exc).__name__}: {exc}",
                    rule=rule.id, level=0, hint="please report this with the file that triggers it",
                ))
        if "tinyarms:" in src.text:
            directives = suppress.parse(src.lines, src.in_comment)
            outcome.findings, outcome.suppressed = suppress.apply(outcome.findings, directives)
            if self.report_unused:
                for d, what in suppress.unused(directives, {r.id for r in rules}):
                    outcome.findings.append(Finding(
                        src.path, d.line, d.column, d.line, d.end_column, suppress.UNUSED_RULE, "tinyarms",
                        "warning", f"unused suppression: {what}", "remove it", 0, "pattern",
                    ))
        outcome.findings.sort(key=lambda f: (f.line, f.column, f.rule))
        assign_fingerprints(src.rel, outcome.findings, src.lines)
        return outcome

    def _finding(self, src: Source, rule: ActiveRule, hit: Any) -> Finding:
        line, column = src.position(hit.start)
        end_line, end_column = src.position(hit.end) if hit.end > hit.start else (line, column + 1)
        suggestion = hit.suggestion or (format_message(rule.suggestion, hit.values) if rule.suggestion else None)
        return Finding(
            path=src.path, line=line, column=column, end_line=end_line, end_column=end_column,
            rule=rule.id, skill=rule.skill, severity=rule.severity,
            message=format_message(rule.message, hit.values), suggestion=suggestion,
            level=0, engine=rule.engine,
        )


# Worker-process state: one Linter per process, built once by the pool initializer.
_worker: Linter | None = None


def _init_worker(ruleset: RuleSet, max_bytes: int, report_unused: bool) -> None:
    global _worker  # noqa: PLW0603 - a process pool initializer has only module state to set
    _worker = Linter(ruleset, max_bytes, report_unused)


def _lint_batch(jobs: list[Job]) -> list[FileOutcome]:
    assert _worker is not None
    return [_worker.lint(job) for job in jobs]


# Below this much work a pool costs more than it saves (process start, pickling).
PARALLEL_MIN_BYTES = 2 << 20
BATCHES_PER_WORKER = 8  # small enough batches that workers finish together
MIN_BATCH_BYTES = 64 << 10


def lint_many(linter: Linter, jobs: list[Job], workers: int | None = None) -> Iterator[FileOutcome]:
    """Outcomes in job order; spread over processes when the work is big enough."""
    total = sum(len(j.raw) for j in jobs)
    workers = workers or os.cpu_count() or 1
    if workers < 2 or total < PARALLEL_MIN_BYTES:
        for job in jobs:
            yield linter.lint(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    batches = list(_batches(jobs, max(total // (workers * BATCHES_PER_WORKER), MIN_BATCH_BYTES)))
    with ProcessPoolExecutor(
        workers, mp_context=_context(), initializer=_init_worker,
        initargs=(linter.ruleset, linter.max_bytes, linter.report_unused),
    ) as pool:
        for outcomes in pool.map(_lint_batch, batches):
            yield from outcomes


def _batches(jobs: list[Job], size: int) -> Iterable[list[Job]]:
    batch: list[Job] = []
    weight = 0
    for job in jobs:
        batch.append(job)
        weight += len(job.raw)
        if weight >= size:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


def _context() -> multiprocessing.context.BaseContext:
    import multiprocessing
    import threading

    # fork is the cheapest start, and safe while this process runs a single thread (the CLI);
    # a process with threads (the daemon) spawns instead.
    method = "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return multiprocessing.get_context(method)
