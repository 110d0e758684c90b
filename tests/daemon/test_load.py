"""Many requests at once, and many in a row: what benchmarks/load.py and memory.py found, kept fixed.

Real daemon, real socket, the fake Ollama for the model. Timing asserts have wide margins: they
tell "within the budget" from "a whole budget later", not milliseconds.
"""

from __future__ import annotations

import base64
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.daemon.daemons import make_repo, request, state_files, wait_for
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tinyarms.daemon import control


def hook_request(repo: Path, host: str, budget: float, deadline: float | None = None, **extra: Any) -> dict[str, Any]:
    """A lint request of the hook's shape: the staged bytes inline, the budget left, the deadline."""
    content = base64.b64encode(TWINS.encode()).decode()
    return {
        "op": "lint", "cwd": str(repo), "root": str(repo), "staged": True, "format": "json", "budget": budget,
        **({"deadline": deadline} if deadline is not None else {}),
        "files": [{"path": "prices.py", "content_b64": content, "size": len(TWINS), "changed": None}],
        "env": {"TINYARMS_MODELS__BACKEND": "ollama", "OLLAMA_HOST": host}, **extra,
    }


def skipped_rules(reply: dict[str, Any], reason: str) -> set[str]:
    return {s["rule"] for s in reply["result"]["skipped"] if s["reason"] == reason}


def test_budgets_that_differ_on_every_commit_share_one_settings(home: Path, tmp_path: Path,
                                                                 ollama_server: FakeOllama) -> None:
    """The hook sends the time it has left, new on every commit; settings keyed by it were loaded
    anew each time and every copy kept (measured: +159 % RSS over 1,000 commits)."""
    control.start(home)
    repo = make_repo(tmp_path / "repo")
    for i in range(12):
        reply = request(home, hook_request(repo, ollama_server.host, budget=round(4.0 - i * 0.01, 3)))
        assert reply["ok"] is True, reply
    status = request(home, {"op": "status"})["result"]
    assert status["config"]["settings_cached"] == 1


def test_the_clients_deadline_cuts_the_budget(home: Path, tmp_path: Path, ollama_server: FakeOllama) -> None:
    """A request that waited (in the socket's backlog, for the event loop) has less time than its
    budget says; the hook's deadline is what counts."""
    ollama_server.hang()
    control.start(home)
    repo = make_repo(tmp_path / "repo")
    started = time.monotonic()
    reply = request(home, hook_request(repo, ollama_server.host, budget=30.0, deadline=started + 1.0), timeout=20)
    took = time.monotonic() - started
    assert reply["ok"] is True, reply
    assert took < 5.0, took  # not the 30 s budget
    assert "simple-dry" in skipped_rules(reply, "budget")
    assert any(f["rule"] == "magic-numbers" for f in reply["result"]["findings"])  # Level 0 complete


def test_hooks_waiting_on_a_hung_model_do_not_queue_behind_each_other(
        home: Path, tmp_path: Path, ollama_server: FakeOllama) -> None:
    """Each waiting hook holds a lint thread until its deadline: with fewer threads than hooks,
    the rest started after their budget was gone. All answer within their budget, and the
    model server sees no more questions at once than models.concurrency (1) allows."""
    control.start(home)
    repo = make_repo(tmp_path / "repo")
    warm = request(home, hook_request(repo, ollama_server.host, budget=30.0, no_cache=True), timeout=60)
    assert warm["ok"] is True and not skipped_rules(warm, "budget")  # settings loaded, modules imported
    asked = len(ollama_server.calls("/api/chat"))
    ollama_server.hang()
    clients, budget = 10, 3.0
    replies: list[Any] = [None] * clients
    barrier = threading.Barrier(clients)

    def one(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            replies[i] = request(home, hook_request(repo, ollama_server.host, budget=budget, no_cache=True), timeout=30)
        except Exception as exc:  # noqa: BLE001 - shown below
            replies[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(isinstance(r, dict) and r["ok"] for r in replies), replies
    assert all("simple-dry" in skipped_rules(r, "budget") for r in replies)
    assert all(r["result"]["stats"]["duration_ms"] < (budget + 2.0) * 1000 for r in replies)
    # One question at a time for the whole daemon, not one per hook: the server was asked, and
    # never by two hooks at once.
    assert len(ollama_server.calls("/api/chat")) > asked and ollama_server.max_in_flight == 1


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_a_lint_stops_the_daemon_within_a_second_and_it_cleans_up(
        home: Path, tmp_path: Path, ollama_server: FakeOllama, sig: signal.Signals) -> None:
    """The lint waits on a hung model with 30 s of budget left: the daemon gives it a second,
    cancels it, closes the cache and exits 0, and the client is not left waiting for 30 s."""
    ollama_server.hang()
    proc = control.spawn(home)
    wait_for(lambda: control.ping(home), 15, "the daemon to answer")
    repo = make_repo(tmp_path / "repo")
    outcome: list[Any] = []

    def client() -> None:
        try:
            outcome.append(request(home, hook_request(repo, ollama_server.host, budget=30.0), timeout=40))
        except (OSError, ValueError) as exc:  # a hang-up is an answer too
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    wait_for(lambda: ollama_server.calls("/api/chat"), 15, "the lint to wait on the model")
    started = time.monotonic()
    proc.send_signal(sig)

    assert proc.wait(timeout=15) == 0
    took = time.monotonic() - started
    thread.join(timeout=10)
    assert not thread.is_alive() and outcome, "the client was left waiting"
    assert took < 5.0, took  # a second's grace, with room for a loaded machine; not the 30 s budget
    assert state_files(home) == (False, False)
    assert (home / "cache.db").exists() and not (home / "cache.db-wal").exists()  # closed: WAL checkpointed
