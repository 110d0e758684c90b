"""The weekly deep scan as the daemon runs it: a real daemon, its APScheduler job, watched repos.

The slot is put a few seconds ahead (or in the past, for the missed-slot case) through the user
config; the deep model is the fake Ollama server agreeing with every question, so the reports
have findings. Every daemon is stopped by the ``daemon`` fixture of ``test_watcher``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from tests.conftest import run_cli
from tests.daemon.test_watcher import daemon_fixture, poll, registered, status  # noqa: F401
from tests.models.ollama_server import FakeOllama, ollama_server_fixture  # noqa: F401
from tests.test_scan import agreeing, project_fixture  # noqa: F401
from tinyarms.daemon.scheduler import STATE_FILE

OPEN_GATES = {"ac_power": False, "idle_minutes": 0, "max_cpu_percent": 100, "min_free_memory_mb": 0}


def configure(home: Path, cron: str) -> None:
    (home / "no-user-config.yaml").write_text(json.dumps({"schedule": {"cron": cron, "gates": OPEN_GATES}}))


def model_env(server: FakeOllama) -> dict[str, str]:
    server.answer(agreeing)
    return {"TINYARMS_MODELS__BACKEND": "ollama", "OLLAMA_HOST": server.host}


def finished(home: Path, before: str | None = None) -> dict | None:
    """The scan status once a run after ``before`` has ended."""
    scan = status(home)["scan"]
    return scan if scan["last"] not in (None, before) and not scan["running"] else None


def reports(home: Path) -> list[Path]:
    return sorted((home / "reports").glob("*/*.md"))


def test_a_slot_seconds_away_scans_every_watched_repo_and_status_shows_it(
    daemon: Callable, isolated_env: Path, project: Path, ollama_server: FakeOllama,
) -> None:
    slot = datetime.now() + timedelta(seconds=4)
    configure(isolated_env, f"{slot.second} {slot.minute} {slot.hour} * * *")
    registered(project)
    daemon(model_env(ollama_server))
    before = status(isolated_env)["scan"]
    assert before["last"] is None and before["next"] is not None
    assert before["reports"] == {str(project): None}

    scan = poll(lambda: finished(isolated_env), 60, "the scheduled scan to finish")
    latest = scan["reports"][str(project)]
    assert latest is not None and scan["last_result"] == f"{project}: done, report {latest['markdown']}"
    for kind in ("markdown", "json", "sarif"):
        assert Path(latest[kind]).is_file()
    assert "semantic-duplication" in Path(latest["markdown"]).read_text()  # the planted duplicate, found
    assert datetime.fromisoformat(scan["next"]) > datetime.fromisoformat(scan["last"])  # tomorrow's slot
    assert json.loads((isolated_env / STATE_FILE).read_text())["last_run"] == scan["last"]

    shown = run_cli("status", cwd=project)
    assert shown.returncode == 0, shown.stderr
    row = f"{project}: {latest['markdown']}"
    assert re.search(rf"^last report +{re.escape(row)}$", shown.stdout, re.MULTILINE), shown.stdout
    assert f"last {scan['last']}" in shown.stdout and f"next {scan['next']}" in shown.stdout


def test_a_slot_missed_while_no_daemon_ran_is_scanned_once_at_start(
    daemon: Callable, isolated_env: Path, project: Path, ollama_server: FakeOllama,
) -> None:
    configure(isolated_env, "0 2 * * sun")  # at least one Sunday slot in nine days
    nine_days_ago = (datetime.now().astimezone() - timedelta(days=9)).isoformat()
    (isolated_env / STATE_FILE).write_text(json.dumps({"last_run": nine_days_ago}))
    registered(project)
    daemon(model_env(ollama_server))

    scan = poll(lambda: finished(isolated_env, nine_days_ago), 60, "the catch-up scan to finish")
    assert "done, report" in scan["last_result"]
    assert len(reports(isolated_env)) == 1
    assert datetime.fromisoformat(scan["next"]).weekday() == 6  # the next Sunday, not again now


def test_without_watched_repos_the_slot_says_what_to_do(daemon: Callable, isolated_env: Path) -> None:
    slot = datetime.now() + timedelta(seconds=3)
    configure(isolated_env, f"{slot.second} {slot.minute} {slot.hour} * * *")
    daemon({"TINYARMS_MODELS__BACKEND": "none"})
    scan = poll(lambda: finished(isolated_env), 30, "the empty scheduled scan")
    assert "no watched repos" in scan["last_result"] and "tinyarms repo add" in scan["last_result"]
    assert not reports(isolated_env)


def test_a_disabled_schedule_never_scans(daemon: Callable, isolated_env: Path) -> None:
    (isolated_env / "no-user-config.yaml").write_text(json.dumps({"schedule": {"enabled": False}}))
    daemon({"TINYARMS_MODELS__BACKEND": "none"})
    scan = status(isolated_env)["scan"]
    assert scan["next"] is None and scan["state"].startswith("disabled")
