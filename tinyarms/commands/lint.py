"""``tinyarms lint`` and ``tinyarms baseline write``: flags in, a ``LintJob`` run, output out.

Through the daemon when one runs (it has everything loaded and cached), in this process
otherwise or with ``--no-daemon``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tinyarms import log

if TYPE_CHECKING:
    from tinyarms.finding import LintResult
    from tinyarms.lintjob import LintJob
    from tinyarms.ruleset import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: .)")
    parser.add_argument("--staged", action="store_true", help="lint the staged content of the staged files")
    parser.add_argument("--skill", action="append", metavar="NAME", help="skill to run (repeatable)")
    parser.add_argument("--budget", type=float, metavar="SECONDS", help="time budget for model checks")
    parser.add_argument("--select", type=_ids, metavar="IDS", help="only these rules (comma-separated)")
    parser.add_argument("--ignore", type=_ids, metavar="IDS", help="skip these rules (comma-separated)")
    parser.add_argument("--fail-on", choices=("error", "warning", "never"), help="lowest severity that fails")
    parser.add_argument("--no-daemon", action="store_true", help="lint in this process")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    parser.add_argument("--report-unused-ignores", action="store_true", help="report suppressions that silence nothing")


def add_lint_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--format", choices=("text", "json", "sarif", "github"), default="text")
    parser.add_argument("--baseline", type=Path, metavar="FILE", help="findings in this baseline do not fail")


def _ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def job_from(args: argparse.Namespace) -> LintJob:
    from tinyarms.lintjob import LintJob

    return LintJob(
        paths=args.paths, staged=args.staged, skill=args.skill, select=args.select, ignore=args.ignore,
        fail_on=args.fail_on, budget=args.budget, baseline=getattr(args, "baseline", None),
        report_unused=args.report_unused_ignores, no_cache=args.no_cache,
    )


def run_lint(args: argparse.Namespace) -> int:
    color = args.format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    if not args.no_daemon:
        from tinyarms import client

        answered = client.lint_through_daemon(args, color)
        if answered is not None:
            output, code = answered
            if log.verbose():
                log.get_logger().info("lint_answered_by_daemon", exit_code=code)
            sys.stdout.write(output)
            return code
    from tinyarms import lintjob, render

    job = job_from(args)
    cwd = Path.cwd()
    settings = lintjob.load(job, cwd)
    result = lintjob.execute(job, cwd, settings)
    if log.verbose():  # structlog is imported only when asked for
        _log_summary(settings, result)
    sys.stdout.write(render.render(args.format, result, settings.ruleset.meta(), fail_on=settings.config.fail_on,
                                   color=color))
    return lintjob.exit_code(settings, result)


def _log_summary(settings: Settings, result: LintResult) -> None:
    """What ``-v`` shows: where the settings came from and what the run cost."""
    stats = result.stats
    log.get_logger().info(
        "lint_done", root=str(settings.root) if settings.root else None,
        config=[layer.doc.path for layer in settings.loaded.layers],
        skills={rule.skill: settings.skills[rule.skill][1] for rule in settings.ruleset.rules},
        rules=len(settings.ruleset.rules), files=stats.get("files"), findings=stats.get("findings"),
        skipped=len(result.skipped), cache_hits=stats.get("cache_hits"), cache_misses=stats.get("cache_misses"),
        duration_ms=stats.get("duration_ms"),
    )


def run_baseline_write(args: argparse.Namespace) -> int:
    from tinyarms import baseline, lintjob

    job = job_from(args)
    cwd = Path.cwd()
    result = lintjob.execute(job, cwd, lintjob.load(job, cwd))
    count = baseline.write(args.file, result)
    print(f"wrote {count} findings to {args.file}", file=sys.stderr)
    return 0
