from tests.conftest import LintCode, at

RULE = "line-references"


def test_comments_citing_lines(lint_code: LintCode) -> None:
    code = (
        "# see line 42 for the retry loop\n"
        "x = 1  # fixed in L120-L130\n"
        "# copied from utils/net.py:88\n"
        "# an inline comment, offline mode, L2 cache, l10n\n"
        's = "see line 42"  # strings are not comments\n'
    )
    found = lint_code(code, "a.py", rule=RULE)
    assert [(f.line, f.column, f.message.split("(")[1].split(")")[0]) for f in found] == [
        (*at(code, 1, "line 42"), "line 42"), (*at(code, 2, "L120-L130"), "L120-L130"),
        (*at(code, 3, "utils/net.py:88"), "utils/net.py:88"),
    ]
    assert all(f.severity == "info" for f in found)


def test_js_and_css_comments(lint_code: LintCode) -> None:
    assert len(lint_code("/* lines 10-20 */\nconst a = 'line 3';\n", "a.js", rule=RULE)) == 1
    assert len(lint_code("/* see line 7 */ a { color: red; }\n", "a.css", rule=RULE)) == 1
