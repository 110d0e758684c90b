"""``tinyarms bench``, ``tinyarms models recommend`` and the bench line of ``tinyarms status``, as a
user runs them: the real command line in a child process, the fake Ollama as the server."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tinyarms.daemon import control
from tinyarms.quality import bench

FAST = "qwen2.5-coder:3b"


def env(server: FakeOllama) -> dict[str, str]:
    return {"TINYARMS_MODELS__OLLAMA__HOST": server.host}


def test_bench_prints_a_table_and_keeps_the_figures(ollama_server: FakeOllama, isolated_env: Path,
                                                     tmp_path: Path) -> None:
    ollama_server.speed(prompt_tps=5000.0, eval_tps=500.0)
    result = run_cli("bench", "--backend", "ollama", "--model", FAST, "--runs", "2", "--sizes", "100,50",
                     cwd=tmp_path, env=env(ollama_server))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tinyarms bench: ollama backend; ") and "load average " in result.stdout
    rows = {line.split("  ")[0]: line for line in result.stdout.splitlines() if "  " in line}
    assert FAST in rows["model"]
    assert "tok/s" in rows["prompt eval"] and "5000 tok/s" in rows["prompt eval"]
    assert "50-line file" in rows and "100-line file" in rows and "2 q" in rows["100-line file"]
    assert "6/6 (100%)" in rows["schema-valid"] and "n/a (server process)" in rows["peak RSS"]
    kept = isolated_env / "bench" / "last.json"
    assert str(kept.parent) in result.stdout
    doc = json.loads(kept.read_text())
    assert doc["models"][0]["model"] == FAST and doc["sizes"] == [50, 100] and doc["runs"] == 2


def test_bench_json_and_compare(ollama_server: FakeOllama, tmp_path: Path) -> None:
    result = run_cli("bench", "--backend", "ollama", "--compare", FAST, "qwen2.5-coder:7b", "--runs", "1",
                     "--sizes", "50", "--json", cwd=tmp_path, env=env(ollama_server))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [m["model"] for m in doc["models"]] == [FAST, "qwen2.5-coder:7b"]
    assert doc["compare"]["questions"] == 1 and doc["compare"]["identical"] == 1  # both answer []

    text = run_cli("bench", "--backend", "ollama", "--compare", FAST, "qwen2.5-coder:7b", "--runs", "1",
                   "--sizes", "50", cwd=tmp_path, env=env(ollama_server))
    assert "same verdict  1/1 (100%)" in text.stdout


def test_bench_without_sizes_asks_about_the_three_shipped_files(ollama_server: FakeOllama, tmp_path: Path) -> None:
    ollama_server.speed(prompt_tps=5000.0, eval_tps=500.0)
    result = run_cli("bench", "--backend", "ollama", "--model", FAST, "--runs", "1", "--json",
                     cwd=tmp_path, env=env(ollama_server))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["sizes"] == [50, 100, 300]


def test_a_model_that_cannot_run_fails_with_its_fix(ollama_server: FakeOllama, tmp_path: Path) -> None:
    result = run_cli("bench", "--backend", "ollama", "--model", "nope:1b", "--runs", "1", "--sizes", "50",
                     cwd=tmp_path, env=env(ollama_server))
    assert result.returncode == 1
    assert "nope:1b: not measured: model nope:1b is not pulled in Ollama (`ollama pull nope:1b`)" in result.stdout


def test_no_backend_and_bad_arguments(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port where nothing answers
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_cli("bench", "--backend", "ollama", cwd=tmp_path,
                     env={"TINYARMS_MODELS__OLLAMA__HOST": f"http://127.0.0.1:{port}"})
    assert result.returncode == 1 and "Ollama does not answer" in result.stderr and "ollama serve" in result.stderr
    for bad in (["--sizes", "400"], ["--sizes", "ten"], ["--runs", "0"]):
        result = run_cli("bench", *bad, cwd=tmp_path)
        assert result.returncode == 2 and "bench: error: argument" in result.stderr, bad


# -- status --------------------------------------------------------------------------------------


@pytest.fixture
def daemon_home(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TINYARMS_MODELS__BACKEND", "none")
    control.start(isolated_env)
    yield isolated_env
    control.stop(isolated_env)


def test_status_shows_the_last_bench(daemon_home: Path, tmp_path: Path) -> None:
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "last bench" in result.stdout and "never run" in result.stdout
    bench.save(_doc("2026-01-02T10:00:00+00:00", 1.25, 4.5))
    status = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)
    assert status["bench"]["at"] == "2026-01-02T10:00:00+00:00"
    line = next(x for x in run_cli("status", cwd=tmp_path).stdout.splitlines() if x.startswith("last bench"))
    assert "qwen2.5-coder:0.5b 4.5 s/100-line file, first token 1.2 s, 3/3 schema-valid" in line


# -- recommend -----------------------------------------------------------------------------------


def _doc(at: str, first_token: float, file_100: float, question: float = 2.0) -> dict:
    def s(x: float) -> dict:
        return {"median": x, "min": x, "max": x, "n": 1}

    return {"version": bench.FORMAT_VERSION, "at": at, "backend": "embedded", "machine": {}, "runs": 1,
            "sizes": [100], "compare": None, "models": [{
                "model": "qwen2.5-coder:0.5b", "backend": "embedded", "first_token_s": s(first_token),
                "question_s": s(question), "file_s": {"100": s(file_100)}, "answers": 3, "schema_valid": 3,
                "peak_rss_bytes": 900 << 20, "rss_before_bytes": 100 << 20}]}


def test_models_recommend_uses_the_measured_figures(isolated_env: Path, tmp_path: Path) -> None:
    before = json.loads(run_cli("models", "recommend", "--json", cwd=tmp_path).stdout)
    assert before["measured"] == {} and before["machine"]["ram_bytes"] > 0
    assert before["advice"]["ollama"]["speed_factor"] == 1.0

    bench.save(_doc("2026-01-02T10:00:00+00:00", 1.0, 3.0, question=20.0))
    after = json.loads(run_cli("models", "recommend", "--json", cwd=tmp_path).stdout)
    assert after["measured"]["qwen2.5-coder:0.5b"]["question_s"] == 20.0
    assert after["measured"]["qwen2.5-coder:0.5b"]["memory_bytes"] == 800 << 20
    assert after["advice"]["embedded"]["fast"]["name"] == "qwen2.5-coder:0.5b"
    assert after["advice"]["embedded"]["fast"]["measured_speed"] is True
    assert after["advice"]["embedded"]["speed_factor"] > 1  # slower than the estimates: a busy machine

    text = run_cli("models", "recommend", cwd=tmp_path).stdout
    assert ("measured  qwen2.5-coder:0.5b (embedded, tinyarms bench 2026-01-02T10:00:00+00:00): "
            "20.0 s per question") in text
    assert "fast qwen2.5-coder:0.5b  (~20.0 s per question, measured" in text
    assert "models:\n  fast: {ollama: " in text and "busy" not in text

    busy = _doc("2026-01-03T10:00:00+00:00", 1.0, 3.0, question=20.0)
    busy["machine"] = {"load_avg_1m": 999.0}
    bench.save(busy)
    assert "the machine was busy (load average 999.0)" in run_cli("models", "recommend", cwd=tmp_path).stdout
