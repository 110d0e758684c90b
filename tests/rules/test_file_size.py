from tests.conftest import LintCode


def test_counts_non_blank_lines_against_the_limit(lint_code: LintCode) -> None:
    code = "\n\n".join(f"x{i} = {i}" for i in range(351)) + "\n   \n"
    [finding] = lint_code(code, "big.py", rule="file-size")
    assert (finding.line, finding.column) == (1, 1)
    assert "351 non-blank lines (limit 350)" in finding.message
    assert lint_code("\n".join(["y = 1"] * 350), "ok.py", rule="file-size") == []


def test_limit_is_a_parameter(lint_code: LintCode) -> None:
    assert len(lint_code("a\nb\nc\n", "s.css", rule="file-size", params={"max_lines": 2})) == 1
