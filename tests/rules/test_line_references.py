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


def test_a_link_pinned_to_a_commit_cites_lines_that_never_move(lint_code: LintCode) -> None:
    code = (
        "// from https://github.com/vuejs/core/blob/caeb8a68811a1b0f7/packages/runtime-dom/src/modules/style.ts#L90-L101\n"
        "// as in https://github.com/acme/app/blob/main/src/app.ts#L285\n"
        "// see line 42 of the pinned https://example.org/x/blob/0123abc/y.ts\n"
        "export const a = 1;\n"
    )
    found = lint_code(code, "src/style.ts", rule="line-references")
    assert [(f.line, f.message) for f in found] == [
        (2, found[0].message), (3, found[1].message),
    ] and "L285" in found[0].message and "line 42" in found[1].message
