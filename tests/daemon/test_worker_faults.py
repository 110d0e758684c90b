"""A model worker that dies, hangs or talks garbage, through ``lint --no-daemon``, the daemon and the hook.

The worker is the real worker loop with a scripted engine (``tests/models/fake_worker.py``):
each fault is the next step of its plan. Every time: Level 0's findings are complete, the model
check is skipped with the reason (``model-crashed`` naming the signal, ``model-timeout``,
``model-bad-answer``) within the budget and its margin, the daemon keeps serving with the same
pid, and the next question is answered by a restarted worker. After three crashes in a row every
model check says ``model-unavailable`` with the crash and the fix, until ``tinyarms doctor`` passes.
(The pool's own behaviour is in ``tests/models/test_worker.py``; a real model's worker killed
mid-question in ``tests/models/test_llamacpp.py``.)
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.models.test_worker import FAKE
from tests.test_model_faults import FILES, MODEL_CHECK, install_hook, project_fixture  # noqa: F401 - a fixture
from tests.timing import scaled
from tinyarms import protocol
from tinyarms.daemon import control
from tinyarms.models.worker import client, process

BUDGET = 3.0
MARGIN = 1.5  # Level 0, settings, a worker's start: stretched by the machine's slowness

FAULTS = [  # (plan step, skip reason, what the message names)
    ("sigill", "model-crashed", "SIGILL"),
    ("sigsegv", "model-crashed", "SIGSEGV"),
    ("sigkill", "model-crashed", "SIGKILL"),
    ("exit 3", "model-crashed", "status 3"),
    ("garbage", "model-bad-answer", "malformed message"),
    ("half", "model-crashed", "status 3"),
    ("hang", "model-timeout", "did not answer in time"),
]


class Scripted:
    def __init__(self, folder: Path) -> None:
        self.plan = folder / "plan"
        self.log = folder / "log"
        self.model = folder / "fake-model.gguf"
        self.model.write_bytes(b"GGUF" + bytes(4096))
        self.env = {
            process.COMMAND_ENV: str(FAKE), "FAKE_WORKER_PLAN": str(self.plan), "FAKE_WORKER_LOG": str(self.log),
            "TINYARMS_MODELS__BACKEND": "embedded", "TINYARMS_MODELS__FAST__EMBEDDED": str(self.model),
            "TINYARMS_MODELS__PRELOAD": "false",
        }

    def script(self, *steps: str) -> None:
        self.plan.write_text("".join(f"{s}\n" for s in steps))

    def pids(self) -> list[int]:
        return [int(line.split()[0]) for line in self.log.read_text().splitlines()] if self.log.exists() else []


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scripted]:
    s = Scripted(tmp_path)
    for name, value in s.env.items():
        monkeypatch.setenv(name, value)  # the daemon and the hook inherit them, as a user's would
    yield s
    client.pool.stop_all()


@pytest.fixture
def want_level0(project: Path) -> list[tuple]:
    out = lint_cli(project, {"TINYARMS_MODELS__BACKEND": "none"})
    assert {f["rule"] for f in out["findings"]} == {"magic-numbers", "hardcoded-colors"}
    return level0(out)


def level0(out: dict[str, Any]) -> list[tuple]:
    return sorted((f["path"], f["line"], f["rule"]) for f in out["findings"] if f["level"] == 0)


def model_findings(out: dict[str, Any]) -> list[tuple]:
    return [(f["path"], f["rule"]) for f in out["findings"] if f["level"] == 2]


def skip_of(out: dict[str, Any]) -> dict[str, Any] | None:
    skips = {(s["path"], s["rule"]): s for s in out["skipped"] if s.get("level") == 2}
    return skips.get(MODEL_CHECK)


def lint_cli(project: Path, env: dict[str, str] | None = None, budget: float = BUDGET) -> dict[str, Any]:
    done = run_cli("lint", "--no-daemon", "--no-cache", "--format", "json", "--budget", str(budget), *FILES,
                   cwd=project, env=env)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def check_skipped(out: dict[str, Any], reason: str, names: str, want_level0: list[tuple]) -> None:
    assert level0(out) == want_level0, "Level 0 incomplete"
    skip = skip_of(out)
    assert skip is not None, f"the model check vanished: {out['skipped']}"
    assert skip["reason"] in ({reason, "budget"} if reason == "model-timeout" else {reason}), skip
    if skip["reason"] != "budget":
        assert names in skip["message"], skip
    assert model_findings(out) == []


@pytest.mark.parametrize(("step", "reason", "names"), FAULTS, ids=[f[0] for f in FAULTS])
def test_lint_no_daemon_skips_the_question_with_the_reason_within_budget(
        project: Path, scripted: Scripted, want_level0: list[tuple], step: str, reason: str, names: str) -> None:
    budget, margin = scaled(BUDGET, MARGIN)
    scripted.script(step)
    started = time.monotonic()
    out = lint_cli(project, budget=budget)
    seconds = time.monotonic() - started
    check_skipped(out, reason, names, want_level0)
    assert seconds < budget + margin + 0.5, seconds  # + starting the CLI itself

    scripted.script("answer")  # the next run asks a new worker, and gets its answer
    again = lint_cli(project, budget=budget)
    assert skip_of(again) is None and model_findings(again) == [MODEL_CHECK], again["skipped"]


@pytest.fixture
def daemon(isolated_env: Path, scripted: Scripted) -> Iterator[Path]:
    control.start(isolated_env)
    yield isolated_env
    control.stop(isolated_env)
    assert not control.is_locked(isolated_env), "a daemon outlived its test"


def ask_daemon(home: Path, project: Path, budget: float) -> tuple[dict[str, Any], float]:
    env = {k: v for k, v in os.environ.items() if k.startswith("TINYARMS_")}  # as the hook sends them
    message = {"op": "lint", "cwd": str(project), "paths": list(FILES), "no_cache": True,
               "env": {**env, "TINYARMS_BUDGET": str(budget)}}
    started = time.monotonic()
    with protocol.Connection(protocol.socket_path(home), 30) as conn:
        reply = conn.request(message)
    assert reply["ok"], reply
    return reply["result"], time.monotonic() - started


def test_the_daemon_survives_every_worker_fault_and_the_next_question_gets_a_new_worker(
        project: Path, scripted: Scripted, want_level0: list[tuple], daemon: Path) -> None:
    budget, margin = scaled(BUDGET, MARGIN)
    pid = control.ping(daemon)["result"]["pid"]
    for step, reason, names in FAULTS:
        scripted.script(step, "answer")
        out, seconds = ask_daemon(daemon, project, budget)
        check_skipped(out, reason, names, want_level0)
        assert seconds < budget + margin, (step, seconds)
        faulty = scripted.pids()[-1]

        out, _ = ask_daemon(daemon, project, budget)
        assert skip_of(out) is None and model_findings(out) == [MODEL_CHECK], (step, out["skipped"])
        assert scripted.pids()[-1] != faulty, f"{step}: the same worker answered"
        assert control.ping(daemon)["result"]["pid"] == pid, f"{step}: the daemon was replaced"

    done = run_cli("status", "--json", cwd=project)
    workers = json.loads(done.stdout)["models"]["embedded_workers"]
    assert workers["crashes"] == len(FAULTS) and workers["broken"] is None
    assert workers["last_crash"]["cause"] == "did not stop at its deadline and was killed"
    [alive] = workers["workers"]
    assert alive["pid"] == scripted.pids()[-1] and alive["questions"] >= 1  # the background may ask too


def test_three_crashes_in_a_row_make_every_model_check_unavailable_until_doctor_passes(
        project: Path, scripted: Scripted, want_level0: list[tuple], daemon: Path) -> None:
    budget, _ = scaled(BUDGET, MARGIN)
    scripted.script("sigill", "sigill", "sigill")
    reasons = []
    for _ in range(6):  # the second crash earns a back-off of a few seconds: wait it out
        out, _ = ask_daemon(daemon, project, budget)
        skip = skip_of(out)
        assert skip is not None and level0(out) == want_level0
        reasons.append(skip["reason"])
        if skip["reason"] == "model-unavailable":
            break
        time.sleep(1.0)
    assert reasons.count("model-crashed") >= 3 and reasons[-1] == "model-unavailable", reasons
    assert "broken" in skip["message"] and "SIGILL" in skip["message"], skip
    assert "CMAKE_ARGS=" in skip["hint"] and "tinyarms doctor" in skip["hint"], skip
    status = json.loads(run_cli("status", "--json", cwd=project).stdout)["models"]
    assert status["backend"] is None and "broken" in status["why"]
    assert "EMBEDDED BROKEN" in run_cli("status", cwd=project).stdout
    assert len(scripted.pids()) == 3  # nothing more was started while broken

    doctor = run_cli("doctor", cwd=project)  # the plan is used up: the worker answers now
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    out, _ = ask_daemon(daemon, project, budget)
    assert skip_of(out) is None and model_findings(out) == [MODEL_CHECK], out["skipped"]


def test_a_worker_killed_during_a_commit_costs_that_question_and_the_next_commit_is_answered(
        project: Path, scripted: Scripted, want_level0: list[tuple], daemon: Path,
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hooks.commits import MARGIN as HOOK_MARGIN
    from tests.hooks.commits import commit

    install_hook(project, tmp_path_factory, monkeypatch)
    budget, margin = scaled(BUDGET, HOOK_MARGIN)
    env = {"TINYARMS_BUDGET": str(budget)}

    scripted.script("sigkill", "answer")
    first = commit(project, "first", env=env)
    assert first.code == 1 and first.seconds < budget + margin, first
    for path, line, rule in want_level0:
        assert f"{path}:{line}:" in first.output and rule in first.output, first.output
    assert "skipped simple-dry" in first.output and "died of SIGKILL" in first.output, first.output
    assert "daemon unavailable" not in first.output, first.output
    killed = scripted.pids()[-1]

    second = commit(project, "second", env=env)
    assert second.code == 1, second.output
    assert "simple-dry" in second.output and "skipped simple-dry" not in second.output, second.output
    assert scripted.pids()[-1] != killed
    status = run_cli("status", cwd=project).stdout
    assert f"(pid {killed}) died of SIGKILL" in status, status
    assert os.environ.get(process.COMMAND_ENV)  # the daemon ran the scripted worker, as the test meant
