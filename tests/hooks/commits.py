"""Committing through the installed hook, as a user does: install it, stage files, ``git commit``,
and what the commit printed and how long it took. Shared by the tests of the hook and by the
daemon's tests that commit.

``plain_git_fixture`` (autouse where it is imported: by the conftest, for every test of the hook)
keeps the machine's global and system git config out of the tests, so a global
``core.hooksPath`` cannot move the hook elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import at, git, run_cli

COLOURED = 'export const Alert = () => <div className="bg-[#ff0000]" />;\n'
CLEAN = 'export const Alert = () => <div className="bg-danger" />;\n'
COLOURED_AT = at(COLOURED, 1, "#ff0000")  # (1, 44)

MARGIN = 0.5  # what the hook may take over its budget, by contract


class Commit(NamedTuple):
    code: int
    output: str  # git sends a hook's stdout to stderr; both, in order of no importance
    seconds: float


def commit(cwd: Path, message: str, *args: str, env: dict[str, str] | None = None) -> Commit:
    started = time.monotonic()
    done = subprocess.run(
        ["git", "commit", "-m", message, *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=60, check=False,
    )
    return Commit(done.returncode, done.stdout + done.stderr, time.monotonic() - started)


def committed(cwd: Path, message: str) -> bool:
    return message in git(cwd, "log", "--all", "--format=%s").splitlines()


def write(root: Path, name: str, text: str, stage: bool = True) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    if stage:
        git(root, "add", name)


def status(cwd: Path) -> tuple[int, dict]:
    done = run_cli("status", "--json", cwd=cwd)
    return done.returncode, json.loads(done.stdout)


def install(cwd: Path) -> str:
    done = run_cli("hook", "install", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stderr


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture(autouse=True, name="plain_git")
def plain_git_fixture(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No global or system git config (a global core.hooksPath would move the hook elsewhere)."""
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.touch()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(empty))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_INDEX_FILE", "GIT_WORK_TREE", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
