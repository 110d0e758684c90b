from tests.conftest import LintCode
from tinyarms.finding import Finding, fails


def test_fingerprints_survive_code_moving_and_tell_twins_apart(lint_code: LintCode) -> None:
    code = "def f():\n    return g(37) + g(37)\n"
    before = lint_code(code, "m.py", rule="magic-numbers")
    after = lint_code("import os\n\n\n" + code.replace("    ", "        "), "m.py", rule="magic-numbers")
    assert [f.line for f in after] == [f.line + 3 for f in before]
    assert [f.fingerprint for f in after] == [f.fingerprint for f in before]
    assert len({f.fingerprint for f in before}) == 2
    assert lint_code(code, "other.py", rule="magic-numbers")[0].fingerprint != before[0].fingerprint
    assert lint_code(code.replace("37", "38"), "m.py", rule="magic-numbers")[0].fingerprint != before[0].fingerprint


def test_info_never_fails() -> None:
    def finding(severity):
        return Finding("a", 1, 1, 1, 2, "r", "s", severity, "m")

    assert [fails(finding(s), "warning") for s in ("error", "warning", "info")] == [True, True, False]
    assert [fails(finding(s), "error") for s in ("error", "warning", "info")] == [True, False, False]


def test_fail_on_never_fails_nothing() -> None:
    assert not fails(Finding("a", 1, 1, 1, 2, "r", "s", "error", "m"), "never")
