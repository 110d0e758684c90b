"""Inline suppressions: ``tinyarms: ignore[rule-a, rule-b]`` on the line or the line above,
``tinyarms: ignore-file[rule-a]`` anywhere; a bare ``tinyarms: ignore`` silences every rule.

"The line above" means a comment on a line of its own. A comment that trails code covers only
its own line, so ``f(4500)  # tinyarms: ignore[magic-numbers]`` does not also silence the
next line (eslint's ``disable-line`` / ``disable-next-line`` distinction, without two spellings).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from tinyarms.finding import Finding

# The id list may follow a space; a "[" that is never closed makes no directive at all, since
# read as a bare "ignore" a typo would silence every rule on the line.
_DIRECTIVE = re.compile(r"tinyarms:\s*(ignore-file|ignore)(?![\w-])(?:\s*\[([^\]]*)\]|(?!\s*\[))")
_COMMENT_START = re.compile(r"\s*(?:#|//|/\*|\*|\{/\*|<!--|--)")
UNUSED_RULE = "unused-suppression"


@dataclass(slots=True)
class Directive:
    line: int
    column: int
    end_column: int
    file_wide: bool
    ids: frozenset[str] | None  # None: every rule
    own_line: bool  # alone on its line: also covers the next line
    used: set[str] = field(default_factory=set)

    def covers(self, rule: str) -> bool:
        return self.ids is None or rule in self.ids


def parse(lines: list[str], in_comment: Callable[[int, int], bool] | None = None) -> list[Directive]:
    """The directives in ``lines``. ``in_comment(line, column)``, both 1-based: whether that place
    is inside a comment, where the file's syntax tells (a directive quoted in a string or a
    docstring is no directive); without it every match counts."""
    out = []
    for number, line in enumerate(lines, 1):
        if "tinyarms:" not in line:
            continue
        for match in _DIRECTIVE.finditer(line):
            if in_comment is not None and not in_comment(number, match.start() + 1):
                continue
            ids = None
            if match.group(2) is not None:
                ids = frozenset(part.strip() for part in match.group(2).split(",") if part.strip())
            own_line = _COMMENT_START.match(line) is not None
            out.append(Directive(
                number, match.start() + 1, match.end() + 1, match.group(1) == "ignore-file", ids, own_line,
            ))
    return out


def apply(findings: list[Finding], directives: list[Directive]) -> tuple[list[Finding], int]:
    """Drop suppressed findings; returns what is kept and how many were suppressed."""
    if not directives:
        return findings, 0
    kept = []
    for finding in findings:
        for d in directives:
            near = d.line == finding.line or (d.own_line and d.line == finding.line - 1)
            if (d.file_wide or near) and d.covers(finding.rule):
                d.used.add(finding.rule)
                break
        else:
            kept.append(finding)
    return kept, len(findings) - len(kept)


def unused(directives: list[Directive], active_ids: set[str]) -> list[tuple[Directive, str]]:
    """Suppressions that silenced nothing, as (directive, what was unused). Ids of rules that
    did not run on this file (disabled, not selected) are not reported: they may be needed."""
    out = []
    for d in directives:
        if d.ids is None:
            if not d.used:
                out.append((d, "suppression matched no finding"))
            continue
        for rule in sorted(d.ids - d.used):
            if rule in active_ids:
                out.append((d, f"'{rule}' matched no finding"))
    return out
