"""The git pre-commit hook end to end: real repositories, real ``git commit``, the installed hook
file and the real daemon it starts. Every daemon a test causes is stopped in teardown.

What the hook does when its daemon fails is in ``test_broken_daemon``; installing it next to other
hooks, in ``test_install``; what it imports, in ``test_hook_imports``; the pre-commit framework's
hook, in ``test_pre_commit_framework``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hooks.commits import CLEAN, COLOURED, COLOURED_AT, commit, committed, status, write
from tinyarms.daemon import control

# -- the hook starts the daemon and blocks on findings ----------------------------------------


def test_commit_with_a_colour_is_blocked_by_a_daemon_the_hook_started(hooked: Path, home: Path) -> None:
    code, before = status(hooked)
    assert code == 3 and before["running"] is False
    assert not control.is_locked(home)

    write(hooked, "src/Alert.tsx", COLOURED)
    blocked = commit(hooked, "add alert")

    assert blocked.code != 0, blocked.output
    line, col = COLOURED_AT
    assert f"src/Alert.tsx:{line}:{col}: hardcoded-colors" in blocked.output
    assert not committed(hooked, "add alert")

    code, after = status(hooked)
    assert code == 0 and after["running"] is True
    pid = after["daemon"]["pid"]
    assert pid == control.read_pid(home)["pid"]
    os.kill(pid, 0)  # alive

    write(hooked, "src/Alert.tsx", CLEAN)
    passed = commit(hooked, "add alert")
    assert passed.code == 0, passed.output
    assert committed(hooked, "add alert")
    assert status(hooked)[1]["daemon"]["pid"] == pid  # the same daemon served the second commit


# -- the staged content is what is linted -----------------------------------------------------


def test_the_staged_colour_blocks_even_when_the_working_copy_is_clean(hooked: Path) -> None:
    write(hooked, "Alert.tsx", "// a comment\n" + COLOURED)
    write(hooked, "Alert.tsx", CLEAN, stage=False)

    result = commit(hooked, "staged colour")

    assert result.code != 0, result.output
    # tinyarms: ignore[line-references]  the comment names a line of the fixture, which does not move
    assert f"Alert.tsx:2:{COLOURED_AT[1]}: hardcoded-colors" in result.output  # line 2: the staged version
    assert not committed(hooked, "staged colour")


def test_a_colour_only_in_the_working_copy_does_not_block(hooked: Path) -> None:
    write(hooked, "Alert.tsx", CLEAN)
    write(hooked, "Alert.tsx", COLOURED, stage=False)

    result = commit(hooked, "clean staged")

    assert result.code == 0, result.output
    assert "hardcoded-colors" not in result.output
    assert committed(hooked, "clean staged")
    assert (hooked / "Alert.tsx").read_text() == COLOURED  # the hook left the working copy alone


@pytest.mark.parametrize("how", ["--all", "--only"])
def test_what_git_commits_is_what_is_linted_even_through_a_temporary_index(hooked: Path, how: str) -> None:
    """``git commit -a`` and ``git commit PATH`` commit the working copy through a temporary
    index (GIT_INDEX_FILE): the hook must lint that, not the index on disk."""
    write(hooked, "Alert.tsx", CLEAN)
    assert commit(hooked, "first").code == 0
    write(hooked, "Alert.tsx", COLOURED, stage=False)

    result = commit(hooked, "second", *(["-a"] if how == "--all" else ["--", "Alert.tsx"]))

    assert result.code != 0, result.output
    assert "Alert.tsx:1:" in result.output and "hardcoded-colors" in result.output
    assert not committed(hooked, "second")
