"""The deep-scan scheduler: real APScheduler jobs, real time, the state file on disk."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from tinyarms.config import ScheduleConfig, ScheduleGates
from tinyarms.daemon.scheduler import STATE_FILE, DeepScanScheduler, gates

OPEN = ScheduleGates(ac_power=False, idle_minutes=0, max_cpu_percent=100, min_free_memory_mb=0)


class Scans:
    """The job body: counts its runs (the scheduler's own logic is what is under test)."""

    def __init__(self) -> None:
        self.runs: list[float] = []
        self.done = threading.Event()

    def __call__(self) -> str:
        self.runs.append(time.monotonic())
        self.done.set()
        return f"report {len(self.runs)}"


def make(home: Path, scans: Scans, last_request: float = 0.0, **config) -> DeepScanScheduler:
    return DeepScanScheduler(home, ScheduleConfig(**{"gates": OPEN, **config}), scans, lambda: last_request)


def test_a_slot_a_few_seconds_away_runs_and_is_remembered(tmp_path: Path) -> None:
    scans = Scans()
    scheduler = make(tmp_path, scans, cron="*/2 * * * * *")
    scheduler.start()
    try:
        assert scheduler.status()["next"] is not None and scheduler.status()["last"] is None
        assert scans.done.wait(5), "the scan did not run"
        deadline = time.monotonic() + 2
        while scheduler.status()["last"] is None and time.monotonic() < deadline:
            time.sleep(0.02)
        status = scheduler.status()
        assert status["last_result"].startswith("report") and status["last"] is not None
    finally:
        scheduler.stop()
    saved = json.loads((tmp_path / STATE_FILE).read_text())
    assert saved["last_run"] == status["last"]


def test_a_missed_slot_runs_once_on_wake(tmp_path: Path) -> None:
    nine_days_ago = (datetime.now().astimezone() - timedelta(days=9)).isoformat()
    (tmp_path / STATE_FILE).write_text(json.dumps({"last_run": nine_days_ago}))
    scans = Scans()
    scheduler = make(tmp_path, scans, cron="0 2 * * sun")  # at least one Sunday slot passed since
    scheduler.start()
    try:
        assert scans.done.wait(5), "the owed scan did not run"
        time.sleep(1.0)
        assert len(scans.runs) == 1  # once, not once per missed slot
        assert scheduler.status()["next"] > datetime.now().astimezone().isoformat()
    finally:
        scheduler.stop()


def test_a_slot_missed_beyond_the_grace_is_not_run(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps(
        {"last_run": (datetime.now().astimezone() - timedelta(days=30)).isoformat()}))
    scans = Scans()
    scheduler = make(tmp_path, scans, cron="0 2 * * sun", misfire_grace=3600)
    scheduler.start()
    try:
        assert not scans.done.wait(1.5)
    finally:
        scheduler.stop()


def test_a_failing_gate_postpones_says_why_and_gives_up(tmp_path: Path) -> None:
    scans = Scans()
    busy = ScheduleGates(ac_power=False, idle_minutes=60, max_cpu_percent=100, min_free_memory_mb=0)
    scheduler = make(tmp_path, scans, last_request=time.monotonic(), cron="*/1 * * * * *", gates=busy,
                     retry_every=0.2, give_up_after=1.0)
    scheduler.start()
    try:
        deadline = time.monotonic() + 3
        while "commit" not in (scheduler.status()["state"] or "") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting for 60 idle minutes" in scheduler.status()["state"]
        deadline = time.monotonic() + 5
        while not (scheduler.status()["last_result"] or "").startswith("skipped") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.status()["last_result"].startswith("skipped: a commit")
        assert scans.runs == []
    finally:
        scheduler.stop()


def test_gates(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    open_gates = ScheduleGates(ac_power=True, idle_minutes=0, max_cpu_percent=100, min_free_memory_mb=0)
    config = ScheduleConfig(gates=open_gates)
    battery = SimpleNamespace(percent=40, secsleft=3600, power_plugged=False)
    monkeypatch.setattr(psutil, "sensors_battery", lambda: battery)
    assert gates(config, 0.0).why.startswith("on battery (40%)")
    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)  # a desktop: no battery counts as AC
    assert gates(config, 0.0).ok
    hungry = ScheduleConfig(gates=ScheduleGates(ac_power=False, idle_minutes=0, max_cpu_percent=100,
                                                min_free_memory_mb=1 << 30))
    assert "the deep model needs" in gates(hungry, 0.0).why
