"""A daemon from before an upgrade is replaced through whoever runs it: systemd or launchd
restart their own daemon (so the service keeps owning it); a hand-started one is replaced by hand.

There is no systemd user session or launchd here: a fake ``systemctl`` first on PATH logs its argv.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.commands.test_service import LOG_ARGV
from tests.daemon.test_server import home, wait_for  # noqa: F401
from tinyarms.daemon import control


@pytest.fixture
def systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The log of the fake systemctl's calls."""
    log, bin_dir = tmp_path / "calls.log", tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "systemctl"
    tool.write_text(LOG_ARGV.replace("@LOG@", str(log)))
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


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
    assert systemctl.read_text().splitlines() == ["systemctl --user restart tinyarms.service"]
    assert serving(home) == pid  # not stopped by us: stopping it would end the service


def test_a_hand_started_daemon_is_replaced_by_hand(home: Path, systemctl: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYARMS_SERVICE", "systemd")  # e.g. a hook run from a shell the service started
    pid = started(home)
    assert control.read_pid(home)["service"] is None

    control.restart_in_background(home)

    new = wait_for(lambda: serving(home) not in (None, pid) and serving(home), 15, "a new daemon")
    assert new != pid and not systemctl.exists()
