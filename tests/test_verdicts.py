"""Verdicts by probability: a yes/no claim is scored by P(yes), a finding at the rule's threshold.

The worker is the real worker loop with a scripted engine (``tests/models/fake_worker.py``) whose
``score P`` step answers P(yes) = P, so the thresholds, the cache and the calibration are tested
on known probabilities; ``tests/models/test_llamacpp.py`` scores with the real model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import run_cli
from tests.daemon.test_worker_faults import Scripted
from tinyarms import lintjob
from tinyarms.levels.model_findings import YES_NO_CONFIDENCE
from tinyarms.levels.thresholds import CALIBRATED, thresholds_for
from tinyarms.models.worker import client


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scripted:
    s = Scripted(tmp_path)
    for name, value in s.env.items():
        monkeypatch.setenv(name, value)
    yield s
    client.pool.stop_all()


def lint(root: Path, **config: Any) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k.startswith("TINYARMS_")}  # as a CLI run reads them
    env |= {f"TINYARMS_MODELS__{k.upper()}": json.dumps(v) if not isinstance(v, str) else v for k, v in config.items()}
    job = lintjob.LintJob(paths=["prices.py"], budget=None, env=env)
    return lintjob.execute(job, root, lintjob.load(job, root)).to_dict()


def model_findings(out: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(f["rule"], f["line"], f["confidence"]) for f in out["findings"] if f["level"] == 2]


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "prices.py").write_text(TWINS)
    return repo


def test_a_claim_is_a_finding_when_p_yes_reaches_the_threshold(project: Path, scripted: Scripted) -> None:
    scripted.script("score 0.62")
    out = lint(project)
    assert model_findings(out) == [("simple-dry", 12, 0.62)]  # confidence is P(yes)
    stats = out["stats"]["models"]["2"]
    assert stats["verdict"] == "probability" and stats["thresholds"] == {"simple-dry": 0.5}

    scripted.script("score 0.38")
    (project / "prices.py").write_text(TWINS.replace("basket", "cart"))  # a new question
    assert model_findings(lint(project)) == []  # below the threshold: no finding


def test_a_threshold_from_config_applies_to_the_cached_probability_without_asking_again(
        project: Path, scripted: Scripted) -> None:
    scripted.script("score 0.62")
    assert model_findings(lint(project)) == [("simple-dry", 12, 0.62)]
    out = lint(project, thresholds={"simple-dry": {str(scripted.model): 0.7}})
    assert model_findings(out) == [] and out["stats"]["models"]["2"]["cached"] == 1
    assert out["stats"]["models"]["2"]["asked"] == 0 and len(scripted.pids()) == 1  # asked once in all


def test_verdict_answer_keeps_the_generated_word(project: Path, scripted: Scripted) -> None:
    out = lint(project, verdict="answer")
    assert model_findings(out) == [("simple-dry", 12, YES_NO_CONFIDENCE)]  # the fake says "yes"
    assert out["stats"]["models"]["2"]["verdict"] == "answer"


def test_calibration_fits_the_threshold_on_the_split_and_keeps_it_per_model(
        tmp_path: Path, scripted: Scripted, isolated_env: Path) -> None:
    root = tmp_path / "corpus"
    root.mkdir()
    twin = TWINS.split("\nA = 1")[0] + "\n"
    for name in ("a.py", "b.py", "c.py"):  # alike, not identical: each file is a question of its own
        (root / name).write_text(twin.replace("basket", f"basket_{name[0]}"))
    (root / "labels.yaml").write_text(
        "version: 1\ntolerance: {simple-dry: 2}\nfiles:\n"
        "  a.py:\n    expect: [{rule: simple-dry, line: 12}]\n"
        "  b.py:\n    expect: [{rule: simple-dry, line: 12}]\n"
        "  c.py:\n    note: the same shape, judged not worth a function here\n    expect: []\n")
    # a.py and b.py are real, c.py is not; the model scores them 0.7, 0.6 and 0.4 (files go in order)
    scripted.script("score 0.7", "score 0.6", "score 0.4")
    done = run_cli("eval", str(root), "--select", "simple-dry", "--calibrate", "--split", "all", "--json",
                   "--no-cache", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    verdict = report["verdicts"]["simple-dry"]
    assert (verdict["candidates"], verdict["real"], verdict["roc_auc"]) == (3, 2, 1.0)  # P(yes) ranks perfectly
    assert verdict["finder_alone"]["precision"] == 0.667  # 2 of 3 candidates are real
    assert verdict["with_model"]["precision"] == 1.0 and verdict["with_model"]["recall"] == 1.0  # at 0.5
    assert f"calibrated simple-dry for {scripted.model}: P(yes) >= 0.6000" in done.stderr
    kept = json.loads((isolated_env / CALIBRATED).read_text())
    assert kept == {"simple-dry": {str(scripted.model): 0.6}}
    assert thresholds_for(type("C", (), {"verdict": "probability", "thresholds": {}})(),
                                      str(scripted.model)) == {"simple-dry": 0.6}
