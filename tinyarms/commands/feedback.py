"""``tinyarms feedback``: teach it from its mistakes.

    tinyarms feedback false-positive FINDING [--note TEXT]
    tinyarms feedback confirm FINDING [--note TEXT]
    tinyarms feedback list [--all] [--json]
    tinyarms feedback remove ID|FINGERPRINT

FINDING is a fingerprint (from ``--format json`` or SARIF; a unique prefix of 6 or more
characters will do) or ``PATH:LINE:RULE`` / ``PATH:LINE:COL:RULE`` as the text output prints it
(PATH from the current directory). Either is looked up in the current content of the current
repository's files, linted as ``tinyarms lint`` would: a ``PATH:LINE:RULE`` asks the model
about that line within the budget when its answer is not cached; a fingerprint searches every
file, with the model answers already cached (asking a model about a whole repository is a scan).
What a verdict changes is described in ``tinyarms/stores/feedback.py``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tinyarms.errors import ConfigError
from tinyarms.finding import CONFIRMED, FALSE_POSITIVE

if TYPE_CHECKING:
    from tinyarms.finding import Finding, LintResult
    from tinyarms.levels.level0 import Job
    from tinyarms.ruleset import Settings
    from tinyarms.stores.feedback import Entry, Store

_SPOT = re.compile(r"(?P<path>.+?):(?P<line>\d+)(?::(?P<column>\d+))?:\s*(?P<rule>[A-Za-z0-9][\w.-]*)")
_FINGERPRINT = re.compile(r"[0-9a-f]{6,64}")
_MAX_LISTED = 10
_ID_DIGITS = 6  # fewer digits than this is an entry's id; more, a fingerprint's prefix


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="feedback_action", metavar="ACTION", required=True)
    for verdict, summary in (
        (FALSE_POSITIVE, "this finding is wrong: it fails nothing again and teaches the model (counter-example)"),
        ("confirm", "this finding is real (recorded for status and evaluation)"),
    ):
        p = actions.add_parser(verdict, help=summary)
        p.add_argument("finding", nargs="+", metavar="FINDING",
                       help="a fingerprint, or PATH:LINE:RULE / PATH:LINE:COL:RULE as `tinyarms lint` prints it")
        p.add_argument("--note", metavar="TEXT", help="why; shown to the model with a false positive")
    p = actions.add_parser("list", help="the feedback given in this repository")
    p.add_argument("--all", action="store_true", help="in every repository")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = actions.add_parser("remove", help="take a verdict back")
    p.add_argument("entry", metavar="ID|FINGERPRINT", help="an ID from `tinyarms feedback list`, or a fingerprint")


def run(args: argparse.Namespace) -> int:
    from tinyarms.stores import feedback

    action = args.feedback_action
    cwd = Path.cwd()
    if action == "list":
        return _list(cwd, args.all, args.json)
    root = _root(cwd)
    if action == "remove":
        with feedback.Store() as store:
            return _remove(store, feedback.repo_key(root), args.entry)
    verdict = FALSE_POSITIVE if action == FALSE_POSITIVE else CONFIRMED
    found = resolve(" ".join(args.finding), root, cwd)  # first: a bad FINDING writes nothing
    with feedback.Store() as store:
        entry = store.record_finding(root, found.finding, found.rel, found.lines, verdict, args.note, kind=found.kind)
    where = f"{found.finding.path}:{found.finding.line}: {found.finding.rule}"
    if verdict == FALSE_POSITIVE:
        taught = (f", and the model is shown it as a counter-example for {entry.rule} in this repository"
                  if found.finding.engine == "model" else "")  # a Level 0 or finder finding: no model asked
        print(f"{where} is a known false positive now (fingerprint {entry.fingerprint}): it fails no commit "
              f"again{taught}.")
        if entry.kind:
            print(f"Other {entry.rule} findings of its kind ({entry.kind}) are settled the same way from now on"
                  + (", without asking the model; confirm one of them to have the model judge each again."
                     if found.finding.engine == "model" else "; confirm one of them to report each again."))
    else:
        print(f"{where} is confirmed (fingerprint {entry.fingerprint}).")
    print(f"Undo with `tinyarms feedback remove {entry.id}`.", file=sys.stderr)
    return 0


# -- finding a finding ----------------------------------------------------------------------------


@dataclass(slots=True)
class Resolved:
    finding: Finding
    rel: str  # from the repository root
    lines: list[str]  # the file's, as linted
    kind: str | None = None  # the kind of claim a model finding made (levels.questions.claim_kind)


def resolve(ref: str, root: Path, cwd: Path) -> Resolved:
    """The one finding ``ref`` names in the current files of the repository at ``root``;
    ``ConfigError`` (exit 2) when it names none, or more than one."""
    ref = ref.strip()
    spot = _SPOT.fullmatch(ref)
    if spot is not None:
        column = int(spot["column"]) if spot["column"] else None
        return _at(spot["path"].strip(), int(spot["line"]), column, spot["rule"], root, cwd)
    if _FINGERPRINT.fullmatch(ref.lower()):
        return _by_fingerprint(ref.lower(), root, cwd)
    raise ConfigError([(f"{ref!r} names no finding: give a fingerprint (from `tinyarms lint --format json`) "
                       "or PATH:LINE:RULE as `tinyarms lint` prints it, e.g. src/app.py:12:magic-numbers")])


def _at(path: str, line: int, column: int | None, rule: str, root: Path, cwd: Path) -> Resolved:
    from tinyarms import files

    file = (cwd / path).resolve()
    if not file.is_relative_to(root):
        raise ConfigError([f"{path}: outside the repository {root}"])
    if not file.is_file():
        raise ConfigError([f"{path}: no such file (paths are from the current directory, {cwd})"])
    settings = _settings_for_rule(root, rule)
    namer = files.Namer(root, cwd)
    collected = files.read_paths([file], namer, settings.config.max_file_bytes)
    if not collected.jobs:
        raise ConfigError([f"{path}: {s.message}" for s in collected.skipped] or [f"{path}: cannot be read"])
    job = collected.jobs[0]
    lines = _lines(job)
    if not 1 <= line <= len(lines):
        raise ConfigError([f"{path}:{line}: the file has {len(lines)} lines now"])
    # Ask the model only about the candidates that show this line.
    result = _lint(settings, [replace(job, changed=((line, line),))], settings.config.budget)
    of_rule = [f for f in result.findings if f.rule == rule]
    here = [f for f in of_rule if f.line == line and (column is None or f.column == column)]
    if len(here) == 1:
        return Resolved(here[0], job.rel, lines, _kind(settings, job, here[0]))
    spot = f"{path}:{line}" + (f":{column}" if column else "")
    if len(here) > 1:
        raise ConfigError([f"{spot}: {len(here)} {rule} findings on this line; name one of them:", *_choices(here)])
    problems = [f"{spot}: no {rule} finding there in the file as it is now"]
    on_line = [f for f in of_rule if f.line == line]
    elsewhere = sorted({f.line for f in of_rule})
    if on_line:
        problems += ["on this line, at another column:", *_choices(on_line)]
    elif elsewhere:
        problems.append(f"{rule} findings in {path} are on line{'s' if len(elsewhere) > 1 else ''} "
                        + ", ".join(map(str, elsewhere[:_MAX_LISTED])))
    for s in result.skipped:
        if s.rule == rule:
            problems.append(f"the {rule} check did not run: {s.message}" + (f" ({s.hint})" if s.hint else ""))
            break
    raise ConfigError(problems)


def _by_fingerprint(prefix: str, root: Path, cwd: Path) -> Resolved:
    from tinyarms import files
    from tinyarms.ruleset import load_settings

    every_skill = list(load_settings(root).skills)
    settings = load_settings(root, skill_names=every_skill)
    namer = files.Namer(root, cwd)
    collected = files.collect_paths([str(root)], settings.ruleset, namer, settings.config.max_file_bytes)
    result = _lint(settings, collected.jobs, 0.0)  # the model answers already cached, no new question
    found = {f.fingerprint: f for f in result.findings if f.fingerprint.startswith(prefix)}
    if len(found) > 1:
        raise ConfigError([f"fingerprint {prefix} is ambiguous; give more of it:", *_choices(list(found.values()))])
    if not found:
        raise ConfigError([
            f"no finding with fingerprint {prefix} in the files of {root} as they are now",
            ("a fingerprint changes when its line changes; model findings are found here only while their answer "
            "is cached: name it as PATH:LINE:RULE to ask the model again"),
        ])
    [finding] = found.values()
    job = next(j for j in collected.jobs if j.path == finding.path)
    return Resolved(finding, job.rel, _lines(job), _kind(settings, job, finding))


def _settings_for_rule(root: Path, rule: str) -> Settings:
    """The settings a lint of this one rule runs with: the default skills when they have it,
    else the skill that defines it (a deep-scan rule)."""
    from tinyarms.ruleset import load_settings
    from tinyarms.yamlio import did_you_mean

    defaults = load_settings(root)
    if any(r.id == rule for r in defaults.ruleset.rules):
        return load_settings(root, select=[rule])
    owners = [name for name, (skill, _) in defaults.skills.items() if any(r.id == rule for r in skill.rules)]
    if not owners:
        known = {r.id for skill, _ in defaults.skills.values() for r in skill.rules}
        raise ConfigError([f"no rule {rule!r}{did_you_mean(rule, known)}; `tinyarms rules` lists them"])
    return load_settings(root, skill_names=owners[:1], select=[rule])


def _kind(settings: Settings, job: Job, finding: Finding) -> str | None:
    from tinyarms.finding import CLAIM_ENGINES
    from tinyarms.levels.questions import claim_kind
    from tinyarms.source import Source, make_source

    rule = next((r for r in settings.ruleset.rules if r.id == finding.rule), None)
    src = make_source(job.path, job.rel, job.raw, len(job.raw))
    if finding.engine not in CLAIM_ENGINES or rule is None or not isinstance(src, Source):
        return None
    return claim_kind(src, rule, finding.line, settings.ruleset.root, finding.column)


def _lint(settings: Settings, jobs: list[Job], budget: float) -> LintResult:
    from tinyarms import router

    return router.run(settings, jobs, router.LintOptions(budget=budget))


def _lines(job: Job) -> list[str]:
    from tinyarms.source import Source, make_source

    src = make_source(job.path, job.rel, job.raw, len(job.raw))
    if not isinstance(src, Source):
        raise ConfigError([f"{job.path}: {src.message}"])
    return src.lines


def _choices(findings: list[Finding]) -> list[str]:
    return [f"  {f.path}:{f.line}:{f.column}:{f.rule}  (fingerprint {f.fingerprint}) {f.message[:80]}"
            for f in sorted(findings, key=lambda f: (f.path, f.line, f.column))[:_MAX_LISTED]]


def _root(cwd: Path) -> Path:
    from tinyarms.config import find_root

    root = find_root(cwd)
    if root is None:
        raise ConfigError([(f"{cwd}: not inside a repository (no .git or .tinyarms.yaml here or above); "
                           "run this where you ran the lint")])
    return root


# -- list and remove ------------------------------------------------------------------------------


def _list(cwd: Path, every: bool, as_json: bool) -> int:
    from tinyarms.config import find_root
    from tinyarms.stores import feedback

    root = None if every else find_root(cwd)
    if root is None and not every:
        raise ConfigError([f"{cwd}: not inside a repository; `tinyarms feedback list --all` lists every one"])
    store = feedback.Store.existing()
    entries: list[Entry] = []
    if store is not None:
        with store:
            entries = store.entries(None if every else feedback.repo_key(root))
    if as_json:
        print(json.dumps([e.to_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print("no feedback yet" + ("" if every else " in this repository")
              + "; give some with `tinyarms feedback false-positive FINDING`", file=sys.stderr)
        return 0
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
        where = f"{e.repo}/{e.path}" if every else e.path
        note = f"  — {e.note}" if e.note else ""
        print(f"{e.id:>4}  {e.verdict:<14}  {where}:{e.line}: {e.rule}  {e.fingerprint}  {when}{note}")
    return 0


def _remove(store: Store, repo: str, ref: str) -> int:
    ref = ref.strip().lower()
    if ref.isdigit() and len(ref) < _ID_DIGITS:
        entry = store.get(int(ref))
        matches = [entry] if entry is not None else []
    elif _FINGERPRINT.fullmatch(ref):
        matches = store.matching(repo, ref)
    else:
        raise ConfigError([f"{ref!r}: give an ID from `tinyarms feedback list` or a fingerprint"])
    if not matches:
        raise ConfigError([f"no feedback {ref} (in this repository); `tinyarms feedback list` shows what there is"])
    if len(matches) > 1:
        raise ConfigError([f"{ref} matches {len(matches)} entries; give more of the fingerprint or the ID:",
                           *(f"  {e.id}: {e.path}:{e.line}: {e.rule} {e.fingerprint}" for e in matches[:_MAX_LISTED])])
    [entry] = matches
    store.remove(entry.id)
    print(f"removed: {entry.verdict} {entry.path}:{entry.line}: {entry.rule} ({entry.fingerprint})")
    return 0
