"""The state directory every daemon test starts its daemon in (stopped, with any straggler, at
teardown), and a daemon running there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.daemons import ENV, stop_daemons
from tinyarms.daemon import control


@pytest.fixture(name="home")
def home_fixture(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The state directory; whatever daemon a test starts in it is stopped afterwards."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    yield isolated_env
    stop_daemons(isolated_env)
    assert not control.is_locked(isolated_env)


@pytest.fixture
def daemon(home: Path) -> dict[str, Any]:
    """A running daemon (its ping reply)."""
    return control.start(home)
