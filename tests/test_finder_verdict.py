"""``models.verdict: finder``: the claim finders' candidates are findings as they stand, no model
asked — the finder alone, which `tinyarms eval` measured as good as finder + model here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import git, run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".tinyarms.yaml").write_text("rules: {}\n")  # a project: its token files are read
    (tmp_path / "prices.py").write_text(TWINS)
    (tmp_path / "tokens.css").write_text(":root { --size-1: 4px; --size-2: 8px; --size-3: 16px; }\n")
    (tmp_path / "a.css").write_text("a { padding: 4px; }\nb { margin: 13px; }\n")
    return tmp_path


def lint(cwd: Path, host: str, *args: str, verdict: str = "finder"):
    env = {"OLLAMA_HOST": host, "TINYARMS_MODELS__VERDICT": verdict}
    result = run_cli("lint", "--no-daemon", "--format", "json", *args, cwd=cwd, env=env)
    return result, json.loads(result.stdout)


def test_the_finders_candidates_are_findings_and_no_model_is_asked(project: Path, ollama_server: FakeOllama) -> None:
    result, out = lint(project, ollama_server.host, "prices.py", "a.css")
    assert result.returncode == 1, result.stderr
    found = [(f["path"], f["line"], f["rule"], f["engine"], f["model"]) for f in out["findings"] if f["level"] == 2]
    assert found == [("a.css", 1, "design-tokens", "finder", None),  # 4px is var(--size-1)
                     ("a.css", 2, "design-tokens", "finder", None),  # 13px lies between 8px and 16px
                     ("prices.py", 12, "simple-dry", "finder", None)]
    [dry] = [f for f in out["findings"] if f["rule"] == "simple-dry"]
    assert "same logic as lines 5-9, in total_eu()" in dry["message"] and dry["severity"] == "warning"
    assert not ollama_server.requests  # not even asked which models it has
    assert not [s for s in out["skipped"] if s["level"] == 2]  # nothing skipped: no model was needed
    assert out["stats"]["models"]["2"]["verdict"] == "finder" and out["stats"]["models"]["2"]["findings"] == 3

    text = run_cli("lint", "--no-daemon", "prices.py", cwd=project,
                   env={"OLLAMA_HOST": ollama_server.host, "TINYARMS_MODELS__VERDICT": "finder"})
    assert "Level 2: the finders' candidates, no model asked (models.verdict: finder): 1 finding." in text.stdout


def test_without_it_the_same_lint_with_no_model_skips_the_claims(project: Path, ollama_server: FakeOllama) -> None:
    host = ollama_server.host
    ollama_server.stop()  # nothing answers at its address now
    result, out = lint(project, host, "prices.py", "a.css", verdict="probability")
    assert not [f for f in out["findings"] if f["level"] == 2], result.stderr
    assert {(s["rule"], s["reason"]) for s in out["skipped"]} == {("simple-dry", "model-unavailable"),
                                                                   ("design-tokens", "model-unavailable")}


def test_a_staged_change_reports_only_the_candidates_it_touches(repo: Path, ollama_server: FakeOllama) -> None:
    (repo / "prices.py").write_text(TWINS)
    git(repo, "add", "prices.py")
    git(repo, "commit", "-qm", "twins")
    (repo / "prices.py").write_text(TWINS.replace("D = 4", "D = 44"))  # far from both blocks
    git(repo, "add", "prices.py")
    _, out = lint(repo, ollama_server.host, "--staged")
    assert not [f for f in out["findings"] if f["level"] == 2]

    (repo / "prices.py").write_text(TWINS.replace("amount * 1.08", "amount * 1.09"))  # inside the second block
    git(repo, "add", "prices.py")
    _, out = lint(repo, ollama_server.host, "--staged")
    assert [(f["line"], f["engine"]) for f in out["findings"] if f["level"] == 2] == [(12, "finder")]


def test_a_reported_false_positive_settles_its_kind_of_claim_with_no_model_too(repo: Path) -> None:
    from tests.commands.test_feedback import CARD, TOKENS

    env = {"TINYARMS_MODELS__VERDICT": "finder", "TINYARMS_MODELS__BACKEND": "none"}
    (repo / "tokens.css").write_text(TOKENS)
    (repo / "card.css").write_text(CARD)
    done = run_cli("lint", "--no-daemon", "--format", "json", "card.css", cwd=repo, env=env)
    assert done.returncode == 1 and [f["line"] for f in json.loads(done.stdout)["findings"]] == [2, 3, 6, 7]
    taught = run_cli("feedback", "false-positive", "card.css:3:design-tokens", "--note", "margins are layout",
                     cwd=repo, env=env)
    assert taught.returncode == 0, taught.stderr
    assert "of its kind (margin:--size) are settled" in taught.stdout and "model" not in taught.stdout  # none asked
    done = run_cli("lint", "--no-daemon", "--format", "json", "card.css", cwd=repo, env=env)
    by_line = {f["line"]: f["feedback"] for f in json.loads(done.stdout)["findings"]}
    # the margins (3, and 6 of the same kind) are known false; the padding and gap still fail
    assert by_line == {2: None, 3: "false-positive", 6: "false-positive", 7: None} and done.returncode == 1


def test_every_candidate_is_a_finding_with_no_limit_to_ration(project: Path, ollama_server: FakeOllama) -> None:
    (project / "a.css").write_text("a { padding: 4px; }\nb { margin: 8px; }\nc { gap: 13px; }\n")
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_MODELS__VERDICT": "finder",
           "TINYARMS_MODELS__MAX_CANDIDATES": "1"}
    out = json.loads(run_cli("lint", "--no-daemon", "--format", "json", "a.css", cwd=project, env=env).stdout)
    assert [f["line"] for f in out["findings"]] == [1, 2, 3] and out["skipped"] == []


TEAM = """\
name: team
description: House rules.
levels: [2]
rules:
  - id: too-many-steps
    engine: model
    level: 2
    severity: warning
    languages: [python]
    description: A function that does too many things at once.
    message: "this function does too much"
"""


def test_a_rule_with_no_claim_finder_still_asks_the_model(project: Path, ollama_server: FakeOllama) -> None:
    (project / ".tinyarms" / "skills").mkdir(parents=True)
    (project / ".tinyarms" / "skills" / "team.yaml").write_text(TEAM)
    ollama_server.answer('{"violations": []}')
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_MODELS__VERDICT": "finder",
           "TINYARMS_MODELS__BACKEND": "ollama"}
    done = run_cli("lint", "--no-daemon", "--format", "json", "prices.py", cwd=project, env=env)
    out = json.loads(done.stdout)
    level2 = out["stats"]["models"]["2"]
    assert level2["backend"] == "ollama" and level2["questions"] >= 1, done.stderr  # too-many-steps was asked
    assert ollama_server.calls("/api/chat")
    assert all("simple-dry" not in c.body["messages"][-1]["content"] for c in ollama_server.calls("/api/chat"))
    assert level2["finder"]["findings"] == 1  # simple-dry's pair, not asked
    assert [(f["rule"], f["engine"]) for f in out["findings"] if f["level"] == 2] == [("simple-dry", "finder")]
    text = run_cli("lint", "--no-daemon", "prices.py", cwd=project, env=env).stdout
    assert "no model asked (models.verdict: finder): 1 finding." in text and "via ollama" in text


def test_min_logic_lets_smaller_copies_in_and_is_checked(tmp_path: Path) -> None:
    from tests.candidates.test_simple_dry import GUARD
    from tinyarms.candidates.simple_dry import MIN_LOGIC
    from tinyarms.skills import ClonesParams

    assert ClonesParams().min_logic == MIN_LOGIC  # the rule's default is the finder's
    (tmp_path / "out.py").write_text(GUARD)  # two guards of three steps each
    env = {"TINYARMS_MODELS__VERDICT": "finder", "TINYARMS_MODELS__BACKEND": "none"}

    def dry_lines(config: str) -> list[int]:
        (tmp_path / ".tinyarms.yaml").write_text(config)
        done = run_cli("lint", "--no-daemon", "--format", "json", "--select", "simple-dry", "out.py",
                       cwd=tmp_path, env=env)
        return [f["line"] for f in json.loads(done.stdout)["findings"]]

    assert dry_lines("rules: {}\n") == []
    assert dry_lines("rules:\n  simple-dry:\n    params: {min_logic: 3}\n") == [12]
    (tmp_path / ".tinyarms.yaml").write_text("rules:\n  simple-dry:\n    params: {min_logic: 0}\n")
    done = run_cli("lint", "--no-daemon", "out.py", cwd=tmp_path, env=env)
    assert done.returncode == 2 and ".tinyarms.yaml:3: rules.simple-dry.params.min_logic" in done.stderr
