from __future__ import annotations

import re

import pytest

from tinyarms.finding import Finding, LintResult, Skipped
from tinyarms.render import render
from tinyarms.render.github import escape_data, escape_property


def finding(**overrides) -> Finding:
    fields = dict(path="src/app.py", line=12, column=5, end_line=12, end_column=14,
                  rule="magic-numbers", skill="code-linting-fast", severity="warning",
                  message="Magic number 42")
    fields.update(overrides)
    return Finding(**fields)


def github(result: LintResult) -> str:
    return render("github", result, {})


def test_one_workflow_command_per_finding_in_the_documented_shape():
    out = github(LintResult(findings=[finding()]))

    assert out == (
        "::warning file=src/app.py,line=12,col=5,endLine=12,endColumn=14,"
        "title=magic-numbers::Magic number 42\n"
    )


@pytest.mark.parametrize(("severity", "command"), [
    ("error", "error"), ("warning", "warning"), ("info", "notice"),
])
def test_severity_maps_to_the_annotation_command(severity, command):
    out = github(LintResult(findings=[finding(severity=severity)]))

    assert out.startswith(f"::{command} file=")


def test_nothing_to_report_prints_nothing():
    assert github(LintResult(stats={"files": 12})) == ""


def test_message_with_percent_comma_colon_and_newlines_is_escaped_like_the_toolkit():
    f = finding(path="src/a,b:c%d.py", rule="rule:with,chars",
                message="100% sure: a, b\r\nsecond line\n::error::forged")

    (line,) = github(LintResult(findings=[f])).splitlines()

    assert line == (
        "::warning file=src/a%2Cb%3Ac%25d.py,line=12,col=5,endLine=12,endColumn=14,"
        "title=rule%3Awith%2Cchars::100%25 sure: a, b%0D%0Asecond line%0A::error::forged"
    )


def test_escaping_order_does_not_double_escape():
    assert escape_data("%0A\n") == "%250A%0A"
    assert escape_property("%3A:,\r") == "%253A%3A%2C%0D"


def test_suggestion_follows_the_message_on_a_new_annotation_line():
    (line,) = github(LintResult(findings=[finding(suggestion="ANSWER = 42")])).splitlines()

    assert line.endswith("::Magic number 42%0ASuggestion: ANSWER = 42")


def test_path_with_spaces_and_non_ascii_is_kept_readable():
    (line,) = github(LintResult(findings=[finding(path="src/my dir/naïve café.py")])).splitlines()

    assert line.startswith("::warning file=src/my dir/naïve café.py,line=12,")


def test_multi_line_span_leaves_out_columns_which_github_only_takes_on_one_line():
    (line,) = github(LintResult(findings=[finding(line=3, end_line=7)])).splitlines()

    assert line == "::warning file=src/app.py,line=3,endLine=7,title=magic-numbers::Magic number 42"


def test_degenerate_positions_become_a_valid_one_character_span():
    (line,) = github(LintResult(findings=[
        finding(line=0, column=0, end_line=0, end_column=0),
    ])).splitlines()

    assert "line=1,col=1,endLine=1,endColumn=2," in line


def test_findings_are_ordered_by_file_and_line():
    out = github(LintResult(findings=[
        finding(path="b.py", line=1), finding(path="a.py", line=9), finding(path="a.py", line=2),
    ]))

    assert re.findall(r"file=([^,]+),line=(\d+)", out) == [("a.py", "2"), ("a.py", "9"),
                                                           ("b.py", "1")]


def test_skipped_entries_are_notices_titled_tinyarms_skipped():
    skipped = [
        Skipped(path="logo.png", reason="binary", message="binary file"),
        *[
            Skipped(path=f"src/f{i}.py", reason="model-unavailable",
                    message="Ollama is not running", rule="simple-dry", level=2,
                    hint="ollama serve")
            for i in range(2)
        ],
    ]

    lines = github(LintResult(skipped=skipped)).splitlines()

    assert lines == [
        "::notice file=logo.png,title=tinyarms skipped::skipped (binary): binary file",
        "::notice title=tinyarms skipped::skipped simple-dry (level 2) on 2 files "
        "(src/f0.py, src/f1.py): Ollama is not running%0AHint: ollama serve",
    ]


def test_every_line_is_a_single_workflow_command():
    out = github(LintResult(
        findings=[finding(message="a\nb\rc", suggestion="d\ne", path="x\ny.py")],
        skipped=[Skipped(path="p\nq", reason="r\n", message="m\nn", hint="h\nh")],
    ))

    lines = out.splitlines()
    assert len(lines) == 2
    assert all(re.fullmatch(r"::(error|warning|notice) [^\r\n]*::[^\r\n]*", ln) for ln in lines)


def test_undecodable_file_name_does_not_make_the_output_unprintable():
    out = github(LintResult(findings=[finding(path="odd\udcff.py")]))

    out.encode("utf-8")
    assert "file=odd\ufffd.py," in out
