from pathlib import Path

from tests.conftest import run_cli


def test_verbose_says_what_the_lint_loaded_and_cost(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 42\n")
    quiet = run_cli("lint", "--no-daemon", "a.py", cwd=tmp_path)
    assert quiet.returncode == 1 and quiet.stderr == ""

    verbose = run_cli("-v", "lint", "--no-daemon", "a.py", cwd=tmp_path)
    assert verbose.returncode == 1 and verbose.stdout == quiet.stdout  # logs go to stderr only
    (line,) = [line for line in verbose.stderr.splitlines() if "lint_done" in line]
    assert "[info" in line and "files=1" in line and "findings=1" in line
    assert "'code-linting-fast': '<built-in>/skills/code-linting-fast.yaml'" in line


def test_quiet_keeps_warnings_off_stderr_but_the_lint_still_answers(tmp_path: Path, isolated_env: Path) -> None:
    (isolated_env / "cache.db").mkdir()  # the cache cannot open: a warning, not a failure
    (tmp_path / "a.py").write_text("x = 42\n")
    loud = run_cli("lint", "--no-daemon", "a.py", cwd=tmp_path)
    assert loud.returncode == 1 and "cache_error" in loud.stderr and "[warning" in loud.stderr
    quiet = run_cli("-q", "lint", "--no-daemon", "a.py", cwd=tmp_path)
    assert quiet.returncode == 1 and quiet.stderr == "" and quiet.stdout == loud.stdout
