"""The git pre-commit hook end to end: real repositories, real ``git commit``, the installed hook
file and the real daemon it starts. Every daemon a test causes is stopped in teardown."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from tests.conftest import at, git, run_cli
from tests.servers import Listener
from tests.timing import scaled
from tinyarms.daemon import control

CHECKOUT = Path(__file__).resolve().parents[2]

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


# -- 1. the hook starts the daemon and blocks on findings -------------------------------------


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


# -- 2. the staged content is what is linted --------------------------------------------------


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


# -- 3. a daemon killed with SIGKILL is replaced without anyone noticing ----------------------


def test_a_commit_after_kill_9_of_the_daemon_recovers_by_itself(hooked: Path, home: Path) -> None:
    write(hooked, "Alert.tsx", CLEAN)
    assert commit(hooked, "first").code == 0
    old_pid = json.loads((home / "daemon.pid").read_text())["pid"]

    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not control.is_locked(home))
    assert (home / "daemon.sock").exists()  # the dead daemon's socket is left behind

    write(hooked, "Other.tsx", COLOURED)
    blocked = commit(hooked, "second")
    assert blocked.code != 0, blocked.output
    assert "Other.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output
    assert "daemon unavailable" not in blocked.output  # the new daemon answered, no fallback

    new_pid = json.loads((home / "daemon.pid").read_text())["pid"]
    assert new_pid != old_pid
    code, info = status(hooked)
    assert code == 0 and info["daemon"]["pid"] == new_pid

    write(hooked, "Other.tsx", CLEAN)
    passed = commit(hooked, "second")
    assert passed.code == 0, passed.output
    assert committed(hooked, "second")


# -- 4. no daemon can start: the hook falls back within the budget ----------------------------


def test_when_the_socket_path_is_taken_the_hook_lints_in_process_within_budget(
    hooked: Path, home: Path, request: pytest.FixtureRequest
) -> None:
    # Something that is not a socket squats on the daemon's socket path: the daemon dies at start.
    squatter = home / "daemon.sock"
    squatter.mkdir()
    request.addfinalizer(squatter.rmdir)  # before `home` stops daemons, which expects no directory there
    budget, margin = scaled(2.0, 1.5)
    env = {"TINYARMS_BUDGET": str(budget)}

    write(hooked, "Alert.tsx", COLOURED)
    blocked = commit(hooked, "coloured", env=env)

    assert blocked.code != 0, blocked.output
    assert "daemon unavailable" in blocked.output
    assert "the daemon exited with status 1" in blocked.output  # noticed, not waited out
    assert str(home / "logs" / "daemon.out") in blocked.output  # where to look
    assert "linting in this process (Level 0 only)" in blocked.output  # says what it falls back to
    assert "Alert.tsx:1:" in blocked.output and "hardcoded-colors" in blocked.output  # Level 0 still ran
    assert "skipped design-tokens" in blocked.output  # and names the checks it did not do
    assert blocked.seconds <= budget + margin, blocked.seconds
    assert not control.is_locked(home)

    write(hooked, "Alert.tsx", CLEAN)
    passed = commit(hooked, "clean", env=env)
    assert passed.code == 0, passed.output
    assert "daemon unavailable" in passed.output
    assert passed.seconds <= budget + margin, passed.seconds


def test_when_the_user_config_is_broken_the_commit_stops_with_the_config_error_within_budget(
    hooked: Path, home: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "config.yaml"
    bad.write_text("fail_on: [\n", encoding="utf-8")
    budget, margin = scaled(2.0, 1.5)

    write(hooked, "Alert.tsx", CLEAN)
    result = commit(hooked, "clean", env={"TINYARMS_BUDGET": str(budget), "TINYARMS_CONFIG": str(bad)})

    assert result.code != 0, result.output  # exit 2: a config error is never silently a pass
    assert "daemon unavailable" in result.output
    assert f"{bad}:2:" in result.output  # names the file and line to fix
    assert result.seconds <= budget + margin, result.seconds
    assert not committed(hooked, "clean")
    assert not control.is_locked(home)


def test_a_daemon_that_dies_at_start_is_not_waited_for(hooked: Path, home: Path, tmp_path: Path) -> None:
    """With the default budget the hook could wait 4 s for the daemon's socket; a daemon that
    has already exited will never answer, so the hook must fall back at once."""
    bad = tmp_path / "config.yaml"
    bad.write_text("fail_on: [\n", encoding="utf-8")

    write(hooked, "Alert.tsx", CLEAN)
    result = commit(hooked, "clean", env={"TINYARMS_BUDGET": "5", "TINYARMS_CONFIG": str(bad)})

    assert "the daemon exited with status 2" in result.output, result.output
    assert result.seconds < 3.0, result.seconds


# -- 5. a daemon that never answers costs the budget, not a hung commit -----------------------


class FakeDaemon:
    """Listens on the daemon's socket path and misbehaves in one way."""

    def __init__(self, path: Path, behaviour: str):
        self.behaviour = behaviour
        self.accepted = 0
        self.held: list[socket.socket] = []
        self._stop = threading.Event()
        self.listener = Listener(path)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            conn = self.listener.accept(0.5, self._stop)
            if conn is None:
                continue
            self.accepted += 1
            if self.behaviour == "silent":
                self.held.append(conn)  # read nothing, answer nothing, never hang up
            elif self.behaviour == "garbage":
                conn.settimeout(5)
                conn.recv(1 << 16)
                conn.sendall(b"this is not json\n")
                conn.close()
            else:  # hangs up
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self.held:
            conn.close()
        self.listener.close()


@pytest.fixture
def fake_daemon(home: Path, request: pytest.FixtureRequest) -> Iterator[FakeDaemon]:
    fake = FakeDaemon(home / "daemon.sock", request.param)
    yield fake
    fake.close()


@pytest.mark.parametrize("fake_daemon", ["silent", "garbage", "hangs-up"], indirect=True)
def test_a_daemon_that_does_not_answer_properly_never_hangs_the_commit(
    hooked: Path, home: Path, fake_daemon: FakeDaemon
) -> None:
    assert not control.is_locked(home)  # nothing but the fake is there to talk to
    budget, margin = scaled(2.0, 1.0)

    write(hooked, "Alert.tsx", COLOURED)
    result = commit(hooked, "coloured", env={"TINYARMS_BUDGET": str(budget)})

    assert fake_daemon.accepted >= 1  # the hook did talk to the fake
    assert result.seconds < budget + margin, result.seconds
    assert "daemon unavailable" in result.output
    assert "Level 0 only" in result.output and "skipped design-tokens" in result.output
    assert "the daemon is unavailable" in result.output and "turned off" not in result.output  # it is not
    assert result.code != 0 and "hardcoded-colors" in result.output  # the fallback still found it


# -- 6. an existing hook, core.hooksPath, worktrees -------------------------------------------


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


# -- 7. the hook path imports nothing heavy ----------------------------------------------------


def _installed_hook_command(repo: Path) -> list[str]:
    hook = repo / ".git" / "hooks" / "pre-commit"
    shebang = hook.read_text().splitlines()[0]
    python, flags = shebang[2:].split()
    assert Path(python).is_file() and flags == "-IS"
    return [python, "-X", "importtime", "-I", "-S", str(hook)]


def _imported(log: str) -> set[str]:
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("tinyarms", "pydantic", "pydantic_core", "yaml")}


def test_the_hook_imports_only_the_stdlib_with_nothing_staged(hooked: Path) -> None:
    done = subprocess.run(_installed_hook_command(hooked), cwd=hooked, capture_output=True, text=True, timeout=30,
                          check=False)

    assert done.returncode == 0, done.stderr
    modules = _imported(done.stderr)
    assert {"_json", "_socket", "os"} <= modules  # the log is real
    assert _heavy(modules) == set()
    assert not {"json", "socket", "subprocess"} & modules  # the C modules under them are enough


def test_the_hook_imports_only_the_stdlib_when_it_talks_to_the_daemon(hooked: Path, home: Path) -> None:
    write(hooked, "Alert.tsx", COLOURED)
    command = _installed_hook_command(hooked)
    subprocess.run(command, cwd=hooked, capture_output=True, timeout=30, check=False)  # starts the daemon
    assert control.is_locked(home)

    done = subprocess.run(command, cwd=hooked, capture_output=True, text=True, timeout=30, check=False)

    assert done.returncode == 1, done.stderr
    assert "hardcoded-colors" in done.stdout and "daemon unavailable" not in done.stderr
    modules = _imported(done.stderr)
    assert _heavy(modules) == set()
    assert not {"json", "socket", "subprocess"} & modules  # a warm daemon costs the hook no more


# -- 8. the pre-commit framework --------------------------------------------------------------


def _manifest() -> list[dict]:
    return yaml.safe_load((CHECKOUT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))


def test_the_pre_commit_manifest_declares_one_serial_hook_without_file_names() -> None:
    hooks = _manifest()
    (hook,) = [h for h in hooks if h["id"] == "tinyarms"]
    assert hook["pass_filenames"] is False
    assert hook["require_serial"] is True
    assert hook["entry"] == "tinyarms hook run"
    done = subprocess.run(
        [sys.executable, "-m", "pre_commit", "validate-manifest", str(CHECKOUT / ".pre-commit-hooks.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_pre_commit_framework_runs_the_hook(repo: Path, home: Path, tmp_path: Path) -> None:
    (hook,) = [h for h in _manifest() if h["id"] == "tinyarms"]
    config = {"repos": [{"repo": "local", "hooks": [{**hook, "language": "system"}]}]}
    write(repo, ".pre-commit-config.yaml", yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # `tinyarms` itself
    }

    def pre_commit_run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pre_commit", "run"], cwd=repo, capture_output=True, text=True, env=env, timeout=60,
            check=False)

    write(repo, "Alert.tsx", COLOURED)
    failed = pre_commit_run()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "hardcoded-colors" in failed.stdout
    assert f"Alert.tsx:{COLOURED_AT[0]}:{COLOURED_AT[1]}" in failed.stdout

    write(repo, "Alert.tsx", CLEAN)
    passed = pre_commit_run()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "tinyarms" in passed.stdout and "Passed" in passed.stdout
