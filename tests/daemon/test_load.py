"""Many requests at once, and many in a row: what benchmarks/load.py and memory.py found, kept fixed.

Real daemon, real socket, the fake Ollama for the model. Timing asserts have wide margins: they
tell "within the budget" from "a whole budget later", not milliseconds.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path
from typing import Any

from tests.candidates.test_simple_dry import TWINS
from tests.daemon.test_server import home, make_repo, request  # noqa: F401
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


def test_budgets_that_differ_on_every_commit_share_one_settings(home: Path, tmp_path: Path,  # noqa: F811
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


def test_the_clients_deadline_cuts_the_budget(home: Path, tmp_path: Path, ollama_server: FakeOllama) -> None:  # noqa: F811
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
        home: Path, tmp_path: Path, ollama_server: FakeOllama) -> None:  # noqa: F811
    """Each waiting hook holds a lint thread until its deadline: with fewer threads than hooks,
    the rest started after their budget was gone and never asked the model."""
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
    # Every hook had its own try at the model within its budget.
    assert len(ollama_server.calls("/api/chat")) - asked >= clients
