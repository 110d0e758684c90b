"""The daemon's life as a client meets it: ``daemon start`` returns once it answers and ``stop``
once it is gone; a killed daemon is replaced, racing starts leave one, SIGTERM and idleness end
it cleanly, and a daemon of another version is replaced by ``start`` and by ``lint``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tinyarms
from tests.conftest import run_cli
from tests.daemon.daemons import daemons_of, gone, make_repo, state_files, status_json, wait_for
from tinyarms import client
from tinyarms.daemon import control

# -- start, stop, kill, race, signals, idleness -----------------------------------------------


def test_start_returns_once_answering_and_stop_once_gone(home: Path, tmp_path: Path) -> None:
    started = run_cli("daemon", "start", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    ping = control.ping(home)  # no waiting: `start` returned, so it answers now
    assert ping is not None
    pid = ping["result"]["pid"]
    assert f"pid {pid}" in started.stderr
    code, status = status_json(tmp_path)
    assert code == 0 and status["running"] is True and status["daemon"]["pid"] == pid
    assert (control.read_pid(home) or {}).get("pid") == pid
    assert [p.pid for p in daemons_of(home)] == [pid]

    again = run_cli("daemon", "start", cwd=tmp_path)  # already running: same daemon
    assert again.returncode == 0 and control.ping(home)["result"]["pid"] == pid

    stopped = run_cli("daemon", "stop", cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert gone(pid)
    assert state_files(home) == (False, False)
    assert run_cli("daemon", "stop", cwd=tmp_path).returncode == 0


def test_killed_daemon_is_replaced_by_next_start(home: Path, tmp_path: Path) -> None:
    assert run_cli("daemon", "start", cwd=tmp_path).returncode == 0
    old = control.ping(home)["result"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: gone(old), 5, "the killed daemon to die")
    assert state_files(home) == (True, True), "SIGKILL should leave the socket and pid file behind"
    assert run_cli("status", cwd=tmp_path).returncode == 3

    restarted = run_cli("daemon", "start", cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr
    new = control.ping(home)["result"]["pid"]
    assert new != old and (control.read_pid(home) or {}).get("pid") == new
    assert [p.pid for p in daemons_of(home)] == [new]


def test_racing_starts_leave_one_daemon(home: Path, tmp_path: Path) -> None:
    for _ in range(3):
        starts = [subprocess.Popen([sys.executable, "-m", "tinyarms", "daemon", "start"], cwd=tmp_path,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
        for proc in starts:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err.decode()
        pid = control.ping(home)["result"]["pid"]
        assert control.is_locked(home) and (control.read_pid(home) or {}).get("pid") == pid
        # No waiting: once the starts have returned, the daemons that lost the race are gone too.
        (only,) = daemons_of(home)
        assert only.pid == pid and only.cmdline()[-2:] == ["daemon", "run"]
        # ... so a stop right away leaves nothing behind to take over.
        control.stop(home)
        assert gone(pid) and state_files(home) == (False, False)
        time.sleep(0.5)
        assert daemons_of(home) == [] and not control.is_locked(home)


def test_sigterm_exits_0_and_cleans_up(home: Path) -> None:
    proc = control.spawn(home)
    wait_for(lambda: control.ping(home), 10, "the daemon to answer")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert time.monotonic() - started < 2.0
    assert state_files(home) == (False, False)


def test_idle_daemon_exits_by_itself(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_DAEMON__IDLE_TIMEOUT", "1")
    proc = control.spawn(home)
    wait_for(lambda: control.ping(home), 10, "the daemon to answer")
    started = time.monotonic()
    assert proc.wait(timeout=6) == 0
    assert 0.5 <= time.monotonic() - started < 4.0
    assert state_files(home) == (False, False)


# -- version exchange -------------------------------------------------------------------------


def test_start_replaces_a_daemon_of_another_version(home: Path, daemon: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    old = daemon["result"]["pid"]
    monkeypatch.setattr(tinyarms, "__version__", "0.0.0-old")  # as if this client were upgraded
    reply = control.start(home)
    new = reply["result"]["pid"]
    assert new != old and gone(old)
    assert reply["version"] == reply["result"]["version"] != "0.0.0-old"
    assert (control.read_pid(home) or {}).get("pid") == new
    # The same version now: start leaves it alone.
    monkeypatch.setattr(tinyarms, "__version__", reply["version"])
    assert control.start(home)["result"]["pid"] == new


def test_lint_replaces_a_daemon_of_another_version(home: Path, daemon: dict, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    old = daemon["result"]["pid"]
    args = argparse.Namespace(
        paths=["bad.ts"], staged=False, skill=None, select=None, ignore=None, fail_on=None, budget=None,
        baseline=None, report_unused_ignores=False, no_cache=False, format="json",
    )
    assert client.lint_through_daemon(args, color=False) is not None  # same version: answered

    monkeypatch.setattr(client, "__version__", "0.0.0-old")
    assert client.lint_through_daemon(args, color=False) is None  # lint in process this once
    assert gone(old)
    new = wait_for(lambda: (control.ping(home) or {}).get("result", {}).get("pid"), 10, "a new daemon")
    assert new != old
