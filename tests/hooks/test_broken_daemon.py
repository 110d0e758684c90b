"""The hook when its daemon fails: killed with SIGKILL (the next commit starts a new one), unable
to start (the hook lints in process within the budget), or answering wrongly or not at all (the
budget, not a hung commit). Real repositories, real ``git commit``, the installed hook.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hooks.commits import CLEAN, COLOURED, commit, committed, status, wait_for, write
from tests.servers import Listener
from tests.timing import scaled
from tinyarms.daemon import control

# -- a daemon killed with SIGKILL is replaced without anyone noticing -------------------------


def test_a_commit_after_kill_9_of_the_daemon_recovers_by_itself(hooked: Path, home: Path) -> None:
    write(hooked, "Alert.tsx", CLEAN)
    assert commit(hooked, "first").code == 0
    old_pid = json.loads((home / "daemon.pid").read_text())["pid"]

    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not control.is_locked(home))
    assert (home / "daemon.sock").exists()  # the dead daemon's socket is left behind

    write(hooked, "Other.tsx", COLOURED)
    blocked = commit(hooked, "second")
    assert blocked.code != 0, blocked.output
    assert "Other.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output
    assert "daemon unavailable" not in blocked.output  # the new daemon answered, no fallback

    new_pid = json.loads((home / "daemon.pid").read_text())["pid"]
    assert new_pid != old_pid
    code, info = status(hooked)
    assert code == 0 and info["daemon"]["pid"] == new_pid

    write(hooked, "Other.tsx", CLEAN)
    passed = commit(hooked, "second")
    assert passed.code == 0, passed.output
    assert committed(hooked, "second")


# -- no daemon can start: the hook falls back within the budget -------------------------------


def test_when_the_socket_path_is_taken_the_hook_lints_in_process_within_budget(
    hooked: Path, home: Path, request: pytest.FixtureRequest
) -> None:
    # Something that is not a socket squats on the daemon's socket path: the daemon dies at start.
    squatter = home / "daemon.sock"
    squatter.mkdir()
    request.addfinalizer(squatter.rmdir)  # before `home` stops daemons, which expects no directory there
    budget, margin = scaled(2.0, 1.5)
    env = {"TINYARMS_BUDGET": str(budget)}

    write(hooked, "Alert.tsx", COLOURED)
    blocked = commit(hooked, "coloured", env=env)

    assert blocked.code != 0, blocked.output
    assert "daemon unavailable" in blocked.output
    assert "the daemon exited with status 1" in blocked.output  # noticed, not waited out
    assert str(home / "logs" / "daemon.out") in blocked.output  # where to look
    assert "linting in this process (Level 0 only)" in blocked.output  # says what it falls back to
    assert "Alert.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output  # Level 0 still ran
    assert "skipped design-tokens" in blocked.output  # and names the checks it did not do
    assert blocked.seconds <= budget + margin, blocked.seconds
    assert not control.is_locked(home)

    write(hooked, "Alert.tsx", CLEAN)
    passed = commit(hooked, "clean", env=env)
    assert passed.code == 0, passed.output
    assert "daemon unavailable" in passed.output
    assert passed.seconds <= budget + margin, passed.seconds


def test_when_the_user_config_is_broken_the_commit_stops_with_the_config_error_within_budget(
    hooked: Path, home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("fail_on: [\n", encoding="utf-8")
    budget, margin = scaled(2.0, 1.5)

    write(hooked, "Alert.tsx", CLEAN)
    result = commit(hooked, "clean", env={"TINYARMS_BUDGET": str(budget), "TINYARMS_CONFIG": str(bad)})

    assert result.code != 0, result.output  # exit 2: a config error is never silently a pass
    assert "daemon unavailable" in result.output
    assert f"{bad}:2:" in result.output  # names the file and line to fix
    assert result.seconds <= budget + margin, result.seconds
    assert not committed(hooked, "clean")
    assert not control.is_locked(home)


def test_a_daemon_that_dies_at_start_is_not_waited_for(hooked: Path, home: Path, tmp_path: Path) -> None:
    """With the default budget the hook could wait 4 s for the daemon's socket; a daemon that
    has already exited will never answer, so the hook must fall back at once."""
    bad = tmp_path / "config.yaml"
    bad.write_text("fail_on: [\n", encoding="utf-8")

    write(hooked, "Alert.tsx", CLEAN)
    result = commit(hooked, "clean", env={"TINYARMS_BUDGET": "5", "TINYARMS_CONFIG": str(bad)})

    assert "the daemon exited with status 2" in result.output, result.output
    assert result.seconds < 3.0, result.seconds


# -- a daemon that never answers costs the budget, not a hung commit --------------------------


class FakeDaemon:
    """Listens on the daemon's socket path and misbehaves in one way."""

    def __init__(self, path: Path, behaviour: str):
        self.behaviour = behaviour
        self.accepted = 0
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.listener = Listener(path)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            conn = self.listener.accept(0.5, self._stop)
            if conn is None:
                continue
            self.accepted += 1
            if self.behaviour == "silent":
                self.held.append(conn)  # read nothing, answer nothing, never hang up
            elif self.behaviour == "garbage":
                conn.settimeout(5)
                conn.recv(1 << 16)
                conn.sendall(b"this is not json\n")
                conn.close()
            else:  # hangs up
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def fake_daemon(home: Path, request: pytest.FixtureRequest) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(home / "daemon.sock", request.param)
    yield fake
    fake.close()


@pytest.mark.parametrize("fake_daemon", ["silent", "garbage", "hangs-up"], indirect=True)
def test_a_daemon_that_does_not_answer_properly_never_hangs_the_commit(
    hooked: Path, home: Path, fake_daemon: FakeDaemon
) -> None:
    assert not control.is_locked(home)  # nothing but the fake is there to talk to
    budget, margin = scaled(2.0, 1.0)

    write(hooked, "Alert.tsx", COLOURED)
    result = commit(hooked, "coloured", env={"TINYARMS_BUDGET": str(budget)})

    assert fake_daemon.accepted >= 1  # the hook did talk to the fake
    assert result.seconds < budget + margin, result.seconds
    assert "daemon unavailable" in result.output
    assert "Level 0 only" in result.output and "skipped design-tokens" in result.output
    assert "the daemon is unavailable" in result.output and "turned off" not in result.output  # it is not
    assert result.code != 0 and "hardcoded-colors" in result.output  # the fallback still found it
