import json

import pytest

from tinyarms.models.answer import BadAnswer, parse, schema


def test_schema_is_bounded_and_names_only_the_asked_rules() -> None:
    s = schema(["simple-dry"])
    items = s["properties"]["violations"]
    assert items["maxItems"] <= 8
    props = items["items"]["properties"]
    assert props["rule"]["enum"] == ["simple-dry"]
    assert props["message"]["maxLength"] <= 200 and props["suggestion"]["maxLength"] <= 200


def test_untrusted_answers_are_trimmed_to_what_was_asked() -> None:
    text = json.dumps({"violations": [
        {"rule": "simple-dry", "line": 12, "message": "dup\x1b[31m of\nf()", "suggestion": "extract", "confidence": 3},
        {"rule": "simple-dry", "line": 12, "message": "twice", "suggestion": "", "confidence": 0.2},
        {"rule": "simple-dry", "line": 99, "message": "outside what was shown", "suggestion": "", "confidence": 1},
        {"rule": "rm -rf /", "line": 12, "message": "unknown rule", "suggestion": "", "confidence": 1},
    ]})
    kept, dropped = parse(text, {"simple-dry"}, {12, 13})
    assert dropped == 3
    [v] = kept
    assert (v.rule, v.line, v.confidence) == ("simple-dry", 12, 1.0)
    assert v.message == "dup [31m of f()"  # no control characters reach a terminal


def test_raw_control_characters_inside_strings_are_tolerated() -> None:
    text = '{"violations": [{"rule": "r", "line": 1, "message": "a\tb\nc", "suggestion": "s", "confidence": 0.5}]}'
    kept, _ = parse(text, {"r"}, {1})
    assert kept[0].message == "a b c"


@pytest.mark.parametrize("text", ["", "not json", '{"violations": "no"}', "[1, 2]", '{"violations": [{"rule": "r"}]}',
                                  '{"violations": [{"rule": "r", "line": "twelve", "message": "m"}]}'])
def test_garbage_is_a_bad_answer(text: str) -> None:
    with pytest.raises(BadAnswer):
        parse(text, {"r"}, {1})
