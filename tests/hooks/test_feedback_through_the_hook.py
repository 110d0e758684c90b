"""A false positive taught with `tinyarms feedback` stops blocking commits through the real hook
and daemon, at once (the daemon reads the verdicts for every request), and status counts it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli
from tests.hooks.commits import COLOURED, COLOURED_AT, commit, committed, status, write


def test_a_commit_blocked_by_a_finding_passes_once_it_is_a_known_false_positive(hooked: Path) -> None:
    offline = {"OLLAMA_HOST": "http://127.0.0.1:9"}
    write(hooked, "src/Alert.tsx", COLOURED)
    blocked = commit(hooked, "brand alert", env=offline)
    line, col = COLOURED_AT
    assert blocked.code != 0 and f"src/Alert.tsx:{line}:{col}: hardcoded-colors" in blocked.output, blocked.output
    daemon_pid = status(hooked)[1]["daemon"]["pid"]

    taught = run_cli("feedback", "false-positive", f"src/Alert.tsx:{line}:hardcoded-colors",
                     "--note", "the brand red", cwd=hooked, env=offline)
    assert taught.returncode == 0, taught.stderr

    passed = commit(hooked, "brand alert", env=offline)
    assert passed.code == 0, passed.output
    assert committed(hooked, "brand alert")
    assert f"src/Alert.tsx:{line}:{col}: hardcoded-colors [warning] (known false positive)" in passed.output
    assert "1 known false positive not counted" in passed.output

    code, now = status(hooked)
    assert code == 0 and now["daemon"]["pid"] == daemon_pid  # the same daemon, no restart needed
    assert (now["feedback"]["false_positives"], now["feedback"]["confirmed"], now["feedback"]["repos"]) == (1, 0, 1)
    assert now["feedback"]["error"] is None
    text = run_cli("status", cwd=hooked).stdout
    assert "1 false positive, 0 confirmed, in 1 repo" in text
