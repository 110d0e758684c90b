"""For every test of the hook: no global or system git config (``plain_git``, autouse), the state
directory, and a repository with the hook installed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hooks.commits import install, plain_git_fixture  # noqa: F401 - plain_git: autouse
from tinyarms.daemon import control


@pytest.fixture(name="home")
def home_fixture(isolated_env: Path) -> Iterator[Path]:
    """The state directory; whatever daemon ran in it is stopped, and shown gone, at teardown."""
    yield isolated_env
    control.stop(isolated_env)
    assert not control.is_locked(isolated_env), "a daemon outlived its test"


@pytest.fixture(name="hooked")
def hooked_fixture(repo: Path, home: Path) -> Path:
    install(repo)
    return repo
