"""The watched-repository registry (``<state dir>/repos.json``) and ``tinyarms repo add|remove|list``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tinyarms.commands import repo as repo_command
from tinyarms.errors import ConfigError
from tinyarms.stores import repos


def repo_cli(*argv: str, cwd: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``tinyarms repo ...`` through the command's own parser, in this process (cwd changed)."""
    parser = argparse.ArgumentParser(prog="tinyarms repo")
    repo_command.add_arguments(parser)
    args = parser.parse_args(argv)
    old = Path.cwd()
    os.chdir(cwd)
    try:
        code = repo_command.run(args)
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    return code, out, err


def make_git(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    return path


def test_add_list_remove(tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = make_git(tmp_path / "one")
    two = make_git(tmp_path / "two")
    (one / "src" / "deep").mkdir(parents=True)

    code, _, err = repo_cli("add", cwd=one / "src" / "deep", capsys=capsys)  # default: the current repo's top
    assert code == 0 and f"watching {one}" in err
    code, _, err = repo_cli("add", str(two), cwd=tmp_path, capsys=capsys)
    assert code == 0 and f"watching {two}" in err
    code, _, err = repo_cli("add", str(one / "src"), cwd=tmp_path, capsys=capsys)
    assert code == 0 and f"already watching {one}" in err

    assert repos.read() == [one, two]
    assert json.loads((isolated_env / "repos.json").read_text()) == [str(one), str(two)]
    code, out, _ = repo_cli("list", cwd=tmp_path, capsys=capsys)
    assert code == 0 and out.splitlines() == [str(one), str(two)]

    code, _, err = repo_cli("remove", cwd=one / "src", capsys=capsys)
    assert code == 0 and f"no longer watching {one}" in err
    assert repos.read() == [two]
    code, _, err = repo_cli("remove", str(one), cwd=tmp_path, capsys=capsys)
    assert code == 0 and "was not a watched repository" in err
    assert not [p.name for p in isolated_env.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


def test_a_repository_whose_folder_is_gone_is_listed_and_removable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    gone = make_git(tmp_path / "gone")
    repos.add(gone)
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    _, out, _ = repo_cli("list", cwd=tmp_path, capsys=capsys)
    assert out.strip() == f"{gone}  (missing)"
    _, out, _ = repo_cli("list", "--json", cwd=tmp_path, capsys=capsys)
    assert json.loads(out) == [{"path": str(gone), "exists": False}]
    assert repos.remove(gone) == gone and repos.read() == []


def test_only_git_work_trees_can_be_added(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ConfigError, match="not inside a git work tree"):
        repos.add(plain)
    with pytest.raises(ConfigError, match="no such file or directory"):
        repos.add(tmp_path / "missing" / "x")
    assert repos.read() == []


def test_a_damaged_registry_is_a_usage_error_that_names_the_file(isolated_env: Path, tmp_path: Path) -> None:
    (isolated_env / "repos.json").write_text('["/a",\n  oops]\n')
    with pytest.raises(ConfigError) as info:
        repos.read()
    assert str(isolated_env / "repos.json") in info.value.problems[0] and "line 2" in info.value.problems[0]
    (isolated_env / "repos.json").write_text('{"repos": []}')
    with pytest.raises(ConfigError, match="expected a JSON list"):
        repos.add(make_git(tmp_path / "r"))


def test_concurrent_adds_lose_nothing(tmp_path: Path, isolated_env: Path) -> None:
    """Each add reads, changes and renames the file under a lock: eight processes at once all land."""
    folders = [make_git(tmp_path / f"r{i}") for i in range(8)]
    code = "import sys; from pathlib import Path; from tinyarms.stores import repos; repos.add(Path(sys.argv[1]))"
    procs = [subprocess.Popen([sys.executable, "-c", code, str(f)]) for f in folders]
    assert [p.wait(timeout=60) for p in procs] == [0] * 8
    assert sorted(repos.read()) == sorted(folders)


def test_the_stamp_changes_with_every_write(tmp_path: Path) -> None:
    assert repos.stamp() is None
    repos.add(make_git(tmp_path / "a"))
    first = repos.stamp()
    repos.add(make_git(tmp_path / "b"))  # within the same clock tick, the rename still changes the inode
    assert first is not None and repos.stamp() != first


def test_hook_install_registers_the_repository(repo: Path, isolated_env: Path) -> None:
    done = run_cli("hook", "install", cwd=repo, env={"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    assert done.returncode == 0, done.stderr
    assert repos.read() == [repo]


def test_hook_install_still_installs_when_the_registry_is_damaged(repo: Path, isolated_env: Path) -> None:
    (isolated_env / "repos.json").write_text("not json")
    done = run_cli("hook", "install", cwd=repo, env={"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"})
    assert done.returncode == 0, done.stderr
    assert "installed" in done.stderr and "not added to the watched repositories" in done.stderr
    assert (repo / ".git" / "hooks" / "pre-commit").exists()


def _cli_has_repo() -> bool:
    from tinyarms import cli

    return "repo" in cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]


@pytest.mark.skipif(not _cli_has_repo(), reason="tinyarms/cli.py does not register the `repo` command yet")
def test_the_command_line(tmp_path: Path) -> None:
    one = make_git(tmp_path / "one")
    assert run_cli("repo", "add", cwd=one).returncode == 0
    listed = run_cli("repo", "list", "--json", cwd=tmp_path)
    assert json.loads(listed.stdout) == [{"path": str(one), "exists": True}]
    bad = run_cli("repo", "add", cwd=tmp_path)
    assert bad.returncode == 2 and "not inside a git work tree" in bad.stderr
    assert run_cli("repo", "remove", str(one), cwd=tmp_path).returncode == 0
    assert run_cli("repo", "list", cwd=tmp_path).stdout == ""
