"""Lint-on-save: a real daemon watching real git repositories, files saved as editors save them.

Every daemon a test starts is stopped by the ``daemon`` fixture (``control.stop`` on this test's
state directory); nothing is killed by name. The model answers come from the fake Ollama server.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.conftest import git
from tests.daemon.daemons import lint_message, request, stop_daemons
from tests.hooks.commits import commit, install, plain_git_fixture  # noqa: F401
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_router_models import agreeing_model
from tinyarms.daemon import control, watcher
from tinyarms.daemon.watcher import DEBOUNCE, Watcher
from tinyarms.daemon.watches import WatchedRepo
from tinyarms.ruleset import load_settings
from tinyarms.stores import repos

LEVEL0_ONLY = {"TINYARMS_MODELS__BACKEND": "none"}
MAGIC = "def f(x):\n    return x * {n}\n"


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture(name="daemon")
def daemon_fixture(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """``daemon(env)`` starts this test's daemon with ``env``; it is stopped at teardown."""

    def start(env: dict[str, str]) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        control.start(isolated_env)

    yield start
    stop_daemons(isolated_env)


def status(home: Path) -> dict[str, Any]:
    reply = request(home, {"op": "status"})
    assert reply["ok"], reply
    return reply["result"]


def poll(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.1) -> Any:
    """Status costs the daemon a request (and background work waits for requests): poll gently."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)


def watching(home: Path, root: Path) -> bool:
    return any(r["path"] == str(root) and r["state"] == "watching" for r in status(home)["watched_repos"])


def settled(home: Path, linted: int) -> dict[str, Any] | None:
    """The watcher's counters once ``linted`` files are done and nothing waits or runs."""
    w = status(home)["watcher"]
    done = w["linted"] >= linted and not w["queued"] and not w["pending"] and not w["linting"]
    return w if done else None


def save_by_rename(path: Path, text: str) -> None:
    """As vim, VS Code or JetBrains with safe-write: a temp file next to it, renamed over it."""
    tmp = path.with_name(f".{path.name}.{time.monotonic_ns()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_in_place(path: Path, text: str) -> None:
    """Truncate, then write in two pieces, as an editor streaming its buffer does."""
    with open(path, "w") as fh:
        fh.flush()
        half = len(text) // 2
        fh.write(text[:half])
        fh.flush()
        fh.write(text[half:])


def registered(repo: Path) -> Path:
    repos.add(repo)
    return repo


# -- the registry, followed live --------------------------------------------------------------


def test_a_repository_added_while_the_daemon_runs_is_watched_without_a_restart(
    daemon: Callable, isolated_env: Path, repo: Path,
) -> None:
    daemon(LEVEL0_ONLY)
    pid = status(isolated_env)["daemon"]["pid"]
    assert status(isolated_env)["watched_repos"] == []

    repos.add(repo)
    poll(lambda: watching(isolated_env, repo), 5, "the new repository to be watched")
    save_by_rename(repo / "a.py", MAGIC.format(n=42))
    w = poll(lambda: settled(isolated_env, 1), 5, "a.py to be linted")
    assert w["linted"] == 1
    [entry] = status(isolated_env)["watched_repos"]
    assert entry["last_lint"]["path"] == "a.py" and entry["last_lint"]["findings"] == 1  # magic-numbers

    repos.remove(repo)
    poll(lambda: status(isolated_env)["watched_repos"] == [], 5, "the repository to be dropped")
    save_by_rename(repo / "a.py", MAGIC.format(n=43))
    time.sleep(DEBOUNCE + 0.5)
    assert status(isolated_env)["watcher"]["linted"] == 1
    assert status(isolated_env)["daemon"]["pid"] == pid


def test_watch_errors_show_in_status_and_the_daemon_keeps_serving(
    daemon: Callable, isolated_env: Path, tmp_path: Path, repo: Path,
) -> None:
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    git(doomed, "init", "-q")
    missing = tmp_path / "never-there"
    (isolated_env / "repos.json").write_text(json.dumps([str(repo), str(doomed), str(missing)]))
    daemon(LEVEL0_ONLY)
    poll(lambda: watching(isolated_env, repo) and watching(isolated_env, doomed), 5, "both repositories watched")
    states = {r["path"]: r for r in status(isolated_env)["watched_repos"]}
    assert states[str(missing)]["state"] == "error" and "no such directory" in states[str(missing)]["error"]

    for path in sorted(doomed.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    doomed.rmdir()
    poll(lambda: {r["path"]: r["state"] for r in status(isolated_env)["watched_repos"]}[str(doomed)] == "error",
         5, "the deleted repository to be shown in error")
    save_by_rename(repo / "a.py", MAGIC.format(n=42))  # the others are still watched
    poll(lambda: settled(isolated_env, 1), 5, "a.py to be linted")

    (isolated_env / "repos.json").write_text("[oops")  # a damaged registry changes nothing, and says so
    poll(lambda: status(isolated_env)["watcher"]["registry_error"], 5, "the registry error to show")
    assert watching(isolated_env, repo)


# -- debouncing and filtering -----------------------------------------------------------------


def test_a_burst_of_writes_is_linted_once_per_quiet_window(daemon: Callable, isolated_env: Path, repo: Path) -> None:
    registered(repo)
    daemon(LEVEL0_ONLY)
    poll(lambda: watching(isolated_env, repo), 5, "the repository to be watched")
    path = repo / "app.py"

    # One save as editors do it: a backup, the temp file renamed over, then a formatter rewriting it.
    for n, save in enumerate([save_by_rename, save_by_rename, save_in_place, save_in_place], start=40):
        save(path, MAGIC.format(n=n))
        time.sleep(0.05)
    poll(lambda: settled(isolated_env, 1), 5, "the burst to be linted")
    time.sleep(DEBOUNCE + 0.4)
    assert status(isolated_env)["watcher"]["linted"] == 1
    # What was linted is the last content: a lint of the file now is a cache hit.
    again = request(isolated_env, lint_message(repo, "app.py"))["result"]
    assert again["stats"]["cache_hits"] == 1 and again["stats"]["cache_misses"] == 0

    for n in range(50, 53):  # a second save, in place, several writes: one more lint
        save_in_place(path, MAGIC.format(n=n))
        time.sleep(0.05)
    poll(lambda: settled(isolated_env, 2), 5, "the second burst to be linted")
    time.sleep(DEBOUNCE + 0.4)
    w = status(isolated_env)["watcher"]
    assert w["linted"] == 2 and w["dropped"] == 0

    path.touch()  # metadata only: not a save
    (repo / "app.py.swp").write_text("x")  # an editor's swap file: matched by no rule
    time.sleep(DEBOUNCE + 0.4)
    assert status(isolated_env)["watcher"]["linted"] == 2


def test_ignored_excluded_and_unmatched_files_are_not_linted(daemon: Callable, isolated_env: Path, repo: Path) -> None:
    (repo / ".gitignore").write_text("build/\n*.gen.py\n")
    (repo / ".tinyarms.yaml").write_text("exclude: ['vendor/**']\n")
    for folder in ("build", "vendor"):
        (repo / folder).mkdir()
    registered(repo)
    daemon(LEVEL0_ONLY)
    poll(lambda: watching(isolated_env, repo), 5, "the repository to be watched")

    for name in ("build/out.py", "models.gen.py"):  # gitignored
        save_by_rename(repo / name, MAGIC.format(n=42))
    save_by_rename(repo / "vendor" / "lib.py", MAGIC.format(n=42))  # excluded by the config
    for name in ("notes.txt", "README.md"):  # no rule applies
        save_by_rename(repo / name, "hello\n")
    (repo / ".git" / "scratch").write_text("x")  # inside .git
    save_by_rename(repo / "real.py", MAGIC.format(n=42))

    poll(lambda: settled(isolated_env, 1), 5, "real.py to be linted")
    time.sleep(DEBOUNCE + 0.4)
    w = status(isolated_env)["watcher"]
    [entry] = status(isolated_env)["watched_repos"]
    assert (w["linted"], entry["last_lint"]["path"]) == (1, "real.py")
    assert (w["ignored"], w["out_of_scope"]) == (2, 3)


def test_a_full_queue_drops_and_counts_and_a_queued_file_is_queued_once(
    isolated_env: Path, repo: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process, no threads: events in, the debounce table flushed, the bounded queue filled."""
    monkeypatch.setattr(watcher, "QUEUE_SIZE", 3)
    w = Watcher(isolated_env, lambda root, env: load_settings(root, {}, env=env), None, busy=lambda: True)
    w._repos[repo] = WatchedRepo(repo, state="watching")
    for i in range(5):
        (repo / f"f{i}.py").write_text(MAGIC.format(n=i + 40))
        w.saw(repo, str(repo / f"f{i}.py"))
    w.saw(repo, str(repo / ".git" / "index"))  # .git: not even an event
    w.saw(repo, str(repo.parent / "elsewhere.py"))  # outside the repository
    assert w._take_quiet(time.monotonic()) == {}  # not quiet yet
    w._admit(w._take_quiet(time.monotonic() + DEBOUNCE))
    w.saw(repo, str(repo / "f0.py"))  # saved again while queued: still one entry
    w._admit(w._take_quiet(time.monotonic() + DEBOUNCE))

    state = w.status()
    assert state["watcher"]["events"] == 6 and state["watcher"]["queued"] == 3 and state["watcher"]["dropped"] == 2
    assert state["watched_repos"][0]["queued"] == 3


# -- with a model: the commit finds everything cached, and goes first ---------------------------


def models_env(server: FakeOllama) -> dict[str, str]:
    return {"OLLAMA_HOST": server.host, "TINYARMS_MODELS__BACKEND": "ollama", "TINYARMS_BUDGET": "5"}


def test_after_a_save_the_commit_is_a_full_cache_hit(
    daemon: Callable, isolated_env: Path, repo: Path, ollama_server: FakeOllama,
) -> None:
    ollama_server.answer(agreeing_model)
    env = models_env(ollama_server)
    install(repo)  # registers the repository
    daemon(env)
    poll(lambda: watching(isolated_env, repo), 5, "the repository to be watched")

    save_by_rename(repo / "prices.py", TWINS)
    poll(lambda: settled(isolated_env, 1), 10, "prices.py to be linted in the background")
    asked = len(ollama_server.calls("/api/chat"))
    assert asked == 1  # the one simple-dry candidate
    before = status(isolated_env)["cache"]

    git(repo, "add", "prices.py")
    result = commit(repo, "prices", env=env)

    assert "prices.py:9:20: magic-numbers" in result.output  # Level 0, from the cache
    assert "prices.py:12:" in result.output and "simple-dry" in result.output, result.output  # the model's answer
    assert "Level 2: qwen2.5-coder:3b via ollama, 1 question: 0 asked, 1 from the cache" in result.output
    assert len(ollama_server.calls("/api/chat")) == asked  # nothing asked at commit
    after = status(isolated_env)["cache"]
    assert after["misses"] == before["misses"], "the commit missed the cache"  # Level 0 and the model answer
    assert after["hits"] == before["hits"] + 2


def test_a_commit_during_background_work_is_answered_first(
    daemon: Callable, isolated_env: Path, repo: Path, ollama_server: FakeOllama,
) -> None:
    # A model server with one slot, as Ollama is by default: each answer takes 0.4 s, one at a time.
    slot = threading.Lock()
    arrivals: list[tuple[float, bool]] = []  # (when, the commit's question?)
    answered: dict[bool, float] = {}

    def one_at_a_time(req: Any) -> str:
        ours = "checkout.py" in req.body["messages"][-1]["content"]
        arrivals.append((time.monotonic(), ours))
        with slot:
            time.sleep(0.4)
        answered[ours] = time.monotonic()
        return '{"violations": []}'

    ollama_server.answer(one_at_a_time)
    env = models_env(ollama_server)
    install(repo)
    daemon(env)
    poll(lambda: watching(isolated_env, repo), 5, "the repository to be watched")

    for i in range(10):  # ten files, one model question each: 4 s of background work
        save_by_rename(repo / f"w{i}.py", TWINS.replace("total", f"total{i}"))
    poll(lambda: answered, 10, "the background to be asking the model", every=0.02)

    save_by_rename(repo / "checkout.py", TWINS.replace("total", "checkout"))  # queued last
    git(repo, "add", "checkout.py")
    result = commit(repo, "checkout", env=env)

    assert "Level 2: qwen2.5-coder:3b via ollama, 1 question: 1 asked" in result.output, result.output
    assert "skipped simple-dry" not in result.output
    assert result.seconds < 3.0, result.seconds  # at most one background answer ahead of it
    [asked] = [when for when, ours in arrivals if ours]
    cut_in = [when for when, ours in arrivals if not ours and asked <= when <= answered[True]]
    assert not cut_in, "background questions were asked while the commit waited"
    w = status(isolated_env)["watcher"]
    assert w["queued"] + (1 if w["linting"] else 0) > 0, "the commit waited for the whole queue"
