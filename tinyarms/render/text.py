"""The default, human format: one line per finding, grouped by file, then what was skipped.

``path:line:col: rule [severity] message`` keeps every line clickable in editors and terminals.
Messages and paths are untrusted (model output, file names), so control characters are shown
escaped rather than sent to the terminal.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tinyarms.finding import FALSE_POSITIVE, SEVERITIES, SEVERITY_RANK, fails
from tinyarms.render import file_skips, group_rule_skips

if TYPE_CHECKING:
    from tinyarms.finding import Finding, LintResult, RuleMeta

_RESET = "\x1b[0m"
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_SEVERITY_COLORS = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "info": "\x1b[36m"}

# Everything a terminal may act on (C0 controls but tab, DEL, the C1 range), the Unicode line
# and paragraph separators editors break lines on, and lone surrogates from undecodable file
# names, which no UTF-8 terminal accepts.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_CONTINUATION = "    "
_LATIN1_END = 0x100  # below: a \xNN escape; above, \uNNNN


def render(
    result: LintResult,
    rules: Mapping[str, RuleMeta],
    *,
    fail_on: str = "warning",
    color: bool = False,
) -> str:
    sections = [
        _findings_section(result.findings, color),
        _skipped_section(result),
        [_summary(result, fail_on, color), *_model_lines(result)],
    ]
    return "\n\n".join("\n".join(lines) for lines in sections if lines) + "\n"


def _findings_section(findings: list[Finding], color: bool) -> list[str]:
    lines: list[str] = []
    ordered = sorted(
        findings, key=lambda f: (f.path, f.line, f.column, f.end_line, f.end_column, f.rule)
    )
    for f in ordered:
        path = _paint(_printable(f.path), _BOLD, color)
        severity = _paint(
            f"[{_printable(f.severity)}]", _SEVERITY_COLORS.get(f.severity, ""), color
        )
        rule = _printable(f.rule)
        known = f" {_paint('(known false positive)', _DIM, color)}" if f.feedback == FALSE_POSITIVE else ""
        lines.append(f"{path}:{f.line}:{f.column}: {rule} {severity}{known} {_multiline(f.message)}")
        if f.suggestion:
            lines.append(f"  suggestion: {_multiline(f.suggestion)}")
    return lines


def _skipped_section(result: LintResult) -> list[str]:
    lines: list[str] = []
    for s in file_skips(result.skipped):
        where = f"{_printable(s.path)}: " if s.path is not None else ""
        lines.append(f"{where}skipped ({_printable(s.reason)}): {_multiline(s.message)}")
        if s.hint:
            lines.append(f"  hint: {_multiline(s.hint)}")
    for group in group_rule_skips(result.skipped):
        level = f" (level {group.level})" if group.level is not None else ""
        files = f" on {_plural(len(group.paths), 'file')}" if group.paths else ""
        lines.append(f"skipped {_printable(group.rule)}{level}{files}: {_multiline(group.message)}")
        if group.hint:
            lines.append(f"  hint: {_multiline(group.hint)}")
    return lines


def _summary(result: LintResult, fail_on: str, color: bool) -> str:
    checked = result.stats.get("files")
    if not isinstance(checked, int) or isinstance(checked, bool):
        checked = None
    file_skip_count = sum(1 for s in result.skipped if s.rule is None)
    check_skip_count = len(result.skipped) - file_skip_count
    skips = []
    if file_skip_count:
        skips.append(f"{_plural(file_skip_count, 'file')} skipped")
    if check_skip_count:
        skips.append(_plural(check_skip_count, "skipped check"))

    # Known false positives are shown but are not problems: counted apart, failing nothing.
    findings = [f for f in result.findings if f.feedback != FALSE_POSITIVE]
    known = len(result.findings) - len(findings)
    if known:
        skips.append(f"{known} known false positive{'s' if known != 1 else ''} not counted")
    feedback_error = result.stats.get("feedback_error")
    if isinstance(feedback_error, str):
        skips.append(f"feedback not applied ({_multiline(feedback_error)})")
    if not findings:
        text = (
            "No problems found" if checked is None else f"No problems in {_plural(checked, 'file')}"
        )
        if skips:
            text += "; " + ", ".join(skips)
        return text + "."

    counts = Counter(f.severity for f in findings)
    order = [s for s in SEVERITIES if counts[s]] + sorted(s for s in counts if s not in SEVERITIES)
    by_severity = ", ".join(
        _paint(_severity_count(counts[s], _printable(s)), _SEVERITY_COLORS.get(s, ""), color)
        for s in order
    )
    files_with_findings = len({f.path for f in findings})
    text = (
        f"Found {_plural(len(findings), 'problem')} ({by_severity}) "
        f"in {_plural(files_with_findings, 'file')}"
    )
    tail = ([] if checked is None else [f"{_plural(checked, 'file')} checked"]) + skips
    if tail:
        text += "; " + ", ".join(tail)
    text += "."
    if not any(f.severity in SEVERITY_RANK and fails(f, fail_on) for f in findings):
        text += f" None fails the run at --fail-on {fail_on}."
    return text


def _model_lines(result: LintResult) -> list[str]:
    """What each model level did, so a clean result still shows the model was asked."""
    lines = []
    for level, stats in sorted((result.stats.get("models") or {}).items()):
        if not isinstance(stats, dict):
            continue
        finder = stats if stats.get("verdict") == "finder" else stats.get("finder")
        if isinstance(finder, dict):
            lines.append(f"Level {level}: the finders' candidates, no model asked (models.verdict: finder): "
                         f"{_plural(finder.get('findings', 0), 'finding')}.")
        if not stats.get("backend"):
            continue
        asked, cached, pending = stats.get("asked", 0), stats.get("cached", 0), stats.get("pending", 0)
        questions = stats.get("questions", 0)
        line = (f"Level {level}: {_printable(str(stats.get('model')))} via {_printable(str(stats['backend']))}, "
                f"{_plural(questions, 'question')}: {asked} asked, {cached} from the cache")
        if pending:
            line += f", {pending} left for the background"
        if stats.get("dropped"):
            line += f", {_plural(stats['dropped'], 'violation')} on rules not asked or lines not shown ignored"
        lines.append(line + f" ({stats.get('seconds', 0):.1f} s).")
    return lines


def _severity_count(count: int, severity: str) -> str:
    # "2 info" reads better than "2 infos".
    return _plural(count, severity) if severity != "info" else f"{count} info"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color and code else text


def _printable(text: str) -> str:
    return _CONTROL.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < _LATIN1_END else f"\\u{code:04x}"


def _multiline(text: str) -> str:
    """Keep a multi-line message readable without letting it pose as another finding."""
    lines = text.replace("\r\n", "\n").split("\n")
    return ("\n" + _CONTINUATION).join(_printable(line) for line in lines)
