import json

from tests.conftest import LintCode, run_cli


def test_same_line_line_above_and_several_ids(lint_code: LintCode) -> None:
    code = (
        "a = 41  # tinyarms: ignore[magic-numbers]\n"
        "b = 42\n"  # the trailing comment above covers only its own line
        "# tinyarms: ignore[hardcoded-colors, magic-numbers]\n"
        'c = f(43, "#ff0000")\n'
        "d = 44  # tinyarms: ignore[hardcoded-colors]\n"  # wrong id: still reported
        "e = 45  # tinyarms: ignore\n"  # bare: every rule
    )
    outcome = lint_code(code, "m.py", outcome=True)
    assert [(f.line, f.rule) for f in outcome.findings] == [(2, "magic-numbers"), (5, "magic-numbers")]
    assert outcome.suppressed == 4


def test_ignore_file(lint_code: LintCode) -> None:
    code = "a = 41\n# tinyarms: ignore-file[magic-numbers]\nb = '#ff0000'\n"
    assert [f.rule for f in lint_code(code, "m.py")] == ["hardcoded-colors"]


def test_jsx_and_css_comments(lint_code: LintCode) -> None:
    tsx = ('const A = () => (\n  <div>\n    {/* tinyarms: ignore[hardcoded-colors] */}\n'
           '    <p className="text-[#00ff00]" />\n  </div>\n);\n')
    assert lint_code(tsx, "A.tsx", rule="hardcoded-colors") == []
    css = "/* tinyarms: ignore[hardcoded-colors] */\na { color: #fff; }\nb { color: #000; }\n"
    assert [f.line for f in lint_code(css, "a.css", rule="hardcoded-colors")] == [3]


def test_unused_suppressions_are_reported_on_request(tmp_path) -> None:
    (tmp_path / "m.py").write_text(
        "a = 1  # tinyarms: ignore[magic-numbers]\nb = 77  # tinyarms: ignore[magic-numbers, hardcoded-colors]\n"
    )
    quiet = run_cli("lint", "--format", "text", "m.py", cwd=tmp_path)
    assert quiet.returncode == 0 and "unused" not in quiet.stdout
    loud = run_cli("lint", "--format", "text", "--report-unused-ignores", "m.py", cwd=tmp_path)
    assert loud.returncode == 1
    lines = [line for line in loud.stdout.splitlines() if "unused-suppression" in line]
    assert lines == [
        "m.py:1:10: unused-suppression [warning] unused suppression: 'magic-numbers' matched no finding",
        "m.py:2:11: unused-suppression [warning] unused suppression: 'hardcoded-colors' matched no finding",
    ]


def test_a_directive_quoted_in_a_string_or_docstring_is_no_directive(tmp_path) -> None:
    # The suppress module's own docstring shows the syntax; a test builds directives in strings.
    (tmp_path / "m.py").write_text(
        '"""Write ``tinyarms: ignore[magic-numbers]`` to silence a line."""\n'
        'HELP = "x = 99  # tinyarms: ignore[magic-numbers]"; y = 77\n'
        "z = 78  # tinyarms: ignore[magic-numbers]\n"
    )
    (tmp_path / "a.css").write_text('a::after { content: "tinyarms: ignore"; color: #fff; }\n')
    done = run_cli("lint", "--format", "json", "--report-unused-ignores", "m.py", "a.css", cwd=tmp_path)
    found = [(f["path"], f["line"], f["rule"]) for f in json.loads(done.stdout)["findings"]]
    # the quoted directives silence nothing (77 is reported), the real one is used, none is reported unused
    assert found == [("a.css", 1, "hardcoded-colors"), ("m.py", 2, "magic-numbers")], done.stdout
