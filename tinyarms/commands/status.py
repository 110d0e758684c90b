"""``tinyarms status [--json]``: what the daemon is doing. Exit 3 when no daemon runs."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from tinyarms import protocol
from tinyarms.paths import state_dir
from tinyarms.units import MIB

NOT_RUNNING = 3  # the exit code, as an init script's status says so (LSB)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    home = state_dir()
    try:
        with protocol.Connection(protocol.socket_path(home), 2.0) as conn:
            reply = conn.request({"op": "status"}, timeout=10.0)
    except (OSError, protocol.ProtocolError):
        reply = None
    if reply is not None and not reply.get("ok"):  # it runs, but could not say how it is
        error = reply.get("error") or {}
        message = f"{error.get('code', 'error')}: {error.get('message', 'no message')}"
        if args.json:
            print(json.dumps({"running": True, "state_dir": str(home), "error": message}))
        print(f"tinyarms daemon is running (state directory {home}) but its status failed: {message}\n"
              "Its log is in logs/daemon.log there; `tinyarms daemon restart` starts a fresh one.", file=sys.stderr)
        return 1
    if reply is None:
        if args.json:
            print(json.dumps({"running": False, "state_dir": str(home)}))
        print(f"tinyarms daemon is not running (state directory {home}).\n"
              "Start it with `tinyarms daemon start`; the git hook also starts it by itself.", file=sys.stderr)
        return NOT_RUNNING
    status = {"running": True, **reply["result"]}
    from tinyarms.quality import bench

    status["bench"] = bench.last()  # the last `tinyarms bench`, kept in the state directory
    sys.stdout.write(json.dumps(status, indent=2) + "\n" if args.json else table(status))
    return 0


def table(s: dict[str, Any]) -> str:
    d, cache, req, cfg, models, scan = s["daemon"], s["cache"], s["requests"], s["config"], s["models"], s["scan"]
    lat = req["latency_ms"]
    hit_rate = "-" if cache["hit_rate"] is None else f"{cache['hit_rate']:.0%}"
    rows = [
        ("daemon", f"running, pid {d['pid']}, tinyarms {d['version']}, up {_duration(d['uptime_s'])}"),
        ("memory / cpu", f"{d['rss_bytes'] / MIB:.1f} MiB RSS, {d['cpu_percent']:.1f}% CPU, "
                         f"{d['threads']} threads"),
        ("socket", d["socket"]),
        ("log", d["log"]),
        ("requests", f"{req['served']} served, {req['in_flight']} in flight; "
                     f"latency p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}"),
        ("cache", f"{cache['entries']} entries, {cache['size_bytes'] / MIB:.1f} MiB, hit rate {hit_rate}"
                  + (f" — ERROR: {cache['error']}" if cache["error"] else "")),
        ("feedback", _feedback(s.get("feedback"))),
        ("config files", ", ".join(cfg["files"]) or "none loaded yet"),
        ("skills", ", ".join(cfg["skills"]) or "none loaded yet"),
        ("models", f"{models['backend']}: fast {models.get('fast')}, deep {models.get('deep')} ({models['why']})"
                   if models.get("backend") else f"unavailable: {models.get('why')}"
                   + (f" — {models['hint']}" if models.get("hint") else "")),
        ("models present", ", ".join(models.get("present") or []) or "-"),
        ("models loaded", ", ".join(models.get("loaded") or []) or "-"),
        *_workers(models.get("embedded_workers")),
        ("background", f"{s['background']['queued']} queued, {s['background']['answered']} answered"),
        ("watched repos", _watched(s["watched_repos"])),
        ("lint-on-save", _watcher(s.get("watcher"))),
        ("deep scan", _scan(scan)),
    ]
    for root, latest in (scan.get("reports") or {}).items():
        rows.append(("last report", f"{root}: {latest['markdown']}" if latest else f"{root}: none yet"))
    if "bench" in s:
        from tinyarms.commands.bench import status_line

        rows.append(("last bench", status_line(s["bench"])))
    for root, error in cfg["reload_errors"].items():
        rows.append(("RELOAD ERROR", f"{root}: {error}"))
    for error in s["recent_errors"][-5:]:
        rows.append(("recent error", f"{error['code']} ({error['op']}): {error['message']}"))
    width = max(len(k) for k, _ in rows)
    return "".join(f"{k:<{width}}  {v}\n" for k, v in rows)


def _workers(w: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A row per embedded model worker, and the crashes (nothing while there was neither)."""
    if not w:
        return []
    rows = [("model worker", f"pid {x['pid']}, {x['model']}, "
             + (f"{x['rss'] / MIB:,.0f} MiB RSS" if x.get("rss") else "RSS unknown")
             + f", up {_duration(x['uptime'])}, {x['questions']} question{'s' if x['questions'] != 1 else ''}"
             + ("" if x["ready"] else ", loading")) for x in w["workers"]]
    if w["crashes"]:
        last = w["last_crash"]
        rows.append(("worker crashes", f"{w['crashes']}; last: {last['model']} (pid {last['pid']}) {last['cause']}, "
                     f"{_duration(time.time() - last['at'])} ago — {last['hint']}"))
    if w.get("broken"):
        rows.append(("EMBEDDED BROKEN", w["broken"]))
    return rows


def _watched(repos: list[dict[str, Any]]) -> str:
    if not repos:
        return "none (add one with `tinyarms repo add`)"
    return "; ".join(f"{r['path']} ({r['state']}" + (f": {r['error']}" if r.get("error") else "")
                     + (f", {r['queued']} queued" if r.get("queued") else "") + ")" for r in repos)


def _watcher(w: dict[str, Any] | None) -> str:
    if not w:
        return "-"
    text = (f"{w['queued']} queued, {w['linted']} linted, {w['ignored'] + w['out_of_scope']} ignored, "
            f"{w['dropped']} dropped")
    if w.get("linting"):
        text += f"; linting {w['linting']}"
    if w.get("registry_error"):
        text += f" — ERROR: {w['registry_error']}"
    return text


def _scan(scan: dict[str, Any]) -> str:
    text = f"{scan['state']}; last {scan['last'] or 'never'}"
    if scan.get("last_result"):
        text += f" ({scan['last_result']})"
    text += f"; next {scan['next'] or 'not scheduled'}"
    for run in scan.get("running") or []:
        text += f"; scanning {run['root']}: {run['done']}/{run['total'] or '?'} files"
    return text


def _feedback(f: dict[str, Any] | None) -> str:
    if not f:
        return "-"
    if f.get("error"):
        return f"ERROR: {f['error']}"
    return (f"{f['false_positives']} false positive{'s' if f['false_positives'] != 1 else ''}, "
            f"{f['confirmed']} confirmed, in {f['repos']} repo{'s' if f['repos'] != 1 else ''}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
