"""The hook as the pre-commit framework runs it: the manifest (``.pre-commit-hooks.yaml``) and a
real ``pre-commit run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.hooks.commits import CLEAN, COLOURED, COLOURED_AT, write

CHECKOUT = Path(__file__).resolve().parents[2]


def _manifest() -> list[dict]:
    return yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_the_pre_commit_manifest_declares_one_serial_hook_without_file_names() -> None:
    hooks = _manifest()
    (hook,) = [h for h in hooks if h["id"] == "tinyarms"]
    assert hook["pass_filenames"] is False
    assert hook["require_serial"] is True
    assert hook["entry"] == "tinyarms hook run"
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(CHECKOUT / ".pre-commit-hooks.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pre_commit_framework_runs_the_hook(repo: Path, home: Path, tmp_path: Path) -> None:
    (hook,) = [h for h in _manifest() if h["id"] == "tinyarms"]
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "language": "system"}]}]}
    write(repo, ".pre-commit-config.yaml", yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `tinyarms` itself
    }

    def pre_commit_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run"], cwd=repo, capture_output=True, text=True, env=env, timeout=60,
            check=False)

    write(repo, "Alert.tsx", COLOURED)
    failed = pre_commit_run()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "hardcoded-colors" in failed.stdout
    assert f"Alert.tsx:{COLOURED_AT[0]}:{COLOURED_AT[1]}" in failed.stdout

    write(repo, "Alert.tsx", CLEAN)
    passed = pre_commit_run()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "tinyarms" in passed.stdout and "Passed" in passed.stdout
