import stat
import sys
from pathlib import Path

import pytest

from tinyarms.paths import state_dir


def test_tinyarms_home_is_the_state_directory_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "nested" / "state"
    monkeypatch.setenv("TINYARMS_HOME", str(home))
    assert state_dir() == home and stat.S_IMODE(home.stat().st_mode) == 0o700
    home.chmod(0o755)  # made by hand, or by an older version: tightened on next use
    assert state_dir() == home and stat.S_IMODE(home.stat().st_mode) == 0o700


@pytest.mark.skipif(sys.platform != "linux", reason="XDG locations are Linux's")
def test_without_tinyarms_home_it_is_the_users_platform_state_directory(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYARMS_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir(create=False) == tmp_path / "xdg" / "tinyarms"
    assert not (tmp_path / "xdg").exists()  # create=False only says where
    assert stat.S_IMODE(state_dir().stat().st_mode) == 0o700
