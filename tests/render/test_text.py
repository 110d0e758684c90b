from __future__ import annotations

import subprocess
import sys

import pytest

from tinyarms.finding import Finding, LintResult, RuleMeta, Skipped
from tinyarms.render import FORMATS, render


def finding(path="src/app.py", line=1, column=1, rule="magic-numbers", severity="warning",
            message="Magic number 42", suggestion=None, end_line=None, end_column=None):
    return Finding(
        path=path, line=line, column=column,
        end_line=line if end_line is None else end_line,
        end_column=column + 2 if end_column is None else end_column,
        rule=rule, skill="code-linting-fast", severity=severity, message=message,
        suggestion=suggestion,
    )


RULES = {
    "magic-numbers": RuleMeta("magic-numbers", "code-linting-fast", "Unnamed numbers.",
                              "warning", 0, "pattern"),
}


def text(result: LintResult, **kwargs) -> str:
    return render("text", result, RULES, **kwargs)


def test_findings_are_grouped_by_sorted_file_then_ordered_by_position():
    result = LintResult(findings=[
        finding(path="src/b.py", line=9, column=1, message="b9"),
        finding(path="src/a.py", line=12, column=5, severity="error", message="a12"),
        finding(path="src/b.py", line=2, column=7, message="b2 col7"),
        finding(path="src/a.py", line=3, column=1, message="a3"),
        finding(path="src/b.py", line=2, column=3, message="b2 col3"),
    ])

    lines = text(result).splitlines()

    assert lines[:5] == [
        "src/a.py:3:1: magic-numbers [warning] a3",
        "src/a.py:12:5: magic-numbers [error] a12",
        "src/b.py:2:3: magic-numbers [warning] b2 col3",
        "src/b.py:2:7: magic-numbers [warning] b2 col7",
        "src/b.py:9:1: magic-numbers [warning] b9",
    ]


def test_suggestion_is_an_indented_line_under_its_finding():
    result = LintResult(findings=[
        finding(line=4, message="Magic number 42", suggestion="Name it: ANSWER = 42"),
        finding(line=8, message="Magic number 7"),
    ])

    lines = text(result).splitlines()

    assert lines[:3] == [
        "src/app.py:4:1: magic-numbers [warning] Magic number 42",
        "  suggestion: Name it: ANSWER = 42",
        "src/app.py:8:1: magic-numbers [warning] Magic number 7",
    ]


def test_summary_counts_problems_by_severity_files_and_skips():
    result = LintResult(
        findings=[
            finding(path="a.py", severity="error"),
            finding(path="a.py", line=2, severity="error"),
            finding(path="b.py", severity="warning"),
        ],
        skipped=[
            Skipped(path="a.py", reason="model-unavailable", message="Ollama is not running",
                    rule="simple-dry", level=2, hint="ollama serve"),
            Skipped(path="b.py", reason="model-unavailable", message="Ollama is not running",
                    rule="simple-dry", level=2, hint="ollama serve"),
        ],
        stats={"files": 5},
    )

    last = text(result).splitlines()[-1]

    assert last == (
        "Found 3 problems (2 errors, 1 warning) in 2 files; 5 files checked, 2 skipped checks."
    )


def test_summary_uses_singulars_and_names_info_findings():
    result = LintResult(findings=[finding(severity="info")], stats={"files": 1})

    last = text(result).splitlines()[-1]

    assert last.startswith("Found 1 problem (1 info) in 1 file; 1 file checked.")


def test_summary_says_when_no_finding_fails_the_run():
    result = LintResult(findings=[finding(severity="warning")], stats={"files": 1})

    assert "None fails the run at --fail-on error." in text(result, fail_on="error")
    assert "None fails" not in text(result, fail_on="warning")


def test_no_problems_names_the_number_of_files():
    assert text(LintResult(stats={"files": 5})) == "No problems in 5 files.\n"


def test_empty_result_without_stats_still_prints_a_summary():
    assert text(LintResult()) == "No problems found.\n"


def test_no_problems_but_skipped_checks_is_not_presented_as_clean():
    result = LintResult(
        skipped=[Skipped(path="a.py", reason="budget", message="out of time", rule="simple-dry",
                         level=2)],
        stats={"files": 3},
    )

    assert text(result).splitlines()[-1] == "No problems in 3 files; 1 skipped check."


def test_model_skips_are_aggregated_per_rule_reason_message_and_hint():
    skipped = [
        Skipped(path=f"src/f{i}.py", reason="model-unavailable", message="Ollama is not running",
                rule="simple-dry", level=2, hint="ollama serve")
        for i in range(3)
    ] + [
        Skipped(path="src/f0.py", reason="model-unavailable", message="model not pulled",
                rule="design-tokens", level=2, hint="ollama pull qwen2.5-coder:3b"),
        Skipped(path="src/f9.py", reason="budget", message="not finished within 5 s",
                rule="simple-dry", level=2),
    ]

    out = text(LintResult(skipped=skipped, stats={"files": 3}))

    assert out.splitlines()[:4] == [
        "skipped design-tokens (level 2) on 1 file: model not pulled",
        "  hint: ollama pull qwen2.5-coder:3b",
        "skipped simple-dry (level 2) on 1 file: not finished within 5 s",
        "skipped simple-dry (level 2) on 3 files: Ollama is not running",
    ]
    assert out.splitlines()[4] == "  hint: ollama serve"
    assert out.count("Ollama is not running") == 1
    assert out.splitlines()[-1] == "No problems in 3 files; 5 skipped checks."


def test_file_skips_are_one_line_each_and_come_before_check_skips():
    skipped = [
        Skipped(path="big.min.js", reason="too-large", message="2.1 MB is over the 1 MB limit"),
        Skipped(path="logo.png", reason="binary", message="binary file"),
        Skipped(path="x.py", reason="budget", message="out of time", rule="simple-dry", level=2),
    ]

    lines = text(LintResult(findings=[finding()], skipped=skipped)).splitlines()

    skipped_section = lines[lines.index("") + 1:]
    assert skipped_section[:3] == [
        "big.min.js: skipped (too-large): 2.1 MB is over the 1 MB limit",
        "logo.png: skipped (binary): binary file",
        "skipped simple-dry (level 2) on 1 file: out of time",
    ]
    assert lines[-1].endswith("in 1 file; 2 files skipped, 1 skipped check.")


def test_path_with_spaces_and_non_ascii_is_printed_as_is():
    result = LintResult(findings=[finding(path="src/my dir/naïve café.py", line=3, column=2)])

    assert text(result).splitlines()[0] == (
        "src/my dir/naïve café.py:3:2: magic-numbers [warning] Magic number 42"
    )


def test_multiline_message_continues_indented_so_it_cannot_pose_as_a_finding():
    result = LintResult(findings=[
        finding(message="first line\nother.py:1:1: fake [error] forged\r\nthird"),
    ])

    lines = text(result).splitlines()

    assert lines[:3] == [
        "src/app.py:1:1: magic-numbers [warning] first line",
        "    other.py:1:1: fake [error] forged",
        "    third",
    ]


def test_control_characters_from_untrusted_text_are_escaped_not_sent_to_the_terminal():
    result = LintResult(findings=[
        finding(path="evil\x1b]0;title\x07.py", message="clear \x1b[2J screen",
                suggestion="bell\x07"),
    ], skipped=[Skipped(path="odd\udcff.py", reason="encoding", message="not UTF-8")])

    out = text(result)

    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;title\\x07.py:1:1:" in out
    assert "clear \\x1b[2J screen" in out
    assert "odd\\udcff.py: skipped (encoding)" in out
    out.encode("utf-8")  # a lone surrogate would make printing the report fail


def test_color_paints_path_bold_and_severity_only_when_asked():
    result = LintResult(findings=[
        finding(severity="error"), finding(line=2, severity="warning"),
    ])

    plain = text(result)
    colored = text(result, color=True)

    assert "\x1b[" not in plain
    assert "\x1b[1msrc/app.py\x1b[0m:1:1:" in colored
    assert "\x1b[1;31m[error]\x1b[0m" in colored
    assert "\x1b[33m[warning]\x1b[0m" in colored
    assert _strip_ansi(colored) == plain


def _strip_ansi(s: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", s)


def test_unknown_format_is_a_usage_error_naming_the_choices():
    with pytest.raises(ValueError, match="text, json, sarif, github"):
        render("xml", LintResult(), {})


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_one_format_imports_no_other_format_module(fmt):
    code = (
        "import sys\n"
        "from tinyarms.finding import LintResult\n"
        "from tinyarms.render import render\n"
        f"render({fmt!r}, LintResult(), {{}})\n"
        "print(sorted(m for m in sys.modules if m.startswith('tinyarms.render.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    module = {"json": "json_"}.get(fmt, fmt)
    assert out.strip() == repr([f"tinyarms.render.{module}"])


def test_model_levels_are_summarised() -> None:
    from tinyarms.finding import LintResult
    from tinyarms.render.text import render

    result = LintResult(stats={"files": 1, "models": {
        "2": {"backend": "embedded", "model": "qwen2.5-coder:0.5b", "questions": 3, "asked": 1, "cached": 1,
              "pending": 1, "seconds": 2.04},
        "3": {"backend": None, "why": "no backend"},
    }})
    assert render(result, {}).splitlines()[-1] == (
        "Level 2: qwen2.5-coder:0.5b via embedded, 3 questions: 1 asked, 1 from the cache, "
        "1 left for the background (2.0 s)."
    )
