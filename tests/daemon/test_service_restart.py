"""A daemon from before an upgrade is replaced through whoever runs it: systemd or launchd
restart their own daemon (so the service keeps owning it); a hand-started one is replaced by hand.

There is no systemd user session or launchd here: a fake ``systemctl`` first on PATH logs its argv,
and where a test needs the restart itself, does what ``systemctl --user restart`` does to our
unit: stops the daemon and starts ``tinyarms daemon run`` with the unit's ``TINYARMS_SERVICE``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import tinyarms
from tests.commands.test_service import LOG_ARGV, SYSTEMCTL_FAILS
from tests.daemon.daemons import gone, wait_for
from tinyarms.daemon import control

RESTARTS = LOG_ARGV + f"""\
'{sys.executable}' -m tinyarms daemon stop
TINYARMS_SERVICE=systemd '{sys.executable}' -m tinyarms daemon run >> "$TINYARMS_HOME/logs/daemon.out" 2>&1 < /dev/null &
"""  # noqa: E501 - the fake systemctl's script, one shell command a line
RESTART_CALL = "systemctl --user restart tinyarms.service"


def fake_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A fake systemctl first on PATH; returns the log of its calls."""
    log, bin_dir = tmp_path / "calls.log", tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    tool = bin_dir / "systemctl"
    tool.write_text(script.replace("@LOG@", str(log)))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The log of the fake systemctl's calls; it only logs."""
    return fake_systemctl(tmp_path, monkeypatch, LOG_ARGV)


def serving(home: Path) -> int | None:
    reply = control.ping(home)
    return reply["result"]["pid"] if reply else None


def started(home: Path, **env: str) -> int:
    control.spawn(home, env)
    return wait_for(lambda: serving(home), 15, "the daemon to answer")


def test_a_service_daemon_is_restarted_by_its_manager(home: Path, systemctl: Path) -> None:
    pid = started(home, TINYARMS_SERVICE="systemd")
    assert control.read_pid(home)["service"] == "systemd"

    control.restart_in_background(home)

    wait_for(systemctl.exists, 10, "systemctl to be called")
    assert systemctl.read_text().splitlines() == [RESTART_CALL]
    assert serving(home) == pid  # not stopped by us: stopping it would end the service


def test_a_hand_started_daemon_is_replaced_by_hand(home: Path, systemctl: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_SERVICE", "systemd")  # e.g. a hook run from a shell the service started
    pid = started(home)
    assert control.read_pid(home)["service"] is None

    control.restart_in_background(home)

    new = wait_for(lambda: serving(home) not in (None, pid) and serving(home), 15, "a new daemon")
    assert new != pid and not systemctl.exists()


def test_start_has_a_stale_service_daemon_restarted_by_its_manager(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch, RESTARTS)
    old = started(home, TINYARMS_SERVICE="systemd")
    monkeypatch.setattr(tinyarms, "__version__", "0.0.0-old")  # as if this client were upgraded

    reply = control.start(home)

    new = reply["result"]["pid"]
    assert new != old and gone(old)
    assert calls.read_text().splitlines() == [RESTART_CALL]
    # Started by the manager, not by start(): a daemon start() spawns is not the service's.
    info = control.read_pid(home) or {}
    assert info["pid"] == new and info["service"] == "systemd"


def test_start_replaces_a_stale_service_daemon_by_hand_when_the_manager_fails(
        home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch, SYSTEMCTL_FAILS)
    old = started(home, TINYARMS_SERVICE="systemd")
    monkeypatch.setattr(tinyarms, "__version__", "0.0.0-old")

    new = control.start(home)["result"]["pid"]

    assert new != old and gone(old)
    assert calls.read_text().splitlines() == [RESTART_CALL]
    assert control.read_pid(home)["service"] is None
