"""Fuzzing the model-answer validator: any text a model (or a broken server) returns becomes only
valid violations of the rules asked about on the lines shown, or ``BadAnswer``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz.strategies import JSON_VALUES, TEXT
from tinyarms.models.answer import MAX_TEXT, BadAnswer, parse

RULES = {"simple-dry", "design-tokens"}
LINES = {3, 4, 5, 40}

_FIELDS = {
    "rule": st.sampled_from([*sorted(RULES), "magic-numbers", "", "SIMPLE-DRY"]) | JSON_VALUES,
    "line": st.sampled_from([*sorted(LINES), 0, -1, 6, 10**30, 4.0, 4.5, "4", True]) | JSON_VALUES,
    "message": TEXT | st.text(min_size=150, max_size=400) | JSON_VALUES,
    "suggestion": TEXT | st.none() | JSON_VALUES,
    "confidence": st.floats() | st.sampled_from([0, 1, -1, 2, "0.9", None]) | JSON_VALUES,
}
_VIOLATIONS = st.fixed_dictionaries({}, optional=_FIELDS)
_ANSWERS = st.one_of(
    st.fixed_dictionaries({"violations": st.lists(_VIOLATIONS, max_size=6)}).map(json.dumps),
    JSON_VALUES.map(json.dumps),
    st.text(max_size=200),
    st.builds(lambda depth: "[" * depth, st.integers(1, 200_000)),
    st.builds(lambda digits: '{"violations":[{"rule":"simple-dry","line":' + "4" * digits + ',"message":"m"}]}',
              st.integers(4000, 6000)),
    st.fixed_dictionaries({"violations": st.lists(_VIOLATIONS, max_size=3)}).map(json.dumps).flatmap(
        lambda text: st.integers(0, len(text)).map(lambda cut: text[:cut])),  # cut off by max_tokens
)


def assert_only_valid(kept: list[Any], dropped: int) -> None:
    assert dropped >= 0
    assert len({(v.rule, v.line) for v in kept}) == len(kept)
    for v in kept:
        assert v.rule in RULES and v.line in LINES and type(v.line) is int
        assert 0.0 <= v.confidence <= 1.0
        assert v.message and len(v.message) <= MAX_TEXT and v.message.isprintable()
        assert v.suggestion is None or (0 < len(v.suggestion) <= MAX_TEXT and v.suggestion.isprintable())


@given(text=_ANSWERS)
def test_any_answer_gives_only_valid_violations_or_bad_answer(text: str) -> None:
    try:
        kept, dropped = parse(text, RULES, LINES)
    except BadAnswer as exc:
        event("bad-answer")
        assert str(exc)
        return
    event("kept some" if kept else "kept none")
    assert_only_valid(kept, dropped)


@given(violations=st.lists(st.fixed_dictionaries({
    "rule": st.sampled_from([*sorted(RULES), "magic-numbers"]), "line": st.integers(-2, 45),
    "message": TEXT, "suggestion": TEXT, "confidence": st.floats(allow_nan=True),
}), max_size=8))
def test_well_formed_answers_keep_exactly_the_asked_rules_on_shown_lines(violations: list[dict[str, Any]]) -> None:
    kept, dropped = parse(json.dumps({"violations": violations}), RULES, LINES)

    assert_only_valid(kept, dropped)
    wanted = {(v["rule"], v["line"]) for v in violations if v["rule"] in RULES and v["line"] in LINES}
    assert {(v.rule, v.line) for v in kept} == wanted
    assert dropped == len(violations) - len(kept)


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    '{"violations": [{"rule": "simple-dry", "line": ' + "9" * 5000 + ', "message": "m"}]}',
])
def test_hostile_json_is_a_bad_answer(text: str) -> None:
    with pytest.raises(BadAnswer):
        parse(text, RULES, LINES)
