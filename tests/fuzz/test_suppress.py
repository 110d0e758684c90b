"""Fuzzing the inline suppression parser (``tinyarms: ignore[rule-id]``).

Any line parses without error to directives that point at themselves; a directive says exactly
the ids it lists; and a malformed one never silences more than it names.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import LintCode
from tests.fuzz.strategies import NASTY_CHARS, TEXT
from tinyarms import suppress
from tinyarms.finding import Finding

_IDS = st.from_regex(r"[a-z0-9][a-z0-9-]{0,15}", fullmatch=True)
_COMMENTS = st.sampled_from(["# ", "// ", "/* ", "* ", "{/* ", "<!-- ", "-- ", "#", "  # "])
_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_LINES = TEXT | st.lists(
    NASTY_CHARS | st.sampled_from(["tinyarms:", "ignore", "ignore-file", "[", "]", ",", " ", "-", "x"]), max_size=12,
).map("".join)


@given(lines=st.lists(_LINES, max_size=6))
def test_any_lines_parse_to_directives_that_point_at_themselves(lines: list[str]) -> None:
    for d in suppress.parse(lines):
        row = lines[d.line - 1]
        assert 1 <= d.column < d.end_column <= len(row) + 1
        assert row[d.column - 1 : d.end_column - 1].startswith("tinyarms:")
        assert d.ids is None or all(rule.strip() == rule and rule for rule in d.ids)


@given(ids=st.lists(_IDS, min_size=1, max_size=4), comment=_COMMENTS, before=_SPACE, inside=_SPACE,
       code=st.sampled_from(["", "x = 1  ", "f(4500); "]), tail=st.sampled_from(["", " */", " -->", " trailing words"]))
def test_a_directive_names_exactly_its_ids(ids: list[str], comment: str, before: str, inside: str, code: str,
                                           tail: str) -> None:
    listed = f"{inside},{inside}".join(ids)
    line = f"{code}{comment}tinyarms:{before}ignore{before}[{inside}{listed}{inside}]{tail}"

    [d] = suppress.parse([line])

    assert d.ids == frozenset(ids) and not d.file_wide
    assert d.own_line == (code == "")


@given(ids=st.lists(_IDS, min_size=1, max_size=3), cut=st.sampled_from(["]", "", " */", "\n"]))
def test_a_malformed_directive_never_silences_every_rule(ids: list[str], cut: str) -> None:
    """``ignore[magic-numbers`` (the bracket never closed) or ``ignore [x]`` must not act as the
    bare ``ignore`` that silences everything: a typo would hide every finding on the line."""
    line = f"x = 4500  # tinyarms: ignore[{','.join(ids)}{cut}"
    findings = [Finding("a.py", 1, 5, 1, 9, "some-other-rule", "s", "warning", "m")]

    kept, _ = suppress.apply(findings, suppress.parse(line.split("\n")))

    assert kept == findings


def test_suppression_in_a_real_lint_with_crlf_and_bom(lint_code: LintCode) -> None:
    code = ("\ufeffa = 41  # tinyarms: ignore[magic-numbers]\r\nb = 42\r\n"
            "# tinyarms: ignore [magic-numbers]\r\nc = 43\r\n")
    assert [f.line for f in lint_code(code, "m.py", rule="magic-numbers")] == [2]
    broken = "a = 41  # tinyarms: ignore[magic-numbers\nb = '#ff0000'  # tinyarms: ignore[magic-numbers\n"
    assert sorted(f.rule for f in lint_code(broken, "m.py")) == ["hardcoded-colors", "magic-numbers"]
