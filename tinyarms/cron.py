"""A schedule's cron expression as an APScheduler trigger: what the config checks when it is
read and what the daemon's scheduler runs on (one parser for both, below either of them)."""

from __future__ import annotations

from typing import Any

CRON_WITH_SECONDS = 6  # fields of a cron expression whose first field is the second


def trigger(schedule: str) -> Any:
    """Five cron fields (minute hour day month weekday), or six with seconds first."""
    from apscheduler.triggers.cron import CronTrigger

    fields = schedule.split()
    if len(fields) == CRON_WITH_SECONDS:
        second, minute, hour, day, month, weekday = fields
        return CronTrigger(second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=weekday)
    return CronTrigger.from_crontab(schedule)
