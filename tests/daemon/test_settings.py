"""The daemon's settings across config changes: an edited config is reloaded at the next lint, a
broken one keeps the last good settings running (with a warning, and the error in status), and
requests with other options get the error itself.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.conftest import run_cli
from tests.daemon.daemons import BAD_FINDINGS, assert_error, brief, lint_message, make_repo, request, status_json
from tinyarms import protocol


def write_config(repo: Path, text: str) -> None:
    path = repo / ".tinyarms.yaml"
    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    bumped = max(old, path.stat().st_mtime_ns) + 10_000_000  # a coarse clock must not hide the edit
    os.utime(path, ns=(bumped, bumped))


def test_config_change_is_reloaded_and_a_broken_one_keeps_the_last_good(
        home: Path, daemon: dict, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    pid = daemon["result"]["pid"]

    def lint() -> tuple[subprocess.CompletedProcess[str], list[tuple]]:
        result = run_cli("lint", "--format", "json", "bad.ts", cwd=repo)
        assert "Traceback" not in result.stderr
        return result, brief(json.loads(result.stdout)["findings"])

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: false\n")
    result, findings = lint()
    assert result.returncode == 0 and findings == [] and result.stderr == ""

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: true\n")
    result, findings = lint()
    assert result.returncode == 1 and findings == BAD_FINDINGS and result.stderr == ""

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: maybe\n  [unclosed\n")
    result, findings = lint()
    assert result.returncode == 1 and findings == BAD_FINDINGS  # the previous, good config
    assert "tinyarms: warning:" in result.stderr and ".tinyarms.yaml" in result.stderr
    code, status = status_json(tmp_path)
    assert code == 0 and status["daemon"]["pid"] == pid
    assert status["requests"]["by_op"]["lint"] == 3  # every lint so far went through this daemon
    errors = status["config"]["reload_errors"]
    assert list(errors) == [str(repo)] and ".tinyarms.yaml" in errors[str(repo)]
    # The same through the wire: the reply carries the warning.
    reply = request(home, lint_message(repo, "bad.ts"))  # the options the command line sent
    assert reply["ok"] is True and brief(reply["result"]["findings"]) == BAD_FINDINGS
    assert any(".tinyarms.yaml" in w for w in reply["result"]["warnings"])
    # Other options never had a good config to fall back on: those get the error itself.
    reply = request(home, lint_message(repo, "bad.ts", select=["hardcoded-colors"]))
    error = assert_error(reply, protocol.CONFIG_ERROR)
    assert ".tinyarms.yaml" in error["message"]

    write_config(repo, "rules:\n  hardcoded-colors:\n    enabled: false\n")
    result, findings = lint()
    assert result.returncode == 0 and findings == [] and result.stderr == ""
    code, status = status_json(tmp_path)
    assert status["config"]["reload_errors"] == {} and status["daemon"]["pid"] == pid
