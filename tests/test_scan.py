"""`tinyarms scan --deep`: whole repositories, reports, the cache, resuming, cross-file pairs.

The model is the fake Ollama server (``tests/models/ollama_server.py``) with scripted answers,
so these test the plumbing; one test at the end scans with the real embedded 0.5B model.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.candidates.test_cross_file import BASKET, INVOICE, PARSER, RENDER
from tests.models.ollama_server import FakeOllama, Request, ollama_server_fixture  # noqa: F401
from tests.models.test_llamacpp import MODEL, cached_model_fixture, fetched_fixture  # noqa: F401
from tests.render.test_sarif import assert_valid_sarif
from tinyarms import router, scan
from tinyarms.levels.level0 import Job
from tinyarms.ruleset import load_settings
from tinyarms.stores.journal import Journal, ScanBusy


def agreeing(request: Request) -> str:
    """A model that says yes to every question, on the line the question names."""
    prompt = request.body["messages"][-1]["content"]
    rule = re.search(r"report one violation of rule ([\w-]+)", prompt).group(1)
    named = re.search(r"report one violation of rule [\w-]+ on line (\d+)", prompt) or re.search(
        r"\(lines (\d+)-\d+\)", prompt)
    return json.dumps({"violations": [{"rule": rule, "line": int(named.group(1)), "message": "looks like a problem",
                                       "suggestion": "fix it", "confidence": 0.9}]})


def per_file_questions(requests: list[Request]) -> list[str]:
    """The files asked about by per-file rules (cross-file questions left out)."""
    return [own_file(r) for r in requests
            if set(r.body["format"]["properties"]["violations"]["items"]["properties"]["rule"]["enum"])
            <= {"complex-dry", "architectural-anti-patterns"}]


def own_file(request: Request) -> str:
    """The file a question is about: the last code block of the prompt (the other place comes first)."""
    return re.findall(r"Code from (\S+) \(line numbers", request.body["messages"][-1]["content"])[-1]


@pytest.fixture(name="project")
def project_fixture(repo: Path) -> Path:
    (repo / "billing").mkdir()
    (repo / "billing" / "invoice.py").write_text(INVOICE)
    (repo / "cart").mkdir()
    (repo / "cart" / "basket.py").write_text(BASKET)  # invoice_total renamed: the planted duplicate
    (repo / "cli.py").write_text(PARSER)
    (repo / "rows.js").write_text(RENDER)
    (repo / "README.md").write_text("# shop\n")  # no rule applies: out of scope
    return repo


@pytest.fixture
def model(ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch) -> FakeOllama:
    ollama_server.answer(agreeing)
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    return ollama_server


def run_scan(project: Path, **options) -> scan.ScanOutcome:
    return scan.run(project, scan.ScanOptions(**options))


def scan_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, popen: bool = False):
    """`tinyarms scan` as a user runs it, in a child process."""
    command = [sys.executable, "-m", "tinyarms", "scan", *args]
    environment = {**os.environ, **(env or {})}
    if popen:
        return subprocess.Popen(command, cwd=cwd, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=120, check=False)


# -- a scan ----------------------------------------------------------------------------------------


def test_a_scan_writes_the_three_reports_and_names_both_places_of_a_duplicate(
        project: Path, model: FakeOllama, isolated_env: Path) -> None:
    outcome = run_scan(project)

    report = json.loads(Path(outcome.report["json"]).read_text())
    assert set(report) == {"findings", "skipped", "stats", "scan"}
    assert report["scan"]["files_total"] == 4 and report["scan"]["runs"] == 1
    assert report["stats"]["files"] == 4 and report["stats"]["out_of_scope"] == 1  # README.md
    [duplicate] = [f for f in report["findings"] if f["rule"] == "semantic-duplication"]
    assert (duplicate["path"], duplicate["line"], duplicate["end_line"]) == ("cart/basket.py", 11, 17)
    assert duplicate["message"].endswith("(other place: billing/invoice.py:4)")
    # The pair was asked once, showing both functions with their real line numbers.
    [question] = [r for r in model.calls("/api/chat") if "semantic-duplication" in r.body["format"]["properties"][
        "violations"]["items"]["properties"]["rule"]["enum"]]
    prompt = question.body["messages"][-1]["content"]
    assert "   4| def invoice_total(lines, rate):" in prompt and "  11| def basket_sum(entries, vat):" in prompt
    # Per-file rules asked about each function, with no deadline.
    per_file = {(f["path"], f["rule"]) for f in report["findings"] if f["rule"] != "semantic-duplication"}
    assert per_file == {(p, r) for p in ("billing/invoice.py", "cart/basket.py", "cli.py", "rows.js")
                        for r in ("complex-dry", "architectural-anti-patterns")}
    level3 = report["stats"]["models"]["3"]
    assert level3["questions"] == level3["asked"] == 9 and level3["cross_file"]["finder"] == "shingles"
    assert not [s for s in report["skipped"] if s["reason"] != "scan-only"]

    sarif = json.loads(Path(outcome.report["sarif"]).read_text())
    assert_valid_sarif(sarif)
    run = sarif["runs"][0]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == f"file://{project}/"
    assert len(run["results"]) == len(report["findings"])

    markdown = Path(outcome.report["markdown"]).read_text()
    assert "| `semantic-duplication` | 3 | 0 | 1 | 0 | 1 |" in markdown
    assert "11| def basket_sum(entries, vat):" in markdown and " 4| def invoice_total(lines, rate):" in markdown

    reports = isolated_env / "reports" / "repo"
    assert Path(outcome.report["markdown"]).parent == reports
    assert json.loads((reports / "latest.json").read_text())["markdown"] == outcome.report["markdown"]
    assert outcome.exit_code == 1  # warnings fail, as in lint


def test_an_unchanged_repository_is_scanned_again_without_asking_the_model(project: Path, model: FakeOllama) -> None:
    first = run_scan(project)
    asked = len(model.calls("/api/chat"))
    again = run_scan(project)
    assert len(model.calls("/api/chat")) == asked  # every answer from the cache
    level3 = again.result.stats["models"]["3"]
    assert level3["asked"] == 0 and level3["cached"] == level3["questions"] == 9
    assert [f.to_dict() for f in again.result.findings] == [f.to_dict() for f in first.result.findings]
    assert again.report["markdown"] != first.report["markdown"]  # a new report, not an overwritten one

    (project / "cli.py").write_text(PARSER.replace("options = {}", "options = dict()"))
    run_scan(project)
    new = {own_file(r) for r in model.calls("/api/chat")[asked:]}
    assert new == {"cli.py"}  # only the changed file's questions


def test_lint_leaves_cross_file_rules_to_the_scan(project: Path, model: FakeOllama) -> None:
    settings = load_settings(project, skill_names=["code-linting-deep"])
    jobs = [Job(p, p, (project / p).read_bytes()) for p in ("billing/invoice.py", "cart/basket.py")]
    result = router.run(settings, jobs, router.LintOptions(budget=30))
    scan_only = [s for s in result.skipped if s.reason == "scan-only"]
    assert sorted(s.rule for s in scan_only) == ["cross-file-patterns", "semantic-duplication"]
    assert all(s.path is None and s.hint == "tinyarms scan --deep" for s in scan_only)  # once per rule
    assert not [f for f in result.findings if f.rule == "semantic-duplication"]


# -- resuming --------------------------------------------------------------------------------------


class Crash(Exception):
    pass


def crash_after(files: int):
    def progress(event: scan.Progress) -> None:
        if event.stage == "files" and event.done >= files:
            raise Crash

    return progress


def test_an_interrupted_scan_resumes_where_it_stopped(project: Path, model: FakeOllama) -> None:
    with pytest.raises(Crash):
        scan.run(project, scan.ScanOptions(), progress=crash_after(2))
    first_run = per_file_questions(model.calls("/api/chat"))
    assert len(set(first_run)) == 2 and len(first_run) == 4
    asked = len(model.calls("/api/chat"))

    outcome = run_scan(project)
    second_run = per_file_questions(model.calls("/api/chat")[asked:])
    assert len(second_run) == 4 and not set(first_run) & set(second_run)  # no file judged twice
    assert outcome.scan["files_resumed"] == 2 and outcome.scan["runs"] == 2
    report = json.loads(Path(outcome.report["json"]).read_text())
    assert {f["path"] for f in report["findings"]} == {"billing/invoice.py", "cart/basket.py", "cli.py", "rows.js"}
    assert report["scan"]["files_resumed"] == 2 and report["scan"]["runs"] == 2


def test_restart_starts_over_and_other_options_start_another_scan(project: Path, model: FakeOllama) -> None:
    with pytest.raises(Crash):
        scan.run(project, scan.ScanOptions(), progress=crash_after(2))
    assert run_scan(project, paths=[str(project / "cli.py")]).scan["files_resumed"] == 0  # other paths: another scan
    assert run_scan(project, restart=True).scan["files_resumed"] == 0
    assert run_scan(project).scan["files_resumed"] == 0  # the restarted scan finished: nothing left to resume


def test_one_scan_of_a_repository_at_a_time(project: Path, model: FakeOllama, isolated_env: Path) -> None:
    with Journal(isolated_env) as journal, journal.lock(project), pytest.raises(ScanBusy, match="being scanned"):
        run_scan(project)


def test_a_scan_killed_mid_way_resumes_without_judging_a_file_twice(project: Path, model: FakeOllama,
                                                                   isolated_env: Path) -> None:
    for i in range(8):
        (project / f"job{i}.py").write_text(PARSER.replace("parse_args", f"parse_{i}").replace('"rest"', f'"r{i}"'))
    model.slow(0.15, agreeing)
    child = scan_cli("--deep", "--no-daemon", cwd=project, popen=True)
    try:
        _wait_for_files(isolated_env / "scans.db", 4, child)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    done = _wait_for_files(isolated_env / "scans.db", 4, child)  # what the journal holds after the kill
    assert 4 <= len(done) < 12
    killed = len(model.calls("/api/chat"))
    judged_before = set(per_file_questions(model.calls("/api/chat")))
    model.answer(agreeing)

    result = scan_cli("--deep", "--no-daemon", cwd=project)
    assert result.returncode == 1, result.stderr
    after = Counter(per_file_questions(model.calls("/api/chat")[killed:]))
    everything = {"billing/invoice.py", "cart/basket.py", "cli.py", "rows.js", *(f"job{i}.py" for i in range(8))}
    assert set(after) == everything - set(done)  # files recorded as done were not judged again
    assert max(after.values()) <= 2  # two per-file rules; each question once (answers are cached at once)
    assert len(judged_before - set(done)) <= 1  # at most the file the kill interrupted was asked about twice
    report = json.loads(Path(result.stdout.strip()).with_suffix(".json").read_text())
    assert report["scan"]["runs"] == 2 and report["scan"]["files_resumed"] == len(done)
    assert report["scan"]["files_total"] == 12
    assert {f["path"] for f in report["findings"] if f["rule"] == "complex-dry"} == {
        "billing/invoice.py", "cart/basket.py", "cli.py", "rows.js", *(f"job{i}.py" for i in range(8))}


def _wait_for_files(db: Path, count: int, child: subprocess.Popen, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() in (None, -signal.SIGKILL), child.stderr.read()
        if db.exists():
            try:
                with sqlite3.connect(db) as conn:
                    rows = conn.execute("SELECT files FROM scan_parts WHERE kind = 'files'").fetchall()
            except sqlite3.OperationalError:
                rows = []
            done = [name for (files,) in rows for name in json.loads(files)]
            if len(done) >= count:
                return done
        time.sleep(0.02)
    raise AssertionError("the scan did not get going")


# -- Level 1: embeddings ---------------------------------------------------------------------------


def test_embeddings_propose_the_pairs_when_ollama_has_the_model(project: Path, model: FakeOllama) -> None:
    model.add_embedding_model("nomic-embed-text")
    # Scripted vectors: the money functions point one way, everything else another.
    model.embed_with(lambda text: [1.0, 0.0] if "round(" in text else [0.0, 1.0])
    outcome = run_scan(project)
    models = outcome.result.stats["models"]
    assert models["1"]["used"] is True and models["1"]["model"] == "nomic-embed-text"
    assert models["3"]["cross_file"]["finder"] == "embeddings"
    [duplicate] = [f for f in outcome.result.findings if f.rule == "semantic-duplication"]
    assert duplicate.path == "cart/basket.py" and "(other place: billing/invoice.py:4)" in duplicate.message
    [embed] = model.calls("/api/embed")
    assert len(embed.body["input"]) == 3 and embed.body["model"] == "nomic-embed-text"  # one batch, one per function
    run_scan(project)
    assert len(model.calls("/api/embed")) == 1  # vectors come from the cache too


def test_without_the_embedding_model_shingles_find_the_pairs_and_say_why(project: Path, model: FakeOllama) -> None:
    outcome = run_scan(project)
    level1 = outcome.result.stats["models"]["1"]
    assert level1["used"] is False and "not pulled" in level1["why"]
    assert "ollama pull nomic-embed-text" in level1["hint"]
    assert [f.rule for f in outcome.result.findings].count("semantic-duplication") == 1
    assert "Level 1 (embeddings): not used" in Path(outcome.report["markdown"]).read_text()


# -- the command -----------------------------------------------------------------------------------


def test_the_command_prints_the_report_path_and_exits_like_lint(project: Path, model: FakeOllama) -> None:
    result = scan_cli("--deep", "--no-daemon", cwd=project)
    assert result.returncode == 1 and result.stderr == ""  # quiet when not on a terminal
    path = Path(result.stdout.strip())
    assert path.suffix == ".md" and path.is_file() and path.with_suffix(".sarif").is_file()

    model.answer('{"violations": []}')
    clean = scan_cli("--no-daemon", "--restart", "--no-cache", cwd=project)
    assert clean.returncode == 0, clean.stderr

    bad = scan_cli("--no-daemon", "--skill", "no-such-skill", cwd=project)
    assert bad.returncode == 2 and "unknown skill 'no-such-skill'" in bad.stderr


def test_a_terminal_gets_a_progress_bar_and_a_summary(project: Path, model: FakeOllama) -> None:
    import pty

    master, slave = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "tinyarms", "scan", "--no-daemon"], cwd=project,
                                stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120, check=False)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    text = shown.decode()
    assert result.returncode == 1 and Path(result.stdout.strip()).is_file()
    assert "] 4/4 files" in text and "[" + "#" * 28 + "]" in text  # the bar, filled
    assert "\r\x1b[2K" in text  # redrawn in place, and cleared before the summary
    assert "Scanned 4 files: 9 findings (9 warning)." in text


def test_without_any_model_the_scan_still_reports_what_it_could_not_check(project: Path) -> None:
    result = scan_cli("--no-daemon", cwd=project, env={"TINYARMS_MODELS__BACKEND": "none"})
    assert result.returncode == 0, result.stderr
    report = json.loads(Path(result.stdout.strip()).with_suffix(".json").read_text())
    assert report["findings"] == []
    assert {s["rule"] for s in report["skipped"]} == {
        "complex-dry", "architectural-anti-patterns", "semantic-duplication", "cross-file-patterns"}
    assert {s["reason"] for s in report["skipped"]} == {"model-unavailable"}


def test_a_scan_through_the_daemon(project: Path, model: FakeOllama, isolated_env: Path) -> None:
    from tinyarms.daemon import control

    control.start(isolated_env)
    try:
        result = scan_cli("--deep", cwd=project)
        assert result.returncode == 1, result.stderr
        path = Path(result.stdout.strip())
        assert path.is_file() and path.parent == isolated_env / "reports" / "repo"
        with Journal(isolated_env) as journal:
            from tinyarms.stores.journal import repo_key

            assert journal.last_finished(repo_key(project))["report"]["markdown"] == str(path)
        again = scan_cli("--deep", cwd=project)  # the daemon's cache: nothing asked
        assert again.returncode == 1 and len(model.calls("/api/chat")) == 9
        bad = scan_cli("--skill", "nope", cwd=project)
        assert bad.returncode == 2 and "unknown skill 'nope'" in bad.stderr
    finally:
        control.stop(isolated_env)


# -- the real embedded model -----------------------------------------------------------------------


def test_a_scan_with_the_real_embedded_model(project: Path, fetched: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plumbing, structure and bounds with a real 0.5B model, not its judgement."""
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "embedded")
    monkeypatch.setenv("TINYARMS_MODELS__DEEP__EMBEDDED", MODEL)  # the 1.5B default is slower than a test should be
    options = dict(paths=[str(project / "billing"), str(project / "cart")],
                   select=["complex-dry", "semantic-duplication"],
                   max_questions=1)
    outcome = run_scan(project, **options)

    level3 = outcome.result.stats["models"]["3"]
    assert (level3["backend"], level3["model"]) == ("embedded", MODEL)
    assert level3["questions"] == level3["asked"] == 3  # one per file and rule, and the cross-file pair
    assert not [s for s in outcome.result.skipped if s.level == 3 and s.reason != "scan-only"]
    functions = {"billing/invoice.py": (4, 10), "cart/basket.py": (11, 17)}
    for f in outcome.result.findings:
        assert f.rule in ("complex-dry", "semantic-duplication") and f.model == MODEL and 0 <= f.confidence <= 1
        first, last = functions[f.path]
        assert first <= f.line <= last
        if f.rule == "semantic-duplication":
            assert f.path == "cart/basket.py" and f.message.endswith("(other place: billing/invoice.py:4)")
    assert_valid_sarif(json.loads(Path(outcome.report["sarif"]).read_text()))

    again = run_scan(project, **options)
    assert again.result.stats["models"]["3"]["asked"] == 0 and again.result.stats["models"]["3"]["cached"] == 3


def test_the_default_question_bound_is_the_same_everywhere() -> None:
    import argparse

    from tinyarms.commands import scan as command
    from tinyarms.daemon.messages import Scan

    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    assert f"default {scan.MAX_QUESTIONS}," in parser.format_help()
    assert Scan.model_fields["max_questions"].default == scan.MAX_QUESTIONS == scan.ScanOptions().max_questions
