"""Output renderers: one module per ``--format``, all behind :func:`render`.

Each format module exposes the same function::

    render(result, rules, *, fail_on, color) -> str

and is imported only when asked for, so printing text never pays for the SARIF writer. The few
helpers more than one format needs live here rather than in a format module, so that no format
imports another.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from tinyarms.finding import Finding, LintResult, RuleMeta, Skipped

FORMATS = ("text", "json", "sarif", "github")

# "json" would shadow the standard library inside this package, hence ``json_``.
_MODULES = {"text": "text", "json": "json_", "sarif": "sarif", "github": "github"}


def render(
    fmt: str,
    result: LintResult,
    rules: Mapping[str, RuleMeta],
    *,
    fail_on: str = "warning",
    color: bool = False,
) -> str:
    """The full text to print for ``result`` in format ``fmt``.

    It ends in a newline, or is empty when the format has nothing to say (``github`` with no
    findings and nothing skipped).
    """
    try:
        module_name = _MODULES[fmt]
    except KeyError:
        raise ValueError(
            f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}"
        ) from None
    module = importlib.import_module(f"{__name__}.{module_name}")
    text: str = module.render(result, rules, fail_on=fail_on, color=color)
    return text


# Paths from os.fsdecode carry undecodable bytes as lone surrogates, which no UTF-8 stream
# accepts; print would fail on the whole report for one odd file name.
_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_surrogates(json_text: str) -> str:
    """Write lone surrogates in JSON text as ``\\uXXXX`` escapes that decode to the same string."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json_text)


def replace_surrogates(text: str) -> str:
    """U+FFFD for each lone surrogate, as a UTF-8 writer such as Node's stdout would put it."""
    return _SURROGATE.sub("\ufffd", text)


class Region(NamedTuple):
    """A finding's span made safe for viewers: 1-based, non-empty, end column exclusive."""

    start_line: int
    start_column: int
    end_line: int
    end_column: int


def region(finding: Finding) -> Region:
    # Rules and models may report 0 or an end before the start for "the whole line" or "somewhere
    # here"; SARIF rejects values below 1 and GitHub drops empty single-line spans.
    start_line = max(1, finding.line)
    start_column = max(1, finding.column)
    if finding.end_line > start_line:
        return Region(start_line, start_column, finding.end_line, max(1, finding.end_column))
    if finding.end_line < start_line:
        # An end before the start says nothing about where the span ends: mark one character.
        return Region(start_line, start_column, start_line, start_column + 1)
    return Region(start_line, start_column, start_line, max(start_column + 1, finding.end_column))


class SkipGroup(NamedTuple):
    """Rule or model skips that share everything but the file, reported once."""

    rule: str
    level: int | None
    reason: str
    message: str
    hint: str | None
    paths: tuple[str, ...]  # distinct, sorted; empty when the skip named no file


def file_skips(skipped: Iterable[Skipped]) -> list[Skipped]:
    """Whole files that were not linted (``rule`` is None), in path order."""
    return sorted(
        (s for s in skipped if s.rule is None),
        key=lambda s: (s.path or "", s.reason, s.message),
    )


def group_rule_skips(skipped: Iterable[Skipped]) -> list[SkipGroup]:
    """Checks that did not run, one group per (rule, reason, message, hint), sorted."""
    groups: dict[tuple[str, str, str, str | None], tuple[int | None, set[str]]] = {}
    for s in skipped:
        if s.rule is None:
            continue
        key = (s.rule, s.reason, s.message, s.hint)
        level, paths = groups.setdefault(key, (s.level, set()))
        if level is None and s.level is not None:
            groups[key] = (s.level, paths)
        if s.path is not None:
            paths.add(s.path)
    return [
        SkipGroup(rule, level, reason, message, hint, tuple(sorted(paths)))
        for (rule, reason, message, hint), (level, paths) in sorted(
            groups.items(), key=lambda item: tuple(part or "" for part in item[0])
        )
    ]
