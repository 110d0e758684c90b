"""``tinyarms scan [PATHS...] --deep``: a whole repository with the deep skill; prints the report's path.

Through the daemon when one runs (it starts the scan and this polls ``scan-status``; interrupting
the client leaves the scan running there), in this process otherwise or with ``--no-daemon``.
A progress bar on a terminal (files done/total, ETA); nothing but the report's path otherwise.
Exit codes as ``lint``: 0 clean, 1 findings at or above ``fail_on``, 2 usage or config error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tinyarms.errors import EXIT_INTERRUPTED
from tinyarms.units import HOUR, MINUTE

POLL = 0.5
USAGE_ERROR = 2
SPINNER = "|/-\\"
SPINNER_STEPS = 4  # per second


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Only the standard library here: every command's parser is built at start-up, `lint` included.
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (default: the repository)")
    parser.add_argument("--deep", action="store_true",
                        help="run the deep skill (code-linting-deep), Level 3; "
                             "the default unless --skill says otherwise")
    parser.add_argument("--skill", action="append", metavar="NAME", help="skill to run instead (repeatable)")
    parser.add_argument("--select", type=_ids, metavar="IDS", help="only these rules (comma-separated)")
    parser.add_argument("--ignore", type=_ids, metavar="IDS", help="skip these rules (comma-separated)")
    parser.add_argument("--restart", action="store_true", help="start over instead of resuming an unfinished scan")
    parser.add_argument("--max-questions", type=_positive, metavar="N",
                        help="model questions per file and rule (default 64, tinyarms.scan.MAX_QUESTIONS)")
    parser.add_argument("--no-daemon", action="store_true", help="scan in this process")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")


def _ids(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def run(args: argparse.Namespace) -> int:
    cwd = Path.cwd()
    paths = [str((cwd / p).absolute()) if not os.path.isabs(p) else p for p in args.paths]
    bar = Bar(sys.stderr) if sys.stderr.isatty() and not getattr(args, "quiet", False) else None
    try:
        outcome = None if args.no_daemon else _through_daemon(args, paths, bar)
        if outcome is None:
            outcome = _in_process(args, cwd, paths, bar)
    finally:
        if bar is not None:
            bar.clear()
    if isinstance(outcome, int):
        return outcome
    print(outcome["markdown"])
    if bar is not None:
        print(_summary_line(outcome), file=sys.stderr)
    return int(outcome["exit_code"])


def _in_process(args: argparse.Namespace, cwd: Path, paths: list[str], bar: Bar | None) -> dict[str, Any] | int:
    from tinyarms import scan

    options = scan.ScanOptions(
        paths=paths, skills=args.skill, select=args.select, ignore=args.ignore, restart=args.restart,
        max_questions=args.max_questions or scan.MAX_QUESTIONS, no_cache=args.no_cache,
    )
    try:
        outcome = scan.run(cwd, options, progress=bar.show if bar is not None else None)
    except scan.ScanBusy as exc:
        print(f"tinyarms: error: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        if bar is not None:
            bar.clear()
        print("tinyarms: scan interrupted; run the same command again to continue where it stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    return {**outcome.report, "scan": outcome.scan}


def _through_daemon(args: argparse.Namespace, paths: list[str], bar: Bar | None) -> dict[str, Any] | int | None:
    """The scan's outcome from the daemon; None when no daemon serves it (scan in process)."""
    from tinyarms import __version__, client, protocol

    conn = client.connect()
    if conn is None:
        return None
    request = {
        "op": "scan", "client_version": __version__, "cwd": os.getcwd(), "paths": paths, "skill": args.skill,
        "select": args.select, "ignore": args.ignore, "restart": args.restart,
        **({"max_questions": args.max_questions} if args.max_questions else {}),
        "no_cache": args.no_cache, "env": client.client_env(),
    }
    with conn:
        try:
            reply = conn.request(request, timeout=60.0)
        except (OSError, protocol.ProtocolError):
            return None
        if reply.get("version") != __version__:
            from tinyarms.daemon import control

            control.restart_in_background(client.home())  # a daemon from before an upgrade
            return None
        if not reply.get("ok"):
            return _refused(reply.get("error") or {})
        view = reply["result"]
        try:
            while view["state"] == "running":
                if bar is not None:
                    bar.show_view(view)
                time.sleep(POLL)
                reply = conn.request({"op": "scan-status", "scan": view["scan"]}, timeout=30.0)
                if not reply.get("ok"):
                    return _refused(reply.get("error") or {})
                view = reply["result"]
        except KeyboardInterrupt:
            if bar is not None:
                bar.clear()
            print("tinyarms: stopped following the scan; it goes on in the daemon "
                  "(run the same command again to follow it)", file=sys.stderr)
            return EXIT_INTERRUPTED
        except (OSError, protocol.ProtocolError) as exc:
            print(f"tinyarms: error: lost the daemon while it scanned ({exc}); the scan resumes where it stopped "
                  "when started again", file=sys.stderr)
            return USAGE_ERROR
    if view["state"] == "done":
        outcome: dict[str, Any] = view["outcome"]
        return outcome
    if view.get("problems"):
        from tinyarms.errors import ConfigError

        raise ConfigError(view["problems"])
    print(f"tinyarms: error: the scan {view['state']}: {view.get('error')}", file=sys.stderr)
    return USAGE_ERROR


def _refused(error: dict[str, Any]) -> int | None:
    from tinyarms import protocol

    code = error.get("code")
    if code == protocol.CONFIG_ERROR:
        from tinyarms.errors import ConfigError

        raise ConfigError(error.get("problems") or [error.get("message", "config error")])
    if code in (protocol.UNKNOWN_OP, protocol.SHUTTING_DOWN):
        return None  # a daemon without scans, or one on its way out: scan here
    print(f"tinyarms: error: {error.get('message', code)}", file=sys.stderr)
    return USAGE_ERROR


def _summary_line(outcome: dict[str, Any]) -> str:
    s = outcome.get("summary") or {}
    sev = s.get("by_severity") or {}
    counts = ", ".join(f"{n} {name}" for name, n in sev.items() if n) or "none"
    scan = outcome.get("scan") or {}
    resumed = f", {scan['files_resumed']} done before it was interrupted" if scan.get("files_resumed") else ""
    return f"Scanned {s.get('files', 0)} files{resumed}: {s.get('findings', 0)} findings ({counts})."


class Bar:
    """``[#####.....]  123/500 files  2m10s left`` on one line of a terminal."""

    WIDTH = 28

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.shown = False
        self._first: tuple[float, int] | None = None  # (time, files done) when this run began moving

    def show(self, event: Any) -> None:
        self.draw(event.stage, event.done, event.total, event.resumed)

    def show_view(self, view: dict[str, Any]) -> None:
        self.draw(view["stage"], view["done"], view["total"], view["resumed"])

    def draw(self, stage: str, done: int, total: int | None, resumed: int) -> None:
        now = time.monotonic()
        if self._first is None and total is not None:
            self._first = (now, done)
        if stage == "files" and total:
            filled = int(self.WIDTH * done / total)
            line = f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {done}/{total} files{self._eta(now, done, total)}"
        elif stage == "cross-file":
            line = f"comparing functions across {total} files{self._spinner(now)}"
        elif stage in ("report", "done"):
            line = "writing the report"
        else:
            line = f"starting the scan{self._spinner(now)}"
        self.stream.write("\r\x1b[2K" + line)
        self.stream.flush()
        self.shown = True

    def _eta(self, now: float, done: int, total: int) -> str:
        if self._first is None:
            return ""
        began, at_start = self._first
        moved = done - at_start
        if moved <= 0 or now - began < 1:
            return ""
        left = (now - began) / moved * (total - done)
        return f"  {_duration(left)} left"

    @staticmethod
    def _spinner(now: float) -> str:
        return " " + SPINNER[int(now * SPINNER_STEPS) % len(SPINNER)]

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self.shown = False


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= HOUR:
        return f"{seconds // HOUR}h{seconds % HOUR // MINUTE:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
