"""``tinyarms lint`` and ``tinyarms baseline write``: collect files, run the router, render."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tinyarms import baseline, router
from tinyarms.finding import LintResult, fails
from tinyarms.ruleset import Settings, load_settings


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


def settings_for(args: argparse.Namespace) -> Settings:
    from tinyarms.config import find_root

    cwd = Path.cwd()
    first = Path(args.paths[0]) if args.paths else cwd
    start = first if first.is_dir() else first.parent
    root = find_root(start if start.exists() else cwd)
    cli: dict = {}
    if args.fail_on:
        cli["fail_on"] = args.fail_on
    if args.budget is not None:
        cli["budget"] = args.budget
    return load_settings(root, cli, args.skill, args.select, args.ignore)


def lint(args: argparse.Namespace) -> tuple[Settings, LintResult]:
    from tinyarms import files

    settings = settings_for(args)
    namer = files.Namer(settings.root, Path.cwd())
    collect = files.collect_staged if args.staged else files.collect_paths
    collected = collect(args.paths, settings.ruleset, namer, settings.config.max_file_bytes)
    options = router.LintOptions(use_cache=not args.no_cache, report_unused=args.report_unused_ignores)
    result = router.run(settings, collected.jobs, options)
    result.skipped = collected.skipped + result.skipped
    result.stats["files_skipped"] += sum(1 for s in collected.skipped if s.rule is None)
    result.stats["out_of_scope"] = collected.out_of_scope
    result.stats["excluded"] = collected.excluded
    return settings, result


def run_lint(args: argparse.Namespace) -> int:
    from tinyarms import render

    fingerprints = baseline.read(args.baseline) if args.baseline else None
    settings, result = lint(args)
    if fingerprints is not None:
        baseline.apply(result, fingerprints)
    color = args.format == "text" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    output = render.render(args.format, result, settings.ruleset.meta(), fail_on=settings.config.fail_on, color=color)
    sys.stdout.write(output)
    return exit_code(settings, result)


def exit_code(settings: Settings, result: LintResult) -> int:
    fail_on = settings.config.fail_on
    if fail_on != "never" and any(fails(f, fail_on) for f in result.findings):
        return 1
    if settings.config.on_model_unavailable == "fail" and any(s.reason == "model-unavailable" for s in result.skipped):
        return 1
    return 0


def run_baseline_write(args: argparse.Namespace) -> int:
    _, result = lint(args)
    count = baseline.write(args.file, result)
    print(f"wrote {count} findings to {args.file}", file=sys.stderr)
    return 0
