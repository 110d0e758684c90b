"""The weekly deep scan: an APScheduler cron job in the daemon, gated on the machine being free.

The slot comes from ``schedule.cron`` (cron, local time; default Sunday 02:00). ``coalesce``
and a misfire grace time make a laptop that slept through the slot scan once when it wakes,
not once per missed slot; the last run is persisted under the state directory, so a daemon
restarted after the slot still knows it owes a scan. Before a scan starts, gates must pass:
on AC power (no battery counts as AC), the machine idle (CPU load, and no commit recently),
enough free memory for the deep model. A failed gate postpones the scan and retries every
``retry_every`` seconds until ``give_up_after``; ``status`` says why it waits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tinyarms.config import ScheduleConfig
from tinyarms.cron import trigger
from tinyarms.units import HOUR, MIB

STATE_FILE = "scheduler.json"
MAX_MISSED_SLOTS = 100_000  # slots walked to find the last one missed (a bound on the work)


@dataclass(slots=True)
class Gate:
    ok: bool
    why: str


def gates(config: ScheduleConfig, last_request: float, memory_needed: int | None = None) -> Gate:
    import psutil

    g = config.gates
    if g.ac_power:
        battery = psutil.sensors_battery()
        if battery is not None and not battery.power_plugged:
            return Gate(False, f"on battery ({battery.percent:.0f}%); waiting for AC power")
    quiet = time.monotonic() - last_request
    if quiet < g.idle_minutes * 60:
        return Gate(False, f"a commit {quiet:.0f} s ago; waiting for {g.idle_minutes:g} idle minutes")
    load = psutil.cpu_percent(interval=0.5)
    if load > g.max_cpu_percent:
        return Gate(False, f"CPU busy ({load:.0f}% > {g.max_cpu_percent:g}%)")
    free = psutil.virtual_memory().available
    needed = max(memory_needed or 0, g.min_free_memory_mb * MIB)
    if free < needed:
        return Gate(False, f"{free // MIB} MiB free, the deep model needs {needed // MIB} MiB")
    return Gate(True, "ready")


class DeepScanScheduler:
    """Owns the APScheduler job; ``scan`` is called on its worker thread with no arguments and
    returns a short summary (e.g. the report path) for status."""

    def __init__(self, home: Path, config: ScheduleConfig, scan: Callable[[], str],
                 last_request: Callable[[], float]) -> None:
        self.home = home
        self.config = config
        self.scan = scan
        self.last_request = last_request
        self.state_path = home / STATE_FILE
        self.state: dict[str, Any] = self._load()
        self.waiting: str | None = None
        self._lock = threading.Lock()
        self._scheduler: Any = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        self._scheduler = BackgroundScheduler(daemon=True)
        self._scheduler.add_job(
            self._slot, trigger(self.config.cron), id="deep-scan", coalesce=True, max_instances=1,
            misfire_grace_time=int(self.config.misfire_grace),
        )
        self._scheduler.start()
        owed = self._owed()
        if owed is not None:  # the slot passed while no daemon ran (laptop asleep, machine off)
            self.state["owed_since"] = owed.isoformat()
            self._save()
            self._scheduler.add_job(self._slot, id="catch-up", replace_existing=True)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)

    # -- the job ---------------------------------------------------------------------------------

    def _slot(self) -> None:
        started = time.monotonic()
        while True:
            gate = gates(self.config, self.last_request())
            if gate.ok:
                break
            self.waiting = gate.why
            self._save()
            if time.monotonic() - started > self.config.give_up_after:
                self.state["last_result"] = f"skipped: {gate.why} for {self.config.give_up_after / HOUR:g} h"
                self.state["last_run"] = _now().isoformat()
                self.waiting = None
                self._save()
                return
            time.sleep(self.config.retry_every)
        self.waiting = "scanning"
        self._save()
        try:
            result = self.scan()
        except Exception as exc:  # noqa: BLE001 - a failed scan is a status line, not a dead daemon
            result = f"failed: {type(exc).__name__}: {exc}"
        with self._lock:
            done = {k: v for k, v in self.state.items() if k != "owed_since"}
            done.update(last_run=_now().isoformat(), last_result=result)
            self.waiting = None
            self._save(done)  # on disk first: what status shows is never ahead of the file
            self.state = done

    def _owed(self) -> datetime | None:
        last = self.state.get("last_run")
        since = datetime.fromisoformat(last) if last else None
        if since is None:
            return None  # never ran: the first slot is the next one
        cron, now = trigger(self.config.cron), _now()
        latest: datetime | None = None  # the last slot between the last run and now
        slot = cron.get_next_fire_time(None, since + timedelta(seconds=1))
        for _ in range(MAX_MISSED_SLOTS):
            if slot is None or slot > now:
                break
            latest = slot
            slot = cron.get_next_fire_time(slot, slot + timedelta(seconds=1))
        if latest is not None and now - latest <= timedelta(seconds=self.config.misfire_grace):
            return latest
        return None

    # -- state -----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        job = self._scheduler.get_job("deep-scan") if self._scheduler is not None else None
        next_run = job.next_run_time.isoformat() if job is not None and job.next_run_time else None
        return {
            "schedule": self.config.cron, "last": self.state.get("last_run"),
            "last_result": self.state.get("last_result"), "next": next_run,
            "state": self.waiting or (
                "owed since " + self.state["owed_since"] if "owed_since" in self.state else "idle"),
        }

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, state: dict[str, Any] | None = None) -> None:
        data = {**(self.state if state is None else state), "waiting": self.waiting}
        tmp = self.state_path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            tmp.replace(self.state_path)
        except OSError:
            pass  # status still has it in memory; the next save tries again


def _now() -> datetime:
    return datetime.now().astimezone()
