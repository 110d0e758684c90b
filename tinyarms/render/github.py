"""``--format github``: GitHub Actions workflow commands, which the runner turns into annotations.

Values are escaped exactly as ``@actions/core`` does (``escapeData`` / ``escapeProperty`` in
``command.ts``), so a message cannot end the command early or start a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from tinyarms.finding import FALSE_POSITIVE
from tinyarms.render import file_skips, group_rule_skips, region, replace_surrogates

if TYPE_CHECKING:
    from tinyarms.finding import Finding, LintResult, RuleMeta

_COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}
_SKIPPED_TITLE = "tinyarms skipped"
_MAX_LISTED_PATHS = 10


def render(
    result: LintResult,
    rules: Mapping[str, RuleMeta],
    *,
    fail_on: str = "warning",
    color: bool = False,
) -> str:
    lines = [
        _finding(f)
        for f in sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.rule))
    ]
    for s in file_skips(result.skipped):
        props = {"file": s.path} if s.path is not None else {}
        props["title"] = _SKIPPED_TITLE
        text = _with_hint(f"skipped ({s.reason}): {s.message}", s.hint)
        lines.append(_command("notice", props, text))
    # One notice per skipped check rather than per file: GitHub shows only a handful of
    # annotations of each kind per step, and real findings must not be crowded out.
    for g in group_rule_skips(result.skipped):
        level = f" (level {g.level})" if g.level is not None else ""
        text = f"skipped {g.rule}{level}{_files(g.paths)}: {g.message}"
        lines.append(_command("notice", {"title": _SKIPPED_TITLE}, _with_hint(text, g.hint)))
    return "".join(replace_surrogates(line) + "\n" for line in lines)


def _finding(f: Finding) -> str:
    r = region(f)
    props: dict[str, object] = {"file": f.path, "line": r.start_line}
    if r.end_line == r.start_line:
        props |= {"col": r.start_column, "endLine": r.end_line, "endColumn": r.end_column}
    else:
        # GitHub annotations take columns only on a one-line span (the checks API says so).
        props["endLine"] = r.end_line
    props["title"] = f.rule
    message = f.message if not f.suggestion else f"{f.message}\nSuggestion: {f.suggestion}"
    if f.feedback == FALSE_POSITIVE:  # shown, but as a notice: it is no problem
        props["title"] = f"{f.rule} (known false positive)"
        return _command("notice", props, message)
    return _command(_COMMANDS.get(f.severity, "warning"), props, message)


def _files(paths: tuple[str, ...]) -> str:
    if not paths:
        return ""
    shown = ", ".join(paths[:_MAX_LISTED_PATHS])
    more = len(paths) - _MAX_LISTED_PATHS
    rest = f" and {more} more" if more > 0 else ""
    return f" on {len(paths)} file{'s' if len(paths) != 1 else ''} ({shown}{rest})"


def _with_hint(text: str, hint: str | None) -> str:
    return f"{text}\nHint: {hint}" if hint else text


def _command(name: str, props: Mapping[str, object], message: str) -> str:
    # Like the toolkit, leave out empty values: ``file=`` would name no file.
    rendered = ",".join(
        f"{key}={escape_property(str(value))}" for key, value in props.items() if value != ""
    )
    return f"::{name} {rendered}::{escape_data(message)}"


def escape_data(value: str) -> str:
    """The message after ``::``; like ``escapeData`` in @actions/core."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """A ``key=value`` property; ``:`` and ``,`` would end it, as in ``escapeProperty``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")
