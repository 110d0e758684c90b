"""A model server that misbehaves costs the model checks, never Level 0 and never the budget.

Every fault a model server can show (refusing connections, closing them before answering,
hanging, answering past the budget, dying mid-answer, answering non-JSON, JSON of the wrong
shape, violations on lines it was not shown or for rules it was not asked about, an HTTP 500,
a 10 MB answer) is played by the fake Ollama server and, where the wire allows, the scripted
OpenAI-compatible server, and linted through the real lint path (``lintjob`` -> router ->
model level -> backend). The same faults then go through the real daemon, and one through the
real hook. Each time: Level 0's findings are complete, every model check that got no usable
answer is in ``skipped`` with its reason, and the whole lint ends within the budget.

(``tests/test_router_models.py`` covers the happy path and the CLI; ``tests/models/`` the
backends' own error mapping.)
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.models.fake_openai import FakeOpenAI, Reply, completion, error
from tests.models.ollama_server import FakeOllama
from tests.timing import scaled, slowness
from tinyarms import lintjob, protocol
from tinyarms.daemon import control
from tinyarms.models import openai_wire

BUDGET = 1.5
# What a lint may take over its budget here: Level 0 and loading settings, on a quiet machine
# (stretched by the machine's present slowness, see tests/timing.py).
MARGIN = 1.5
FILES = ("prices.py", "card.tsx")
MODEL_CHECK = ("prices.py", "simple-dry")  # the one question this project asks: TWINS' clone pair
SHOWN = 12  # the line the simple-dry question is about (TWINS' second block starts there)

TIMED_OUT = frozenset({"budget", "model-timeout"})
BAD = frozenset({"model-bad-answer"})
GONE = frozenset({"model-server-down"})
NOT_ASKED = frozenset({"model-unavailable"})  # no backend answered the probe: nothing was asked


def violation(rule: str = "simple-dry", line: int | str = SHOWN, **extra: Any) -> dict[str, Any]:
    return {"rule": rule, "line": line, "message": "repeats total_eu", "suggestion": "extract a helper",
            "confidence": 0.9, **extra}


def answer(*violations: dict[str, Any]) -> str:
    return json.dumps({"violations": list(violations)})


WRONG_TYPES = answer(violation(line="twelve"))
OUT_OF_RANGE = answer(violation(line=9999), violation(line=0), violation(line=-3), violation(line=1))
UNKNOWN_RULE = answer(violation(rule="magic-numbers"), violation(rule="no-such-rule"), violation(rule="design-tokens"))
HUGE = 10 << 20


def _hang_up(request: Any) -> str:
    # The fake's handler treats a reset as the client going away and closes the connection:
    # the server said nothing to the question after answering the probe and the tags.
    raise ConnectionResetError("the model runner crashed")


def closed_url() -> str:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@dataclass(frozen=True)
class Fault:
    name: str
    play: Callable[[Any], None] | None  # scripts the fake server; None: no fake (see the test)
    reasons: frozenset[str] | None  # the skip reasons allowed; None: answered, nothing usable in it


def _slow_openai(server: FakeOpenAI) -> None:
    def chat(body: Any) -> Reply:
        server._stopping.wait(BUDGET + 3)
        return Reply(200, completion(answer(violation())))
    server.chat = chat


def _truncated_openai(server: FakeOpenAI) -> None:
    whole = json.dumps(completion(answer(violation()))).encode()
    server.chat = lambda body: Reply(200, whole[: len(whole) // 2], length=False)


OLLAMA_FAULTS = [
    Fault("refuses-connections", lambda s: s.stop(), NOT_ASKED),
    Fault("closes-before-answering", lambda s: s.answer(_hang_up), GONE),
    Fault("hangs", lambda s: s.hang(), TIMED_OUT),
    # a wedged server: accepts connections, answers nothing, not even the probe or /api/tags
    Fault("answers-nothing-at-all", lambda s: s.busy(BUDGET + 5), TIMED_OUT),
    Fault("answers-past-the-budget", lambda s: s.slow(BUDGET + 3, answer(violation())), TIMED_OUT),
    Fault("drops-mid-answer", lambda s: s.drop(), GONE | BAD),
    Fault("invalid-json", lambda s: s.garbage(), BAD),
    Fault("wrong-types", lambda s: s.answer(WRONG_TYPES), BAD),
    Fault("http-500", lambda s: s.error(500, "llama runner process has terminated"), BAD),
    Fault("10-mb-answer", lambda s: s.huge(), BAD),
    Fault("lines-out-of-range", lambda s: s.answer(OUT_OF_RANGE), None),
    Fault("unknown-rules", lambda s: s.answer(UNKNOWN_RULE), None),
]

OPENAI_FAULTS = [
    Fault("refuses-connections", None, GONE),  # a closed port, no fake
    Fault("hangs", lambda s: s.hang.set(), TIMED_OUT),
    Fault("answers-past-the-budget", _slow_openai, TIMED_OUT),
    Fault("drops-mid-answer", _truncated_openai, BAD),
    Fault("invalid-json", lambda s: setattr(s, "chat", lambda body: Reply(200, b"<html>502 Bad Gateway</html>")), BAD),
    Fault("wrong-types", lambda s: setattr(s, "chat", lambda body: Reply(200, completion(WRONG_TYPES))), BAD),
    Fault("http-500", lambda s: setattr(s, "chat", lambda body: error(500, "the model runner crashed")), BAD),
    Fault("10-mb-answer", lambda s: setattr(s, "chat", lambda body: Reply(
        200, completion(answer(violation(message="x" * HUGE))))), BAD),
    Fault("lines-out-of-range", lambda s: setattr(s, "chat", lambda body: Reply(200, completion(OUT_OF_RANGE))), None),
    Fault("unknown-rules", lambda s: setattr(s, "chat", lambda body: Reply(200, completion(UNKNOWN_RULE))), None),
]


@pytest.fixture(name="project")
def project_fixture(repo: Path) -> Path:
    (repo / "prices.py").write_text(TWINS + "\nRATE = 0.2\nprint(RATE * 42)\n")
    (repo / "card.tsx").write_text('export const Card = () => <div className="bg-[#ff0000]" />;\n')
    return repo


@pytest.fixture(autouse=True)
def fresh_openai_shapes() -> Iterator[None]:
    openai_wire.forget_shapes()  # a remembered response_format of an earlier server on the same port
    yield
    openai_wire.forget_shapes()


def lint(project: Path, env: dict[str, str], budget: float = BUDGET) -> tuple[dict[str, Any], float]:
    """The real lint path in this process, timed from the job to its result."""
    started = time.monotonic()
    job = lintjob.LintJob(paths=list(FILES), budget=budget, no_cache=True, env=env)
    settings = lintjob.load(job, project)
    result = lintjob.execute(job, project, settings)
    return result.to_dict(), time.monotonic() - started


def level0(out: dict[str, Any]) -> list[tuple]:
    return sorted((f["path"], f["line"], f["column"], f["rule"]) for f in out["findings"] if f["level"] == 0)


@pytest.fixture(scope="module")
def margin() -> float:
    return MARGIN * slowness()


def check(out: dict[str, Any], seconds: float, fault: Fault, want_level0: list[tuple], margin: float) -> None:
    """The contract: Level 0 complete, the model check skipped with a reason (or answered with
    nothing usable), no model finding from a bad answer, within the budget."""
    assert level0(out) == want_level0, f"{fault.name}: Level 0 incomplete"
    assert [f for f in out["findings"] if f["level"] != 0] == [], f"{fault.name}: a model finding from a bad answer"
    skips = {(s["path"], s["rule"]): s for s in out["skipped"] if s["level"] == 2}
    if fault.reasons is None:  # answered: the check ran; what it said about other lines and rules is dropped
        assert skips == {}, fault.name
        models = out["stats"]["models"]["2"]
        assert (models["asked"], models["dropped"]) == (1, 4 if "range" in fault.name else 3), models
    else:
        assert MODEL_CHECK in skips, f"{fault.name}: the model check vanished: {out['skipped']}"
        for skip in skips.values():
            assert skip["reason"] in fault.reasons, (fault.name, skip)
            assert skip["message"], skip
    assert seconds < BUDGET + margin, f"{fault.name}: {seconds:.2f} s"


@pytest.fixture
def want_level0(project: Path) -> list[tuple]:
    out, _ = lint(project, {"TINYARMS_MODELS__BACKEND": "none"})
    assert {f[3] for f in level0(out)} == {"magic-numbers", "hardcoded-colors"}
    return level0(out)


@pytest.mark.parametrize("fault", OLLAMA_FAULTS, ids=[f.name for f in OLLAMA_FAULTS])
def test_ollama_faults_cost_only_the_model_checks(project: Path, want_level0: list[tuple], margin: float,
                                                  fault: Fault) -> None:
    server = FakeOllama().start()
    host = server.host
    fault.play(server)
    try:
        out, seconds = lint(project, {"OLLAMA_HOST": host, "TINYARMS_MODELS__BACKEND": "ollama"})
    finally:
        server.stop()
    check(out, seconds, fault, want_level0, margin)


@pytest.mark.parametrize("fault", OPENAI_FAULTS, ids=[f.name for f in OPENAI_FAULTS])
def test_openai_faults_cost_only_the_model_checks(project: Path, want_level0: list[tuple], margin: float,
                                                  fault: Fault) -> None:
    server = None if fault.play is None else FakeOpenAI()
    if server is not None:
        fault.play(server)
    try:
        base_url = (server.base_url if server is not None else closed_url() + "/v1")
        out, seconds = lint(project, {"TINYARMS_MODELS__BACKEND": "openai",
                                      "TINYARMS_MODELS__OPENAI__BASE_URL": base_url})
    finally:
        if server is not None:
            server.stop()
    check(out, seconds, fault, want_level0, margin)


# -- the same faults through the real daemon ---------------------------------------------------

DAEMON_FAULTS = [f for f in OLLAMA_FAULTS if f.name in (
    "closes-before-answering", "hangs", "drops-mid-answer", "invalid-json", "10-mb-answer", "unknown-rules")]


@pytest.fixture
def daemon(isolated_env: Path) -> Iterator[Path]:
    control.start(isolated_env)
    yield isolated_env
    control.stop(isolated_env)
    assert not control.is_locked(isolated_env), "a daemon outlived its test"


def test_the_daemon_answers_every_fault_within_the_budget_and_keeps_serving(
    project: Path, want_level0: list[tuple], daemon: Path, margin: float,
) -> None:
    pid = control.ping(daemon)["result"]["pid"]
    for fault in DAEMON_FAULTS:
        server = FakeOllama().start()
        fault.play(server)
        message = {"op": "lint", "cwd": str(project), "paths": list(FILES), "no_cache": True, "env": {
            "OLLAMA_HOST": server.host, "TINYARMS_MODELS__BACKEND": "ollama", "TINYARMS_BUDGET": str(BUDGET)}}
        started = time.monotonic()
        try:
            with protocol.Connection(protocol.socket_path(daemon), 30) as conn:
                reply = conn.request(message)
        finally:
            server.stop()
        seconds = time.monotonic() - started
        assert reply["ok"], (fault.name, reply)
        check(reply["result"], seconds, fault, want_level0, margin)
        assert control.ping(daemon)["result"]["pid"] == pid, f"{fault.name}: the daemon was replaced"


def test_a_10_mb_model_answer_through_the_hook_blocks_only_on_level0(
    project: Path, want_level0: list[tuple], daemon: Path, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.hooks.commits import MARGIN as HOOK_MARGIN
    from tests.hooks.commits import commit

    install_hook(project, tmp_path_factory, monkeypatch)
    budget, margin = scaled(3.0, HOOK_MARGIN)
    with FakeOllama() as server:
        server.huge()
        env = {"OLLAMA_HOST": server.host, "TINYARMS_MODELS__BACKEND": "ollama", "TINYARMS_BUDGET": str(budget)}
        result = commit(project, "prices", env=env)
        asked = server.calls("/api/chat")
    assert result.code == 1 and result.seconds < budget + margin, result
    for path, line, column, rule in want_level0:  # Level 0 complete
        assert f"{path}:{line}:{column}: {rule}" in result.output, result.output
    assert "skipped simple-dry" in result.output and "more than 1048576 bytes; refused" in result.output, result.output
    assert asked, "the hook never asked the model: the fault was not exercised"
    assert control.ping(daemon) is not None


def install_hook(project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook installed in ``project`` with FILES staged, and no user or system git config."""
    from tests.conftest import git, run_cli

    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.touch()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    assert run_cli("hook", "install", cwd=project).returncode == 0
    git(project, "add", *FILES)
