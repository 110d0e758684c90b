"""The ``tinyarms`` command line. One function per subcommand; heavy imports stay inside them."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from tinyarms import __version__

_COMMANDS = (  # name, module in tinyarms.commands, summary
    ("daemon", "daemon", "start, stop or check the background daemon"),
    ("status", "status", "what the daemon is doing (exit 3 when it is not running)"),
    ("hook", "hook", "install or remove the git pre-commit hook in this repository"),
    ("repo", "repo", "the repositories the daemon watches (lint-on-save) and deep-scans"),
    ("scan", "scan", "a deep scan with a report (Markdown, JSON, SARIF) under the state directory"),
    ("service", "service", "run the daemon as a systemd user service (Linux) or launchd agent (macOS)"),
    ("models", "models", "fetch and list the embedded backend's models; recommend models for this machine"),
    ("feedback", "feedback", "teach it: mark a finding a false positive (or confirm it); list and undo"),
    ("bench", "bench", "each model's speed, memory and valid answers on this machine (--compare A B)"),
    ("eval", "evaluate", "precision and recall of the rules on a labelled corpus (default: the built-in one)"),
    ("doctor", "doctor", "can a model answer here: load the fast model in a worker, ask it, say what to fix"),
    ("lsp", "lsp", "a Language Server over stdio for editors: findings while typing, from the daemon"),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; given the ``command`` about to run, only that command's module is
    imported (the others' sub-parsers are named, for the usage message, but left empty)."""
    from tinyarms.commands import lint

    parser = argparse.ArgumentParser(prog="tinyarms", description="A local, private code reviewer.")
    parser.add_argument("--version", action="version", version=f"tinyarms {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = commands.add_parser("lint", help="lint files, directories or the staged changes")
    lint.add_lint_arguments(p)
    p.set_defaults(run=lint.run_lint)

    p = commands.add_parser("baseline", help="record today's findings so only new ones fail")
    sub = p.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    w = sub.add_parser("write", help="write the current findings' fingerprints to FILE")
    w.add_argument("file", type=Path, metavar="FILE")
    lint.add_arguments(w)
    w.set_defaults(run=lint.run_baseline_write)

    # One module per subcommand, each with add_arguments(parser) and run(args); `models` sets
    # `run` per action on its own sub-parsers.
    for name, module_name, summary in _COMMANDS:
        p = commands.add_parser(name, help=summary)
        if command is not None and command != name:
            continue
        module = importlib.import_module(f"tinyarms.commands.{module_name}")
        module.add_arguments(p)
        if name != "models":
            p.set_defaults(run=module.run)

    p = commands.add_parser("rules", help="print the rules reference (Markdown) of the active skills")
    p.add_argument("--skill", action="append", metavar="NAME")
    p.set_defaults(run=_run_rules)
    return parser


def _run_rules(args: argparse.Namespace) -> int:
    from tinyarms.config import find_root
    from tinyarms.docs import rules_markdown
    from tinyarms.skills import BUILTIN_SKILLS, load_skills

    skills = load_skills(find_root(Path.cwd()))
    names = args.skill or [n for n in BUILTIN_SKILLS if n in skills] + sorted(set(skills) - set(BUILTIN_SKILLS))
    sys.stdout.write(rules_markdown([skills[n][0] for n in names]))
    return 0


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(next((w for w in words if not w.startswith("-")), None))
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    from tinyarms import log
    from tinyarms.errors import EXIT_INTERRUPTED, ConfigError

    log.set_verbosity(-1 if args.quiet else args.verbose)
    try:
        code: int = args.run(args)
        return code
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"tinyarms: error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tinyarms: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
