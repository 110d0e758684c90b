"""The hook meets a daemon from before an upgrade (another tinyarms version) and replaces it
without the commit noticing: by hand when the daemon was started by hand, through systemd when
systemd runs it (so the service keeps owning its daemon), and by hand again when systemd fails.

The stale daemon is a real one whose ``__version__`` is set to an older one before it starts;
the fake systemctl is the one of tests/daemon/test_service_restart.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.commands.test_service import LOG_ARGV, SYSTEMCTL_FAILS
from tests.daemon.daemons import gone, wait_for
from tests.daemon.test_service_restart import RESTART_CALL, RESTARTS, fake_systemctl
from tests.hooks.commits import COLOURED, commit, committed, write
from tinyarms.commands import service
from tinyarms.daemon import control

OLD = "0.0.0-old"
OLD_DAEMON = (f"import sys, tinyarms; tinyarms.__version__ = {OLD!r}; from tinyarms.cli import main; "
              "sys.exit(main(['daemon', 'run']))")


def stale_daemon(home: Path, manager: str | None) -> int:
    """A real daemon answering as tinyarms ``OLD``; its pid."""
    env = {k: v for k, v in os.environ.items() if k != "TINYARMS_SERVICE"}
    if manager:
        env["TINYARMS_SERVICE"] = manager
    subprocess.Popen([sys.executable, "-c", OLD_DAEMON], env={**env, "TINYARMS_HOME": str(home)},
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    reply = wait_for(lambda: control.ping(home), 15, "the stale daemon to answer")
    assert reply["version"] == OLD and (control.read_pid(home) or {})["service"] == manager
    return reply["result"]["pid"]


def replaced_and_blocked(hooked: Path, home: Path, old: int, **env: str) -> dict:
    """Commit a colour: the new daemon answers it (no fallback); the new daemon's pid file."""
    write(hooked, "Alert.tsx", COLOURED)
    blocked = commit(hooked, "coloured", env={"TINYARMS_BUDGET": "30", **env})  # wide: two daemon starts
    assert blocked.code == 1, blocked.output
    assert "Alert.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output
    assert "daemon unavailable" not in blocked.output, blocked.output
    assert not committed(hooked, "coloured")
    info = control.read_pid(home) or {}
    assert info["pid"] != old and info["version"] != OLD and gone(old)
    assert control.ping(home)["result"]["pid"] == info["pid"]
    return info


def test_a_hand_started_stale_daemon_is_replaced_by_the_hook(
        hooked: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch, LOG_ARGV)
    old = stale_daemon(home, None)

    # TINYARMS_SERVICE in the committing shell (one the service started, say) changes nothing.
    info = replaced_and_blocked(hooked, home, old, TINYARMS_SERVICE="systemd")

    assert info["service"] is None  # the hook's own daemon, not the service's
    assert not calls.exists()


@pytest.mark.parametrize(("systemctl", "replaced_by"), [(RESTARTS, "systemd"), (SYSTEMCTL_FAILS, None)],
                         ids=["restarted-through-systemd", "by-hand-when-systemd-fails"])
def test_a_stale_daemon_systemd_runs_is_restarted_through_systemd(
        hooked: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        systemctl: str, replaced_by: str | None) -> None:
    calls = fake_systemctl(tmp_path, monkeypatch, systemctl)
    old = stale_daemon(home, "systemd")

    info = replaced_and_blocked(hooked, home, old)

    assert calls.read_text().splitlines() == [RESTART_CALL]
    # "systemd": the manager started it, the hook started none of its own (its own is not the service's).
    assert info["service"] == replaced_by


def test_the_hook_names_the_service_as_the_service_command_writes_it() -> None:
    hook = (Path(__file__).resolve().parents[2] / "hooks" / "pre-commit").read_text(encoding="utf-8")
    assert f'"systemctl", "--user", "restart", "{service.UNIT}"' in hook
    assert f'gui/{{os.getuid()}}/{service.LABEL}"' in hook
