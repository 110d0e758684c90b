"""``tinyarms status`` of the daemon: every field scripts and people read, exit 3 when no daemon
runs, and the error of a daemon that answers with one.
"""

from __future__ import annotations

import threading
from pathlib import Path

import tinyarms
from tests.conftest import run_cli
from tests.daemon.daemons import lint_message, make_repo, request, status_json
from tests.servers import Listener
from tinyarms import protocol


def test_status_shows_every_field_scripts_and_people_read(home: Path, daemon: dict, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    for _ in range(2):  # a miss, then a hit
        assert request(home, lint_message(repo, "bad.ts"))["ok"] is True
    code, status = status_json(tmp_path)
    assert code == 0 and status["running"] is True
    d = status["daemon"]
    assert d["pid"] == daemon["result"]["pid"] and d["version"] == tinyarms.__version__
    assert d["uptime_s"] >= 0 and d["rss_bytes"] > 10 << 20 and d["cpu_percent"] >= 0
    assert d["socket"] == str(protocol.socket_path(home))
    assert {"files", "skills", "reload_errors"} <= set(status["config"]) and status["config"]["skills"]
    assert {"backend", "why", "present", "loaded"} <= set(status["models"])
    cache = status["cache"]
    assert cache["entries"] >= 1 and cache["size_bytes"] > 0 and cache["hit_rate"] == 0.5
    requests = status["requests"]
    assert requests["served"] >= 3 and requests["by_op"]["lint"] == 2
    assert requests["latency_ms"]["p50"] > 0 and requests["latency_ms"]["p95"] >= requests["latency_ms"]["p50"]
    assert isinstance(status["watched_repos"], list)
    assert {"last", "next"} <= set(status["scan"])  # present whether or not a scan is scheduled
    assert status["recent_errors"] == []
    table = run_cli("status", cwd=tmp_path)
    assert table.returncode == 0
    shown = {line.split("  ")[0] for line in table.stdout.splitlines()}
    assert {"daemon", "memory / cpu", "socket", "requests", "cache", "config files", "skills", "models",
            "models present", "models loaded", "watched repos", "deep scan"} <= shown
    assert f"pid {d['pid']}" in table.stdout and "hit rate 50%" in table.stdout


def test_status_exits_3_without_a_daemon(home: Path, tmp_path: Path) -> None:
    result = run_cli("status", cwd=tmp_path)
    assert result.returncode == 3 and "not running" in result.stderr
    code, status = status_json(tmp_path)
    assert code == 3 and status == {"running": False, "state_dir": str(home)}
    assert run_cli("daemon", "status", cwd=tmp_path).returncode == 3


def test_status_of_a_daemon_that_answers_with_an_error_says_it_runs(home: Path, tmp_path: Path) -> None:
    """Not "not running": the daemon is there, and the user needs its error, not a start hint."""
    server = Listener(home / "daemon.sock")

    def answer() -> None:
        conn = server.accept(timeout=10)
        if conn is None:
            return
        with conn:
            conn.settimeout(5)
            conn.recv(1 << 16)
            conn.sendall(protocol.encode(protocol.reply_error("0", "internal", "status failed: disk I/O error")))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        code, status = status_json(tmp_path)
    finally:
        thread.join(5)
        server.close()
    assert code == 1
    assert status == {"running": True, "state_dir": str(home), "error": "internal: status failed: disk I/O error"}
