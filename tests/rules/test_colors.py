from tests.conftest import LintCode, at

RULE = "hardcoded-colors"


def spans(findings):
    return [(f.line, f.column, f.message.split()[2].rstrip(";")) for f in findings]


def expect(code, *items):
    """(line, value) pairs -> what ``spans`` gives when each value is found where it stands."""
    return [(*at(code, line, value), value.split()[0]) for line, value in items]


def test_tailwind_arbitrary_value_and_style_object_in_tsx(lint_code: LintCode) -> None:
    code = (
        "export const A = () => (\n"
        '  <div className="bg-[#ff0000] p-4" style={{ color: "#3B82F6" }}>hi</div>\n'
        ");\n"
    )
    found = lint_code(code, "src/A.tsx", rule=RULE)
    assert spans(found) == expect(code, (2, "#ff0000"), (2, "#3B82F6"))
    assert [f.end_column - f.column for f in found] == [7, 7]
    assert all(f.rule == RULE and f.severity == "warning" and f.level == 0 for f in found)


def test_css_hex_and_functions_but_not_tokens_or_var_fallbacks(lint_code: LintCode) -> None:
    code = (
        ":root { --brand: #3b82f6; --shadow: rgba(0, 0, 0, 0.5); }\n"
        ".a { color: #fff; background: rgb(1, 2, 3); border: 1px solid var(--line, #000); }\n"
        "/* #abcdef in a comment */\n"
        ".b { color: hsl(210deg 40% 50%); background-image: url(#fff); }\n"
    )
    assert spans(lint_code(code, "app.css", rule=RULE)) == expect(
        code, (2, "#fff"), (2, "rgb(1,"), (4, "hsl(210deg")
    )


def test_strings_in_python_and_js_but_not_comments_or_docstrings(lint_code: LintCode) -> None:
    py = '"""Palette docs: #ffffff is white."""\n# color #123456 here\nplot(color="#00ff00")\n'
    assert spans(lint_code(py, "plot.py", rule=RULE)) == expect(py, (3, "#00ff00"))
    js = "// #abcdef\nconst c = `color: rgba(10, 20, 30, .5);`;\n"
    assert spans(lint_code(js, "c.js", rule=RULE)) == expect(js, (2, "rgba(10,"))


def test_token_files_are_exempt(lint_code: LintCode) -> None:
    code = 'export const colors = { primary: "#3B82F6" };\n'
    assert lint_code(code, "src/theme.ts", rule=RULE) == []
    assert lint_code(code, "src/design/tokens.ts", rule=RULE) == []
    assert len(lint_code(code, "src/Button.ts", rule=RULE)) == 1


def test_things_that_only_look_like_colours(lint_code: LintCode) -> None:
    code = (
        'const a = <a href="#add">x</a>;\n'  # a fragment, in an attribute that never holds colours
        'const b = "issue #123 and #bad idea";\n'  # words and numbers after '#'
        'const c = "rgb(var(--x))";\n'  # a function of a token
        'const d = "#12345";\n'  # five digits is no colour
        "const e = '&#123;';\n"  # an HTML entity
        'const f = "#fed";\n'  # ...but a whole string of three hex letters is a colour
    )
    assert spans(lint_code(code, "x.jsx", rule=RULE)) == expect(code, (6, "#fed"))


def test_short_hex_counts_where_the_string_reads_as_css(lint_code: LintCode) -> None:
    code = (
        'const a = { border: "1px solid #ccc" };\n'
        'const b = "color: #abc; margin: 0";\n'
        'const c = "see PR #123 and #456";\n'
    )
    assert spans(lint_code(code, "x.ts", rule=RULE)) == expect(code, (1, "#ccc"), (2, "#abc"))


def test_hsl_hue_in_any_angle_unit(lint_code: LintCode) -> None:
    code = (
        ".a { color: hsl(120deg 50% 50%); background: hsl(2.1rad 50% 50%); }\n"
        ".b { color: hsl(0.25turn 50% 50%); border-color: hsla(100grad, 50%, 50%, 0.5); }\n"
    )
    assert spans(lint_code(code, "app.css", rule=RULE)) == expect(
        code, (1, "hsl(120deg"), (1, "hsl(2.1rad"), (2, "hsl(0.25turn"), (2, "hsla(100grad,")
    )
    js = 'const s = { color: "hsl(0.25turn 50% 50%)", fill: "hsl(2.1rad 40% 60%)" };\n'
    assert spans(lint_code(js, "src/s.ts", rule=RULE)) == expect(js, (1, "hsl(0.25turn"), (1, "hsl(2.1rad"))


def test_svg_fragment_references_are_no_colours(lint_code: LintCode) -> None:
    css = ".icon { fill: url(#gradient1); stroke: url(#abc); mask: url(#a1b2c3), #a1b2c3; }\n"
    assert spans(lint_code(css, "icon.css", rule=RULE)) == [(*at(css, 1, "#a1b2c3", nth=1), "#a1b2c3")]
    js = (
        'const Icon = styled.svg`fill: url(#aabbcc); stroke: #aabbcc;`;\n'
        'const path = { fill: "url(#a1b2c3)", stroke: "url(#abc)" };\n'
        'const Dot = () => <circle fill="url(#fade)" stroke="url( #123456 )" />;\n'
    )
    assert spans(lint_code(js, "src/Icon.tsx", rule=RULE)) == [(*at(js, 1, "#aabbcc", nth=1), "#aabbcc")]
