from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import git, run_cli
from tinyarms import cli, files
from tinyarms.ruleset import load_settings

COLOUR_PY = 'accent = "#ff0000"\n'
COLOUR_TSX = 'export const A = () => <div className="bg-[#ff0000]" />;\n'
PLAIN_TSX = 'export const A = () => <div className="bg-danger" />;\n'

Lint = Callable[..., tuple[int, dict]]


@pytest.fixture
def lint(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Lint:
    """``tinyarms lint --format json --no-cache ARGS`` in this process, run from ``cwd``."""

    def run(cwd: Path, *args: str) -> tuple[int, dict]:
        monkeypatch.chdir(cwd)
        code = cli.main(["lint", "--format", "json", "--no-cache", "--no-daemon", *args])
        out = capsys.readouterr().out
        return code, json.loads(out) if out else {}

    return run


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def commit_all(repo: Path, message: str = "commit") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def found(report: dict) -> list[tuple[str, int, int, str]]:
    return sorted((f["path"], f["line"], f["column"], f["rule"]) for f in report["findings"])


def file_skips(report: dict) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in report["skipped"] if s["rule"] is None}


def colour_paths(report: dict) -> list[str]:
    return sorted(f["path"] for f in report["findings"] if f["rule"] == "hardcoded-colors")


@pytest.fixture
def plain_dir(tmp_path: Path) -> Path:
    """A folder that is not inside any git repository (nor any .tinyarms.yaml project)."""
    folder = tmp_path / "plain"
    folder.mkdir()
    if files.git_root(folder) is not None:
        pytest.skip("the temporary directory is inside a git repository")
    return folder


# Walking directories


def test_walk_in_a_git_repo_honours_gitignore_and_takes_untracked_files(repo: Path, lint: Lint) -> None:
    write(repo / ".gitignore", "ignored.py\nbuild/\n")
    write(repo / "tracked.py", COLOUR_PY)
    commit_all(repo)
    write(repo / "untracked.py", COLOUR_PY)
    write(repo / "ignored.py", COLOUR_PY)
    write(repo / "build" / "generated.py", COLOUR_PY)
    write(repo / "src" / "ignored.py", COLOUR_PY)  # an unanchored pattern matches at any depth

    code, report = lint(repo)

    assert code == 1
    assert colour_paths(report) == ["tracked.py", "untracked.py"]


def test_walk_of_a_subfolder_uses_the_repo_root_gitignore(repo: Path, lint: Lint) -> None:
    write(repo / ".gitignore", "*.gen.py\n")
    write(repo / "src" / "a.py", COLOUR_PY)
    write(repo / "src" / "b.gen.py", COLOUR_PY)

    _, report = lint(repo / "src")

    assert colour_paths(report) == ["a.py"]


def test_walk_of_a_project_folder_inside_a_larger_repo_uses_git(repo: Path, lint: Lint) -> None:
    write(repo / ".gitignore", "dist/\n")
    web = repo / "packages" / "web"
    write(web / ".tinyarms.yaml", "fail_on: warning\n")
    write(web / "a.tsx", COLOUR_TSX)
    write(web / "dist" / "bundle.tsx", COLOUR_TSX)

    _, from_project = lint(web)
    _, from_top = lint(repo, "packages/web")

    assert colour_paths(from_project) == ["a.tsx"]
    assert colour_paths(from_top) == ["packages/web/a.tsx"]


def test_walk_outside_git_honours_nested_gitignore_files(plain_dir: Path, lint: Lint) -> None:
    write(plain_dir / ".gitignore", "*.gen.py\nbuild/\n")
    write(plain_dir / "sub" / ".gitignore", "!keep.gen.py\nlocal.py\n")
    for name in ("a.gen.py", "build/x.py", "sub/a.gen.py", "sub/local.py", "sub/deep/local.py",
                 "sub/build/y.py", "sub/keep.gen.py", "sub/ok.py", "top.py"):
        write(plain_dir / name, COLOUR_PY)

    code, report = lint(plain_dir)

    assert code == 1
    # the same files git would list: a deeper .gitignore overrides a shallower one
    assert colour_paths(report) == ["sub/keep.gen.py", "sub/ok.py", "top.py"]


def test_walk_outside_git_skips_tool_folders(plain_dir: Path, lint: Lint) -> None:
    write(plain_dir / "app.py", COLOUR_PY)
    for folder in (".venv", "node_modules", "__pycache__", ".git-not", ".tox"):
        write(plain_dir / folder / "lib.py", COLOUR_PY)

    _, report = lint(plain_dir)

    assert colour_paths(report) == [".git-not/lib.py", "app.py"]


def test_walk_takes_only_files_some_rule_applies_to(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(repo / "app.py", COLOUR_PY)
    write(repo / "README.md", "# colour #ff0000\n")
    write(repo / "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    settings = load_settings(repo, {})
    opened: list[str] = []
    real_open = open

    def spy(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(Path(path).name)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", spy, raising=False)

    collected = files.collect_paths([str(repo)], settings.ruleset, files.Namer(repo, repo), 1 << 20)

    assert [job.rel for job in collected.jobs] == ["app.py"]
    assert collected.out_of_scope == 2
    assert collected.skipped == []
    assert opened == ["app.py"]


def test_an_explicitly_named_binary_file_is_read_and_reported_skipped(repo: Path, lint: Lint) -> None:
    write(repo / "logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    write(repo / "data.py", b"x = 1\0\0\0")

    code, report = lint(repo, "logo.png", "data.py")

    assert code == 0
    assert file_skips(report) == {"logo.png": "binary", "data.py": "binary"}
    assert report["stats"]["out_of_scope"] == 0


def test_an_explicitly_named_ignored_file_is_linted(repo: Path, lint: Lint) -> None:
    write(repo / ".gitignore", "scratch.py\n")
    write(repo / "scratch.py", COLOUR_PY)

    code, report = lint(repo, "scratch.py")

    assert code == 1
    assert found(report) == [("scratch.py", 1, 11, "hardcoded-colors")]


def test_a_file_named_twice_is_linted_once(repo: Path, lint: Lint) -> None:
    write(repo / "a.py", COLOUR_PY)

    _, report = lint(repo, "a.py", ".", "./a.py")

    assert colour_paths(report) == ["a.py"]


def test_paths_are_shown_relative_to_the_current_directory(repo: Path, lint: Lint) -> None:
    write(repo / "src" / "ui" / "a.tsx", COLOUR_TSX)

    _, from_root = lint(repo, "src")
    _, from_src = lint(repo / "src", "ui/a.tsx")

    assert found(from_root) == [("src/ui/a.tsx", 1, 44, "hardcoded-colors")]
    assert found(from_src) == [("ui/a.tsx", 1, 44, "hardcoded-colors")]


# Staged content


def test_staged_lints_the_staged_blob_not_the_working_file(repo: Path, lint: Lint) -> None:
    write(repo / "a.tsx", PLAIN_TSX)
    commit_all(repo)
    write(repo / "a.tsx", COLOUR_TSX)
    git(repo, "add", "a.tsx")
    write(repo / "a.tsx", PLAIN_TSX)  # the fix is in the working copy only, not in the commit

    staged_code, staged = lint(repo, "--staged")
    working_code, working = lint(repo, "a.tsx")

    assert staged_code == 1
    assert found(staged) == [("a.tsx", 1, 44, "hardcoded-colors")]
    assert (working_code, found(working)) == (0, [])


def test_staged_ignores_deleted_and_unstaged_files(repo: Path, lint: Lint) -> None:
    write(repo / "old.py", COLOUR_PY)
    write(repo / "kept.py", COLOUR_PY)
    commit_all(repo)
    git(repo, "rm", "-q", "old.py")
    write(repo / "unstaged.py", COLOUR_PY)
    write(repo / "new.py", 'ok = "fine"\n')
    git(repo, "add", "new.py")

    code, report = lint(repo, "--staged")

    assert code == 0
    assert report["findings"] == [] and file_skips(report) == {}
    assert report["stats"]["files"] == 1


def test_staged_file_deleted_from_the_working_tree_is_still_linted(repo: Path, lint: Lint) -> None:
    write(repo / "a.py", COLOUR_PY)
    git(repo, "add", "a.py")
    (repo / "a.py").unlink()

    code, report = lint(repo, "--staged")

    assert code == 1
    assert colour_paths(report) == ["a.py"]


def test_staged_limited_to_the_paths_given(repo: Path, lint: Lint) -> None:
    write(repo / "src" / "a.py", COLOUR_PY)
    write(repo / "lib" / "b.py", COLOUR_PY)
    git(repo, "add", "-A")

    _, report = lint(repo, "--staged", "src")

    assert colour_paths(report) == ["src/a.py"]


def test_staged_names_are_literal_not_globs(repo: Path, lint: Lint) -> None:
    # Next.js-style names: "[id]" and "*" must not match other, unstaged files as globs
    write(repo / "app" / "[id]" / "page.tsx", COLOUR_TSX)
    write(repo / "app" / "i" / "page.tsx", COLOUR_TSX)
    write(repo / "app" / "*.tsx", PLAIN_TSX)
    commit_all(repo)
    write(repo / "app" / "[id]" / "page.tsx", COLOUR_TSX.replace("ff0000", "00ff00"))
    write(repo / "app" / "*.tsx", COLOUR_TSX)
    git(repo, "add", "-A")

    _, report = lint(repo, "--staged")

    assert colour_paths(report) == ["app/*.tsx", "app/[id]/page.tsx"]


def test_staged_in_a_project_folder_inside_a_larger_repo(repo: Path, lint: Lint) -> None:
    write(repo / "packages" / "web" / ".tinyarms.yaml", "fail_on: warning\n")
    write(repo / "packages" / "web" / "a.tsx", COLOUR_TSX)
    git(repo, "add", "-A")

    code, report = lint(repo / "packages" / "web", "--staged")

    assert code == 1
    assert found(report) == [("a.tsx", 1, 44, "hardcoded-colors")]


def test_staged_symlink_is_reported_not_followed(repo: Path, lint: Lint) -> None:
    write(repo / "target.py", COLOUR_PY)
    commit_all(repo)
    (repo / "link.py").symlink_to("target.py")
    git(repo, "add", "link.py")

    _, report = lint(repo, "--staged")

    assert report["findings"] == []
    assert file_skips(report) == {"link.py": "symlink"}


def test_staged_outside_a_git_repository_is_a_usage_error(plain_dir: Path) -> None:
    result = run_cli("lint", "--staged", cwd=plain_dir)
    assert result.returncode == 2
    assert "not inside a git repository" in result.stderr


# Files that cannot be read


def test_a_symlink_pointing_outside_the_repo_is_skipped(repo: Path, tmp_path: Path, lint: Lint) -> None:
    outside = write(tmp_path / "outside" / "secret.py", COLOUR_PY)
    (repo / "link.py").symlink_to(outside)
    write(repo / "inside.py", COLOUR_PY)
    (repo / "inner_link.py").symlink_to("inside.py")

    _, walked = lint(repo)
    _, named = lint(repo, "link.py")

    assert file_skips(walked) == {"link.py": "symlink-outside"}
    assert colour_paths(walked) == ["inner_link.py", "inside.py"]
    assert (file_skips(named), named["findings"]) == ({"link.py": "symlink-outside"}, [])


def test_a_dangling_symlink_is_reported_unreadable(repo: Path, lint: Lint) -> None:
    (repo / "gone.py").symlink_to("missing.py")
    with pytest.raises(OSError):
        (repo / "gone.py").read_bytes()  # a real read failure, even for root

    code, walked = lint(repo)
    _, named = lint(repo, "gone.py")

    assert code == 0
    assert file_skips(walked) == file_skips(named) == {"gone.py": "unreadable"}
    assert walked["stats"]["files_skipped"] == 1


def test_a_nonexistent_path_is_a_usage_error_naming_it(repo: Path) -> None:
    write(repo / "a.py", 'x = "fine"\n')

    result = run_cli("lint", "a.py", "no/such/file.py", cwd=repo)

    assert result.returncode == 2
    assert "no/such/file.py" in result.stderr
    assert result.stdout == ""


def test_git_root_is_the_top_of_the_work_tree(repo: Path, plain_dir: Path) -> None:
    (repo / "deep" / "er").mkdir(parents=True)
    assert files.git_root(repo / "deep" / "er") == repo.resolve()
    assert files.git_root(plain_dir) is None


def test_namer_shows_paths_relative_to_cwd_and_names_them_relative_to_the_root(tmp_path: Path) -> None:
    namer = files.Namer(tmp_path, tmp_path / "src")
    path = (tmp_path / "src" / "a.py").resolve()
    assert (namer.shown(path), namer.rel(path)) == ("a.py", "src/a.py")
    elsewhere = (tmp_path / "lib" / "b.py").resolve()
    assert namer.shown(elsewhere) == elsewhere.as_posix()


def test_files_are_read_as_bytes_unchanged(repo: Path) -> None:
    raw = b"\xef\xbb\xbfx = '#ff0000'\r\n"
    write(repo / "a.py", raw)
    settings = load_settings(repo, {})
    collected = files.collect_paths(["a.py"], settings.ruleset, files.Namer(repo, repo), 1 << 20)
    assert [job.raw for job in collected.jobs] == [raw]


def test_dot_is_the_default_path(repo: Path, lint: Lint) -> None:
    write(repo / "a.py", COLOUR_PY)
    assert lint(repo)[1]["findings"] == lint(repo, ".")[1]["findings"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("in_git", [True, False], ids=["git", "no-git"])
def test_a_fifo_in_the_tree_is_not_opened(in_git: bool, repo: Path, plain_dir: Path) -> None:
    folder = repo if in_git else plain_dir
    os.mkfifo(folder / "pipe.py")  # opening it would block forever
    write(folder / "a.py", COLOUR_PY)

    result = run_cli("lint", "--format", "json", cwd=folder)  # a child process, so a hang times out
    report = json.loads(result.stdout)

    assert colour_paths(report) == ["a.py"]


def test_staged_lint_knows_which_lines_the_change_touched(repo) -> None:
    from tinyarms import files
    from tinyarms.ruleset import load_settings

    (repo / "a.py").write_text("".join(f"x{i} = {i}\n" for i in range(10)))
    git(repo, "add", "a.py")
    git(repo, "commit", "-qm", "a")
    (repo / "a.py").write_text("".join(f"x{i} = {i + (i in (3, 7, 8))}\n" for i in range(10)))
    (repo / "new file.py").write_text("y = 1\nz = 2\n")
    git(repo, "add", "-A")
    settings = load_settings(repo)
    collected = files.collect_staged([], settings.ruleset, files.Namer(repo, repo), 1 << 20)
    assert {j.rel: j.changed for j in collected.jobs} == {"a.py": ((4, 4), (8, 9)), "new file.py": ((1, 2),)}
    assert files.parse_hunks(b'+++ "b/odd\\tname.py"\n@@ -1 +1 @@\n') == {}  # quoted: all lines count
