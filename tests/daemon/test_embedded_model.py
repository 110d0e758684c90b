"""A real lint of a real file through the daemon with the real embedded 0.5B model.

The model is weak at judging code, so this asserts plumbing, structure and bounds — where the
answers land, that the budget holds, that a second run asks nothing — not the judgement."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.models.test_llamacpp import MODEL, cached_model_fixture, fetched_fixture  # noqa: F401
from tests.timing import scaled
from tinyarms.daemon import control

ENV = {"TINYARMS_MODELS__BACKEND": "embedded"}


@pytest.fixture
def daemon(isolated_env: Path, fetched: Path) -> Iterator[Path]:
    control.start(isolated_env)
    yield isolated_env
    control.stop(isolated_env)


def lint(cwd: Path, *args: str) -> tuple[dict, float]:
    started = time.monotonic()
    done = run_cli("lint", "--format", "json", *args, cwd=cwd, env=ENV)
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout), time.monotonic() - started


def test_real_model_findings_are_bounded_and_cached(daemon: Path, tmp_path: Path) -> None:
    code = TWINS
    (tmp_path / "prices.py").write_text(code)
    out, _ = lint(tmp_path, "--budget", "120", "prices.py")
    level2 = out["stats"]["models"]["2"]
    assert (level2["backend"], level2["model"]) == ("embedded", MODEL)
    assert level2["questions"] == 1 and level2["asked"] == 1 and level2["pending"] == 0
    assert not [s for s in out["skipped"] if s["level"] == 2]  # the model answered
    for finding in (f for f in out["findings"] if f["level"] == 2):
        assert finding["rule"] == "simple-dry" and finding["model"] == MODEL and finding["engine"] == "model"
        assert 12 <= finding["line"] <= 16  # inside the block the question was about
        assert 0 <= finding["confidence"] <= 1 and len(finding["message"]) <= 160

    again, _ = lint(tmp_path, "--budget", "120", "prices.py")
    assert again["stats"]["models"]["2"]["asked"] == 0 and again["stats"]["models"]["2"]["cached"] == 1
    assert again["findings"] == out["findings"]


def test_the_budget_holds_with_the_real_model(daemon: Path, tmp_path: Path) -> None:
    # Fresh code, so nothing is cached; a budget too short for the model's answer.
    (tmp_path / "prices.py").write_text(TWINS.replace("basket", "cart").replace("items", "goods"))
    budget, margin = scaled(1.0, 1.5)
    out, seconds = lint(tmp_path, "--budget", str(budget), "prices.py")
    assert seconds < budget + margin, seconds  # the budget, plus starting the client's Python
    assert {f["rule"] for f in out["findings"]} == {"magic-numbers"}  # Level 0 complete
    level2 = out["stats"]["models"]["2"]
    if level2["pending"]:
        assert [s["reason"] for s in out["skipped"] if s["level"] == 2] == ["budget"]
    # `auto` in the daemon's own config: no Ollama here, the embedded backend with its model
    models = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["models"]
    assert (models["backend"], models["fast"], models["loaded"]) == ("embedded", MODEL, [MODEL])


def test_the_daemon_loads_the_fast_model_when_it_starts_and_the_first_lint_uses_it(daemon: Path,
                                                                                  tmp_path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:  # nothing has been linted: the daemon loads the fast model by itself (models.preload)
        workers = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["models"]["embedded_workers"]
        if workers["workers"] and workers["workers"][0]["ready"]:
            break
        assert time.monotonic() < deadline, f"the fast model was not preloaded: {workers}"
        time.sleep(0.2)
    [preloaded] = workers["workers"]
    assert preloaded["model"] == MODEL and preloaded["questions"] == 0
    assert preloaded["rss"] > 200 << 20  # the weights live in the worker
    daemon_rss = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["daemon"]["rss_bytes"]
    assert daemon_rss < preloaded["rss"] / 2  # ...and not in the daemon

    (tmp_path / "prices.py").write_text(TWINS)
    out, _ = lint(tmp_path, "--budget", "120", "prices.py")
    assert out["stats"]["models"]["2"]["asked"] == 1
    [used] = json.loads(run_cli("status", "--json", cwd=tmp_path).stdout)["models"]["embedded_workers"]["workers"]
    assert used["pid"] == preloaded["pid"] and used["questions"] == 1  # the preloaded worker answered
