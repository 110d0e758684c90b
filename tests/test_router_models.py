"""Model levels end to end: `tinyarms lint` with Ollama's API served by the test server."""

import json
import re
import time
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.timing import scaled


def agreeing_model(request) -> str:
    """A model that answers the question it is asked: yes, on the line the question names."""
    prompt = request.body["messages"][-1]["content"]
    line = int(re.search(r"report one violation of rule [\w-]+ on line (\d+)", prompt).group(1))
    return json.dumps({"violations": [{"rule": "simple-dry", "line": line, "message": "total_us repeats total_eu",
                                       "suggestion": "extract a subtotal() helper", "confidence": 0.9}]})


def lint(project: Path, server: FakeOllama, *args: str, budget: float | None = None):
    env = {"OLLAMA_HOST": server.host}
    flags = ["--budget", str(budget)] if budget is not None else []
    started = time.monotonic()
    result = run_cli("lint", "--no-daemon", "--format", "json", *flags, *args, cwd=project, env=env)
    return result, json.loads(result.stdout) if result.stdout else None, time.monotonic() - started


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "prices.py").write_text(TWINS + "\nRATE = 0.2\nprint(RATE * 42)\n")
    return tmp_path


def test_level2_findings_at_the_right_lines_then_from_the_cache(project: Path, ollama_server: FakeOllama) -> None:
    ollama_server.answer(agreeing_model)
    result, out, _ = lint(project, ollama_server, "prices.py")
    assert result.returncode == 1, result.stderr
    [model_finding] = [f for f in out["findings"] if f["level"] == 2]
    assert (model_finding["rule"], model_finding["line"], model_finding["end_line"]) == ("simple-dry", 12, 16)
    got = (model_finding["engine"], model_finding["model"], model_finding["confidence"])
    assert got == ("model", "qwen2.5-coder:3b", 0.9)
    assert model_finding["severity"] == "warning" and model_finding["fingerprint"]
    # whatever the model wrote, the finding names the other copy
    assert model_finding["message"] == "total_us repeats total_eu (same logic as lines 5-9, in total_eu())"
    assert any(f["rule"] == "magic-numbers" for f in out["findings"])  # Level 0 is there too
    request = ollama_server.last("/api/chat").body
    assert request["model"] == "qwen2.5-coder:3b" and request["stream"] is False
    assert request["format"]["properties"]["violations"]["items"]["properties"]["rule"]["enum"] == ["simple-dry"]
    assert request["options"]["temperature"] == 0
    assert "  12| def total_us(basket):" in request["messages"][-1]["content"]
    assert out["stats"]["models"]["2"]["asked"] == 1

    asked = len(ollama_server.calls("/api/chat"))
    result, again, _ = lint(project, ollama_server, "prices.py")
    assert len(ollama_server.calls("/api/chat")) == asked  # no model request the second time
    assert again["findings"] == out["findings"] and again["stats"]["models"]["2"]["cached"] == 1


def test_prompts_name_the_file_from_the_project_root_wherever_the_lint_runs(
        tmp_path: Path, ollama_server: FakeOllama) -> None:
    """The prompt is the cache key: a clone elsewhere, or a lint from a subfolder, asks the same."""
    ollama_server.answer(agreeing_model)
    runs = []
    for where in ("one", "two"):
        root = tmp_path / where
        (root / "shop").mkdir(parents=True)
        (root / ".tinyarms.yaml").write_text("fail_on: never\n")
        (root / "shop" / "prices.py").write_text(TWINS)
        result, out, _ = lint(root / "shop", ollama_server, "prices.py", "--select", "simple-dry")
        assert result.returncode == 0, result.stderr
        runs.append(out["stats"]["models"]["2"])
    [asked] = [c.body["messages"][-1]["content"] for c in ollama_server.calls("/api/chat")]
    assert "Code from shop/prices.py (line numbers on the left)" in asked and str(tmp_path) not in asked
    assert (runs[0]["asked"], runs[1]["asked"], runs[1]["cached"]) == (1, 0, 1)  # the second clone's answer was cached


def test_low_confidence_becomes_info(project: Path, ollama_server: FakeOllama) -> None:
    ollama_server.answer(lambda req: agreeing_model(req).replace("0.9", "0.2"))
    result, out, _ = lint(project, ollama_server, "prices.py", "--select", "simple-dry")
    assert result.returncode == 0
    assert [(f["rule"], f["severity"]) for f in out["findings"]] == [("simple-dry", "info")]


def test_a_hung_server_never_holds_lint_past_the_budget(project: Path, ollama_server: FakeOllama) -> None:
    ollama_server.hang()
    budget, margin = scaled(2.0, 1.5)
    _, out, seconds = lint(project, ollama_server, "prices.py", budget=budget)
    assert seconds < budget + margin, seconds  # includes starting Python; the router's own deadline is tighter
    assert any(f["rule"] == "magic-numbers" for f in out["findings"])
    [skip] = [s for s in out["skipped"] if s["rule"] == "simple-dry"]
    assert skip["reason"] in ("budget", "model-timeout")


def test_missing_model_degrades_to_level0_with_the_pull_hint(project: Path, ollama_server: FakeOllama) -> None:
    ollama_server.remove_model("qwen2.5-coder:3b")
    result, out, _ = lint(project, ollama_server, "prices.py")
    assert result.returncode == 1  # Level 0's magic number, not the missing model
    [skip] = [s for s in out["skipped"] if s["rule"] == "simple-dry"]
    assert skip["reason"] == "model-missing" and "ollama pull qwen2.5-coder:3b" in skip["hint"]
    assert {f["rule"] for f in out["findings"]} == {"magic-numbers"}


def test_on_model_unavailable_fail_blocks_on_a_model_not_pulled(project: Path, ollama_server: FakeOllama) -> None:
    ollama_server.remove_model("qwen2.5-coder:3b")
    result, out, _ = lint(project, ollama_server, "prices.py", "--select", "simple-dry")
    assert result.returncode == 0 and [s["reason"] for s in out["skipped"]] == ["model-missing"]
    (project / ".tinyarms.yaml").write_text("on_model_unavailable: fail\n")
    result, out, _ = lint(project, ollama_server, "prices.py", "--select", "simple-dry")
    assert result.returncode == 1 and out["findings"] == [], result.stderr


def test_on_model_unavailable_fail_lets_a_question_the_budget_cut_pass(project: Path,
                                                                     ollama_server: FakeOllama) -> None:
    ollama_server.hang()
    (project / ".tinyarms.yaml").write_text("on_model_unavailable: fail\n")
    result, out, _ = lint(project, ollama_server, "prices.py", "--select", "simple-dry", budget=1.0)
    assert [s["reason"] for s in out["skipped"]] == ["budget"]  # answered later, in the background
    assert result.returncode == 0, out


@pytest.mark.parametrize("behaviour", ["garbage", "drop", "wrong_types"])
def test_bad_answers_are_skips_not_crashes(project: Path, ollama_server: FakeOllama, behaviour: str) -> None:
    if behaviour == "wrong_types":
        ollama_server.answer('{"violations": [{"rule": "simple-dry", "line": "twelve"}]}')
    else:
        getattr(ollama_server, behaviour)()
    result, out, _ = lint(project, ollama_server, "prices.py", budget=3.0)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert [s["rule"] for s in out["skipped"] if s["level"] == 2] == ["simple-dry"]
    assert {f["rule"] for f in out["findings"]} == {"magic-numbers"}


def test_no_backend_lists_every_model_check_with_hints(project: Path) -> None:
    closed = FakeOllama().start()
    host = closed.host
    closed.stop()  # a port nothing listens on
    result = run_cli("lint", "--no-daemon", "--format", "json", "prices.py", cwd=project, env={"OLLAMA_HOST": host})
    [skip] = json.loads(result.stdout)["skipped"]
    assert skip["rule"] == "simple-dry" and skip["reason"] == "model-unavailable"
    assert "ollama" in skip["hint"].lower()


def test_a_staged_change_asks_only_about_candidates_it_touches(repo: Path, ollama_server: FakeOllama) -> None:
    from tests.conftest import git

    ollama_server.answer(agreeing_model)
    (repo / "prices.py").write_text(TWINS)
    git(repo, "add", "prices.py")
    git(repo, "commit", "-qm", "twins")
    # The backend named, not detected: what is under test is which candidates are asked about.
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_MODELS__BACKEND": "ollama"}

    (repo / "prices.py").write_text(TWINS.replace("D = 4", "D = 44"))  # far from both blocks
    git(repo, "add", "prices.py")
    out = json.loads(run_cli("lint", "--no-daemon", "--staged", "--format", "json", cwd=repo, env=env).stdout)
    level2 = out["stats"]["models"]["2"]
    assert level2.get("questions") == 0 and not ollama_server.calls("/api/chat"), level2

    (repo / "prices.py").write_text(TWINS.replace("amount * 1.08", "amount * 1.09"))  # inside the second block
    git(repo, "add", "prices.py")
    out = json.loads(run_cli("lint", "--no-daemon", "--staged", "--format", "json", cwd=repo, env=env).stdout)
    assert out["stats"]["models"]["2"]["questions"] == 1
    assert [f["line"] for f in out["findings"] if f["level"] == 2] == [12]


def test_a_question_another_lint_is_answering_is_asked_once(
        project: Path, ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two lints of the same code at once in one process (the daemon: a commit's `lint --staged`
    while the background answers what the hook's budget cut): the second waits for the slot the
    first holds, then finds the answer in the cache instead of asking again."""
    import threading

    from tinyarms import files, router
    from tinyarms.ruleset import load_settings

    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    ollama_server.slow(0.5, agreeing_model)
    settings = load_settings(project, {"models": {"backend": "ollama"}}, None, ["simple-dry"])
    jobs = files.read_paths([project / "prices.py"], files.Namer(project, project), settings.config.max_file_bytes).jobs
    results: list = [None, None]

    def lint_in_thread(i: int) -> None:
        results[i] = router.run(settings, jobs, router.LintOptions(budget=None))

    threads = [threading.Thread(target=lint_in_thread, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(ollama_server.calls("/api/chat")) == 1, [r.stats for r in results]
    assert [[(f.rule, f.line) for f in r.findings] for r in results] == [[("simple-dry", 12)]] * 2
    assert sorted(r.stats["models"]["2"]["asked"] for r in results) == [0, 1]


@pytest.mark.parametrize(("server_scores", "confidence", "verdict"), [
    (True, 0.7, "probability"),  # Ollama 0.12.11+: P(yes) from the answer token's logprobs
    (False, 0.8, "answer"),  # an older Ollama gives none: the word, as before
])
def test_yes_no_claims_on_ollama_are_scored_where_it_gives_logprobs(
        project: Path, ollama_server: FakeOllama, server_scores: bool, confidence: float, verdict: str) -> None:
    ollama_server.answer('{"answer": "yes"}').scores(0.7)
    if not server_scores:
        ollama_server.without_logprobs()
    (project / ".tinyarms.yaml").write_text("models:\n  question: yes-no\n")
    result, out, _ = lint(project, ollama_server, "prices.py", "--select", "simple-dry")
    assert result.returncode == 1, result.stderr
    assert [(f["rule"], f["line"], f["confidence"]) for f in out["findings"]] == [("simple-dry", 12, confidence)]
    assert out["stats"]["models"]["2"]["verdict"] == verdict
    assert ollama_server.last("/api/chat").body.get("logprobs") is (True if server_scores else None)


def test_candidates_past_the_per_file_limit_are_listed_as_skipped(tmp_path: Path, ollama_server: FakeOllama) -> None:
    # Three raw values equal to tokens, two questions a file: the third is no silent drop.
    (tmp_path / ".tinyarms.yaml").write_text("rules: {}\n")  # a project: its token files are read
    (tmp_path / "tokens.css").write_text(":root { --size-1: 4px; --size-2: 8px; }\n")
    (tmp_path / "a.css").write_text("a { padding: 4px; }\nb { margin: 8px; }\nc { gap: 4px; }\n")
    (tmp_path / "config.yaml").write_text("models:\n  max_candidates: 2\n")
    ollama_server.answer(agreeing_model)
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_CONFIG": str(tmp_path / "config.yaml")}
    result = run_cli("lint", "--no-daemon", "--format", "json", "--select", "design-tokens", "a.css",
                     cwd=tmp_path, env=env)
    out = json.loads(result.stdout)
    assert out["stats"]["models"]["2"]["questions"] == 2, result.stderr
    [skip] = [s for s in out["skipped"] if s["reason"] == "candidate-limit"]
    assert (skip["path"], skip["rule"], skip["level"]) == ("a.css", "design-tokens", 2)
    assert "models.max_candidates" in skip["hint"]
