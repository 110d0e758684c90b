"""Faults: the daemon killed mid-lint and mid-scan, two daemons at once, the state directory
deleted under it, a full disk under the cache. Nothing is lost and nothing hangs.

Real daemons, real sockets, real git commits through the installed hook, real SQLite; the model
is the fake Ollama. (Between-commit SIGKILL, racing ``daemon start`` and a squatted socket path
are in tests/hooks/test_broken_daemon.py and tests/daemon/test_lifecycle.py.)
"""

from __future__ import annotations

import base64
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.candidates.test_simple_dry import TWINS
from tests.daemon.daemons import daemons_of, gone, make_repo, request, stop_daemons, wait_for
from tests.hooks.commits import COLOURED, commit, install, plain_git_fixture, write  # noqa: F401
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_scan import PARSER, agreeing, project_fixture, scan_cli  # noqa: F401
from tinyarms import protocol
from tinyarms.daemon import control

BUDGET = 3.0


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def files_payload(tag: str, count: int) -> list[dict]:
    """``count`` files never seen before, each with findings: cache writes for every one."""
    out = []
    for i in range(count):
        text = f'export const c{i} = "#ff{i % 10}0{i % 7}0"; // {tag}\n'
        out.append({"path": f"gen/{tag}/f{i}.ts", "content_b64": base64.b64encode(text.encode()).decode(),
                    "size": len(text), "changed": None})
    return out


def daemon_pid(state: Path) -> int:
    return request(state, {"op": "ping"}, timeout=5)["result"]["pid"]


# -- SIGKILL during a lint ---------------------------------------------------------------------


def test_kill_9_during_a_lint_the_commit_is_not_hung_and_the_next_one_works(
        repo: Path, home: Path, ollama_server: FakeOllama) -> None:
    install(repo)
    ollama_server.hang()  # the commit's lint waits on the model: the kill lands mid-lint
    env = {"OLLAMA_HOST": ollama_server.host, "TINYARMS_BUDGET": str(BUDGET), "TINYARMS_MODELS__BACKEND": "ollama"}
    control.start(home)
    old = daemon_pid(home)
    write(repo, "prices.py", TWINS)  # a simple-dry question for the model

    writing = threading.Event()

    def writer() -> None:  # big cache writes in flight at the moment of the kill
        n = 0
        while not writing.is_set():
            n += 1
            try:
                request(home, {"op": "lint", "cwd": str(repo), "root": str(repo), "env": env,
                               "files": files_payload(f"w{n}", 300)}, timeout=10)
            except (OSError, protocol.ProtocolError):
                return

    threads = [threading.Thread(target=writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    hooked = subprocess.Popen(["git", "commit", "-m", "killed"], cwd=repo, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})
    wait_for(lambda: ollama_server.calls("/api/chat"), 20, "the commit's lint to ask the model")
    os.kill(old, signal.SIGKILL)
    output, _ = hooked.communicate(timeout=30)
    writing.set()
    for thread in threads:
        thread.join(timeout=30)
    assert time.monotonic() - started < BUDGET + 5.0, output  # never hung on the dead daemon
    assert hooked.returncode != 0 and "prices.py:" in output and "magic-numbers" in output, output  # Level 0 ran
    wait_for(lambda: gone(old), 5, "the killed daemon to be gone")

    assert integrity(home / "cache.db") == "ok"
    write(repo, "Alert.tsx", COLOURED)
    blocked = commit(repo, "next", env={**env, "TINYARMS_MODELS__BACKEND": "none"})
    assert blocked.code == 1 and "Alert.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output
    assert "daemon unavailable" not in blocked.output, blocked.output  # a new daemon answered, no fallback
    assert daemon_pid(home) != old
    assert integrity(home / "cache.db") == "ok"


# -- SIGKILL during a deep scan in the daemon ------------------------------------------------------


def test_kill_9_during_a_deep_scan_in_the_daemon_resumes_where_it_stopped(
        project: Path, ollama_server: FakeOllama, isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = isolated_env
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.host)
    for i in range(8):
        (project / f"job{i}.py").write_text(PARSER.replace("parse_args", f"parse_{i}").replace('"rest"', f'"r{i}"'))
    ollama_server.slow(0.15, agreeing)
    try:
        old = control.start(state)["result"]["pid"]
        client = scan_cli("--deep", cwd=project, popen=True)
        done = wait_for(lambda: len(journal_done(state)) >= 4 and journal_done(state), 60, "the scan to get going")
        os.kill(old, signal.SIGKILL)
        _, err = client.communicate(timeout=30)  # the client notices; it does not wait forever
        assert client.returncode == 2 and "lost the daemon" in err and "resumes" in err, err
        done = journal_done(state)
        assert 4 <= len(done) < 12
        assert integrity(state / "scans.db") == "ok" and integrity(state / "cache.db") == "ok"

        ollama_server.answer(agreeing)
        asked = len(ollama_server.calls("/api/chat"))
        control.start(state)  # no manual clean-up before it
        result = scan_cli("--deep", cwd=project)
        assert result.returncode == 1, result.stderr
        report = json.loads(Path(result.stdout.strip()).with_suffix(".json").read_text())
        assert report["scan"]["runs"] == 2 and report["scan"]["files_resumed"] == len(done)
        assert report["scan"]["files_total"] == 12
        again = questioned(ollama_server.calls("/api/chat")[asked:])
        assert not again & set(done)  # files done before the kill were not judged again
    finally:
        stop_daemons(state)


def journal_done(state: Path) -> list[str]:
    try:
        with sqlite3.connect(state / "scans.db") as conn:
            rows = conn.execute("SELECT files FROM scan_parts WHERE kind = 'files'").fetchall()
    except sqlite3.OperationalError:
        return []
    return [name for (files,) in rows for name in json.loads(files)]


def questioned(calls: list) -> set[str]:
    from tests.test_scan import own_file, per_file_questions

    assert own_file  # per_file_questions uses it
    return set(per_file_questions(calls))


# -- two daemons at once -------------------------------------------------------------------------


def test_two_daemons_started_at_once_exactly_one_serves(home: Path) -> None:
    for _ in range(2):
        runs = [subprocess.Popen([sys.executable, "-m", "tinyarms", "daemon", "run"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
        serving = wait_for(lambda: control.ping(home), 15, "a daemon to answer")["result"]["pid"]
        loser = next(p for p in runs if p.pid != serving)
        _, err = loser.communicate(timeout=15)
        assert loser.returncode == 0 and f"already running (pid {serving})" in err
        assert [p.pid for p in daemons_of(home)] == [serving]
        assert (control.read_pid(home) or {}).get("pid") == serving
        control.stop(home)
        for proc in runs:
            proc.wait(timeout=10)


# -- the state directory deleted under the daemon ----------------------------------------------


LEVEL0_ENV = {"TINYARMS_BUDGET": str(BUDGET), "TINYARMS_MODELS__BACKEND": "none"}


def first_commit_served(repo: Path, state: Path) -> int:
    """Install the hook, make a commit it blocks (Level 0 only), and return the daemon's pid."""
    install(repo)
    write(repo, "Alert.tsx", COLOURED)
    assert commit(repo, "first", env=LEVEL0_ENV).code == 1
    return daemon_pid(state)


def test_state_directory_deleted_the_next_commit_works_and_the_old_daemon_exits(
        repo: Path, home: Path) -> None:
    old = first_commit_served(repo, home)

    os.kill(old, signal.SIGSTOP)  # so that it notices only after a new daemon took its place
    try:
        shutil.rmtree(home)
        second = commit(repo, "second", env=LEVEL0_ENV)
        assert second.code == 1 and "hardcoded-colors" in second.output, second.output
        assert second.seconds < BUDGET + 1.0
        new = daemon_pid(home)
        assert new != old
    finally:
        os.kill(old, signal.SIGCONT)
    wait_for(lambda: gone(old), 10, "the daemon whose state directory was deleted to exit")
    third = commit(repo, "third", env=LEVEL0_ENV)  # the old daemon's exit left the new one's socket alone
    assert "daemon unavailable" not in third.output and third.code == 1, third.output
    assert daemon_pid(home) == new and [p.pid for p in daemons_of(home)] == [new]
    assert (control.read_pid(home) or {}).get("pid") == new


# -- a full disk under the cache ---------------------------------------------------------------


def _limit_file_size(limit: int):
    def apply() -> None:
        # A file may not grow past ``limit`` bytes: writes fail with EFBIG as on a full disk
        # (SIGXFSZ ignored, as the default action would kill the daemon instead).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_a_full_disk_under_the_cache_lint_still_answers_and_status_says_so(home: Path, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (home / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)
    daemon = subprocess.Popen([sys.executable, "-m", "tinyarms", "daemon", "run"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_limit_file_size(256 << 10))  # noqa: PLW1509 - before any thread
    try:
        wait_for(lambda: control.ping(home), 15, "the daemon to answer")
        failed = None
        for n in range(40):
            payload = files_payload(f"d{n}", 200)
            reply = request(home, {"op": "lint", "cwd": str(repo), "root": str(repo), "files": payload,
                                   "env": {"TINYARMS_MODELS__BACKEND": "none"}}, timeout=30)
            assert reply["ok"] is True, reply
            found = reply["result"]["findings"]
            assert len(found) == 200 and {f["rule"] for f in found} == {"hardcoded-colors"}  # every answer complete
            failed = reply["result"]["stats"]["cache_error"]
            if failed:
                break
        assert failed and ("full" in failed or "disk" in failed), failed
        shown = subprocess.run([sys.executable, "-m", "tinyarms", "status"], capture_output=True, text=True, timeout=60,
                               check=False)
        assert shown.returncode == 0 and "ERROR: cache write failed" in shown.stdout, shown.stdout + shown.stderr
        assert "cache_error" in (home / "logs" / "daemon.log").read_text()
        assert request(home, {"op": "ping"})["result"]["pid"] == daemon.pid  # the same daemon, still serving
    finally:
        control.stop(home)
        daemon.wait(timeout=10)


# -- a read-only state directory ---------------------------------------------------------------


def _immutable(root: Path, on: bool) -> bool:
    """Set or clear the immutable flag on ``root`` and every folder and regular file under it:
    even root cannot write them then (permission bits do not stop root; tests run as root here).
    SQLite's ``-shm`` file is left alone: the daemon has it mapped, and a mapping made writable
    before ``chmod a-w`` stays writable, whereas an immutable one faults (SIGBUS)."""
    paths = [root, *(p for p in root.rglob("*") if (p.is_dir() or p.is_file()) and not p.name.endswith("-shm"))]
    try:
        done = subprocess.run(["chattr", "+i" if on else "-i", *map(str, paths)], capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


def test_a_read_only_state_directory_the_commit_is_answered_and_the_daemon_recovers(
        repo: Path, home: Path) -> None:
    pid = first_commit_served(repo, home)
    if not _immutable(home, True):
        pytest.skip("needs chattr and a file system with the immutable flag (ext4, xfs, btrfs)")
    try:
        assert not os.access(home, os.W_OK) or _cannot_create(home)
        write(repo, "Banner.tsx", COLOURED.replace("Alert", "Banner"))  # new content: the cache must write
        second = commit(repo, "second", env=LEVEL0_ENV)
        assert second.code == 1, second.output
        assert "Banner.tsx:1:" in second.output and "hardcoded-colors" in second.output, second.output
        assert second.seconds < BUDGET + 1.0
        assert daemon_pid(home) == pid  # the same daemon answered
        cache = request(home, {"op": "status"})["result"]["cache"]
        assert cache["error"], cache  # said, not hidden
    finally:
        _immutable(home, False)
    write(repo, "Card.tsx", COLOURED.replace("Alert", "Card"))
    third = commit(repo, "third", env=LEVEL0_ENV)  # writable again: no manual step
    assert third.code == 1 and "daemon unavailable" not in third.output, third.output
    assert daemon_pid(home) == pid
    assert request(home, {"op": "status"})["result"]["cache"]["error"] is None  # recovered, and says so
    assert integrity(home / "cache.db") == "ok"


def _cannot_create(folder: Path) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


# -- the daemon's own installation deleted -----------------------------------------------------


def test_the_daemons_installation_deleted_it_exits_and_the_next_commit_starts_a_new_one(
        repo: Path, home: Path, tmp_path: Path) -> None:
    """pre-commit deletes a hook's environment while the daemon started from it runs (``try-repo``
    at its end, ``gc``): that daemon can no longer read its built-in config, so every commit
    would fail with a config error until someone stopped it by hand."""
    import tinyarms
    from tinyarms import resources

    site = tmp_path / "site"  # an installation of its own, as a pre-commit environment has
    shutil.copytree(Path(tinyarms.__file__).parent, site / "tinyarms", ignore=shutil.ignore_patterns("__pycache__"))
    for kind in ("config", "skills"):
        shutil.copytree(resources.data_dir(kind), site / "tinyarms" / "_data" / kind)
    subprocess.Popen([sys.executable, "-m", "tinyarms", "daemon", "run"], cwd=tmp_path,
                     env={**os.environ, **LEVEL0_ENV, "PYTHONPATH": str(site)}, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    old = wait_for(lambda: control.ping(home), 15, "the daemon to answer")["result"]["pid"]
    assert first_commit_served(repo, home) == old

    shutil.rmtree(site)

    wait_for(lambda: gone(old), 10, "the daemon whose installation was deleted to exit")
    assert not protocol.socket_path(home).exists() and not control.pid_path(home).exists()
    second = commit(repo, "second", env=LEVEL0_ENV)
    assert second.code == 1 and "hardcoded-colors" in second.output, second.output
    assert "daemon unavailable" not in second.output and daemon_pid(home) != old
