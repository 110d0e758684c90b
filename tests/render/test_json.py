from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyarms.finding import SEVERITIES, Finding, LintResult, Skipped
from tinyarms.render import render


def sample_result() -> LintResult:
    return LintResult(
        findings=[
            Finding(path="src/my dir/naïve.py", line=12, column=5, end_line=12, end_column=14,
                    rule="magic-numbers", skill="code-linting-fast", severity="warning",
                    message="Magic number 42 — name it", suggestion="ANSWER = 42",
                    fingerprint="0123456789abcdef0123"),
            Finding(path="src/app.py", line=3, column=1, end_line=9, end_column=1,
                    rule="simple-dry", skill="code-linting-fast", severity="info",
                    message="Duplicated block", level=2, engine="model",
                    model="qwen2.5-coder:3b", confidence=0.75),
        ],
        skipped=[
            Skipped(path="logo.png", reason="binary", message="binary file"),
            Skipped(path="src/app.py", reason="model-unavailable", message="Ollama is not running",
                    rule="design-tokens", level=2, hint="ollama serve"),
        ],
        stats={"files": 3, "duration_ms": 12.5, "cache": {"hits": 1, "misses": 2}},
    )


def test_output_is_to_dict_serialised_compact_on_one_line_with_readable_unicode():
    result = sample_result()

    out = render("json", result, {})

    assert out == json.dumps(result.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
    assert out.count("\n") == 1
    assert "naïve" in out and "—" in out


def test_round_trip_equals_to_dict_and_rebuilds_the_records():
    result = sample_result()

    data = json.loads(render("json", result, {}))

    assert data == result.to_dict()
    assert list(data) == ["findings", "skipped", "stats"]
    assert [Finding.from_dict(f) for f in data["findings"]] == result.findings
    assert [Skipped.from_dict(s) for s in data["skipped"]] == result.skipped


def test_empty_result_has_the_full_shape():
    assert json.loads(render("json", LintResult(), {})) == {
        "findings": [], "skipped": [], "stats": {},
    }


def test_undecodable_file_name_is_escaped_so_the_output_is_valid_utf8():
    result = LintResult(skipped=[Skipped(path="odd\udcff.py", reason="encoding", message="x")])

    out = render("json", result, {})

    out.encode("utf-8")
    assert "\\udcff" in out
    assert json.loads(out) == result.to_dict()


def test_a_confidence_that_is_no_number_is_written_as_null():
    # Bare NaN/Infinity is no JSON a strict parser reads; both encoders' paths write null.
    for path in ("a.py", "odd\udcff.py"):
        findings = [Finding(path=path, line=1, column=1, end_line=1, end_column=2, rule="r", skill="s",
                            severity="info", message="m", confidence=value)
                    for value in (float("nan"), float("inf"))]

        out = render("json", LintResult(findings=findings), {})

        assert [f["confidence"] for f in json.loads(out, parse_constant=pytest.fail)["findings"]] == [None, None]


_text = st.text(max_size=40)
_findings = st.builds(
    Finding,
    path=_text, line=st.integers(-3, 10**6), column=st.integers(-3, 10**4),
    end_line=st.integers(-3, 10**6), end_column=st.integers(-3, 10**4), rule=_text,
    skill=_text, severity=st.sampled_from(SEVERITIES), message=_text,
    suggestion=st.none() | _text, level=st.integers(0, 3),
    engine=st.sampled_from(["pattern", "ast", "model"]), model=st.none() | _text,
    confidence=st.floats(0, 1), fingerprint=_text,
)
_skipped = st.builds(
    Skipped, path=st.none() | _text, reason=_text, message=_text, rule=st.none() | _text,
    level=st.none() | st.integers(0, 3), hint=st.none() | _text,
)


@settings(max_examples=60, deadline=None)
@given(findings=st.lists(_findings, max_size=5), skipped=st.lists(_skipped, max_size=4),
       files=st.integers(0, 10**6))
def test_any_result_renders_to_json_that_parses_back_to_to_dict(findings, skipped, files):
    result = LintResult(findings=findings, skipped=skipped, stats={"files": files})

    out = render("json", result, {})

    assert out.endswith("\n")
    assert json.loads(out) == result.to_dict()
