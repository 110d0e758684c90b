"""Installing the hook where other hooks are: an existing hook is chained and restored on
uninstall, a second install changes nothing, ``core.hooksPath`` is honoured, and a worktree's
commits are linted in the worktree.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tests.hooks.commits import CLEAN, COLOURED, COLOURED_AT, commit, committed, install, write
from tinyarms.daemon import control


def _existing_hook(folder: Path, marker: Path, exit_code: int) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    text = (f'#!/bin/sh\necho "existing hook ran" >> "{marker}"\n'
            f'echo "existing hook says {exit_code}" >&2\nexit {exit_code}\n')
    hook = folder / "pre-commit"
    hook.write_bytes(text.encode())
    hook.chmod(0o755)
    return hook.read_bytes()


def test_an_existing_hook_keeps_running_and_is_restored_on_uninstall(repo: Path, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hooks = repo / ".git" / "hooks"
    original = _existing_hook(hooks, marker, 0)

    assert "existing hook was kept" in install(repo)
    assert (hooks / "pre-commit.tinyarms-chained").read_bytes() == original

    write(repo, "Alert.tsx", COLOURED)
    blocked = commit(repo, "coloured")
    assert blocked.code != 0 and "hardcoded-colors" in blocked.output  # tinyarms ran ...
    assert marker.read_text() == "existing hook ran\n"  # ... and so did the existing hook

    write(repo, "Alert.tsx", CLEAN)
    passed = commit(repo, "clean")
    assert passed.code == 0, passed.output
    assert marker.read_text() == "existing hook ran\n" * 2

    done = run_cli("hook", "uninstall", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert (hooks / "pre-commit").read_bytes() == original
    assert stat.S_IMODE((hooks / "pre-commit").stat().st_mode) == 0o755
    assert not (hooks / "pre-commit.tinyarms-chained").exists()


def test_an_existing_hook_that_fails_blocks_the_commit(repo: Path, home: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _existing_hook(repo / ".git" / "hooks", marker, 1)
    install(repo)

    write(repo, "Alert.tsx", CLEAN)
    result = commit(repo, "clean")

    assert result.code != 0
    assert "existing hook says 1" in result.output
    assert marker.read_text() == "existing hook ran\n"
    assert not committed(repo, "clean")
    assert not control.is_locked(home)  # it ran first and stopped the commit before tinyarms


def test_install_twice_keeps_one_hook_and_the_chain(repo: Path, home: Path, tmp_path: Path) -> None:
    original = _existing_hook(repo / ".git" / "hooks", tmp_path / "marker", 0)
    install(repo)
    install(repo)  # a second install must not chain tinyarms to itself
    assert (repo / ".git" / "hooks" / "pre-commit.tinyarms-chained").read_bytes() == original
    run_cli("hook", "uninstall", cwd=repo)
    assert (repo / ".git" / "hooks" / "pre-commit").read_bytes() == original


@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_install_honours_core_hooks_path(repo: Path, home: Path, tmp_path: Path, where: str) -> None:
    folder = repo / ".githooks" if where == "relative" else tmp_path / "team-hooks"
    git(repo, "config", "core.hooksPath", ".githooks" if where == "relative" else str(folder))
    (repo / "sub").mkdir()

    message = install(repo / "sub")  # from a subfolder: a relative hooksPath is the top's

    assert (folder / "pre-commit").is_file()
    assert str(folder / "pre-commit") in message
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    write(repo, "Alert.tsx", COLOURED)
    result = commit(repo, "coloured")
    assert result.code != 0 and "hardcoded-colors" in result.output


def test_install_from_a_worktree_lints_commits_in_the_worktree(repo: Path, home: Path, tmp_path: Path) -> None:
    write(repo, "README.md", "hello\n")
    git(repo, "commit", "-q", "-m", "initial")
    worktree = tmp_path / "feature"
    git(repo, "worktree", "add", "-q", "-b", "feature", str(worktree))

    install(worktree)

    write(worktree, "ui/Alert.tsx", COLOURED)
    blocked = commit(worktree, "coloured")
    assert blocked.code != 0, blocked.output
    assert f"ui/Alert.tsx:{COLOURED_AT[0]}:{COLOURED_AT[1]}: hardcoded-colors" in blocked.output

    write(worktree, "ui/Alert.tsx", CLEAN)
    passed = commit(worktree, "clean")
    assert passed.code == 0, passed.output
    assert "clean" in git(worktree, "log", "-1", "--format=%s")
