"""Fuzzing the renderers with hostile findings: unicode, control characters, line separators,
huge messages, odd paths and numbers. SARIF stays schema-valid, JSON parses (strictly: no NaN),
text keeps one finding per line and github one command per line, and nothing raises."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.strategies import TEXT
from tests.render.test_sarif import assert_valid_sarif
from tinyarms.finding import SEVERITIES, Finding, LintResult, RuleMeta, Skipped
from tinyarms.render import render, replace_surrogates
from tinyarms.render.text import _printable

_HUGE = st.builds(lambda piece, n: piece * n, TEXT.filter(bool), st.integers(1000, 5000))
_MESSAGES = TEXT | _HUGE
_PATHS = TEXT | st.sampled_from(["", "/abs/x.py", "C:\\win\\x.ts", "a b/#?.py", "../up.py", "-rf", "%SRCROOT%",
                                  "//host/x", "file:///x", "b\udcffd.ts", "a\nb.py", "x.py:3:4: fake"])
_NUMBERS = st.integers(-3, 10**9)
_findings = st.builds(
    Finding, path=_PATHS, line=_NUMBERS, column=_NUMBERS, end_line=_NUMBERS, end_column=_NUMBERS,
    rule=TEXT, skill=TEXT, severity=st.sampled_from(SEVERITIES), message=_MESSAGES,
    suggestion=st.none() | _MESSAGES, level=st.integers(0, 3), engine=st.sampled_from(["pattern", "ast", "model"]),
    model=st.none() | TEXT, confidence=st.floats() | st.sampled_from([float("nan"), float("-inf")]), fingerprint=TEXT,
)
_skipped = st.builds(Skipped, path=st.none() | _PATHS, reason=TEXT, message=_MESSAGES, rule=st.none() | TEXT,
                     level=st.none() | st.integers(0, 3), hint=st.none() | TEXT)
_rules = st.lists(st.builds(RuleMeta, id=TEXT, skill=TEXT, description=_MESSAGES,
                            severity=st.sampled_from(SEVERITIES), level=st.integers(0, 3),
                            engine=st.sampled_from(["pattern", "ast", "model"]), suggestion=st.none() | TEXT),
                  max_size=2).map(lambda metas: {m.id: m for m in metas})
_results = st.builds(LintResult, findings=st.lists(_findings, max_size=4), skipped=st.lists(_skipped, max_size=3),
                     stats=st.fixed_dictionaries({"files": st.integers(0, 10**6)}))
# What str.splitlines() (and so editors and log viewers) break lines on, beyond "\n".
_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def _reject(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


@given(result=_results, rules=_rules)
def test_sarif_is_always_schema_valid(result: LintResult, rules: dict[str, RuleMeta]) -> None:
    out = render("sarif", result, rules)

    out.encode("utf-8")
    log = json.loads(out, parse_constant=_reject)
    assert_valid_sarif(log)
    assert len(log["runs"][0]["results"]) == len(result.findings)


@given(result=_results)
def test_json_always_parses_strictly_back_to_the_result(result: LintResult) -> None:
    out = render("json", result, {})

    out.encode("utf-8")
    data = json.loads(out, parse_constant=_reject)
    expected = result.to_dict()
    for f in expected["findings"]:
        if f["confidence"] != f["confidence"] or f["confidence"] in (float("inf"), float("-inf")):
            f["confidence"] = None
    assert data == expected


@given(result=_results, color=st.booleans())
def test_text_keeps_one_finding_per_line(result: LintResult, color: bool) -> None:
    out = render("text", result, {}, color=color)

    out.encode("utf-8")
    assert not _LINE_BREAKS.search(out.replace("\x1b[", "")), "a character that breaks the line"
    lines = out.split("\n")
    if result.findings:
        section = lines[: lines.index("")]
        expected = sum(
            1 + _breaks(f.message) + (1 + _breaks(f.suggestion) if f.suggestion else 0) for f in result.findings)
        assert len(section) == expected
        starts = [line for line in section if not line.startswith("  ")]
        assert len(starts) == len(result.findings) or any(_printable(f.path).startswith("  ") for f in result.findings)
        for f in result.findings:
            assert f"{_printable(f.path)}:{f.line}:{f.column}: " in out or color


def _breaks(text: str) -> int:
    return text.replace("\r\n", "\n").count("\n")


@given(result=_results)
def test_github_gives_one_command_per_line_that_unescapes_to_the_message(result: LintResult) -> None:
    out = render("github", result, {})

    out.encode("utf-8")
    lines = out.split("\n")
    assert lines[-1] == ""
    commands = lines[:-1]
    assert all(line.startswith("::") for line in commands)
    assert not any("\r" in line for line in commands)
    assert len(commands) >= len(result.findings)
    messages = sorted(_unescape(c.split("::", 2)[2]) for c in commands[: len(result.findings)])
    expected = sorted(replace_surrogates(f.message if not f.suggestion else f"{f.message}\nSuggestion: {f.suggestion}")
                      for f in sorted(result.findings, key=lambda f: (f.path, f.line, f.column, f.rule)))
    assert messages == expected


def _unescape(value: str) -> str:
    return value.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")
