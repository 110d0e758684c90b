"""``tinyarms service install|uninstall``: the files it writes and the commands it runs.

There is no systemd user session or launchd here, so fake ``systemctl`` and ``launchctl`` come
first on PATH: shell scripts that log their argv (and, for launchctl, keep whether the agent is
loaded, refusing what the real one refuses). The tests check they are called as the real ones
must be. ``systemd-analyze verify`` checks the unit where that binary exists.
"""

from __future__ import annotations

import configparser
import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import run_cli
from tinyarms.commands import service
from tinyarms.daemon import control

ROOT = Path(__file__).resolve().parents[2]
PYTHON = os.path.abspath(sys.executable)
UID = os.getuid()
AGENT = f"gui/{UID}/com.tinyarms.daemon"

LOG_ARGV = """#!/bin/sh
{ printf '%s' "${0##*/}"; printf ' %s' "$@"; printf '\\n'; } >> '@LOG@'
"""
SYSTEMCTL_FAILS = LOG_ARGV + """\
echo 'Failed to connect to bus: No medium found' >&2
exit 1
"""
# Loaded or not is kept in a file; bootstrap of a loaded agent fails as the real one does.
LAUNCHCTL = LOG_ARGV + """\
state='@STATE@'
case "$1" in
  print)
    [ -s "$state" ] && { echo "$2 = { state = running }"; exit 0; }
    echo "Could not find service \\"com.tinyarms.daemon\\" in domain for user gui: @UID@" >&2; exit 113 ;;
  bootstrap)
    [ -s "$state" ] && { echo 'Bootstrap failed: 5: Input/output error' >&2; exit 5; }
    [ -f "$3" ] || { echo 'Bootstrap failed: 2: No such file or directory' >&2; exit 2; }
    echo loaded > "$state" ;;
  bootout)
    [ -s "$state" ] || { echo 'Boot-out failed: 3: No such process' >&2; exit 3; }
    : > "$state" ;;
  *) echo "Unrecognized subcommand: $1" >&2; exit 1 ;;
esac
"""


class Box(NamedTuple):
    """A user's home, state directory and config, with fake service tools first on PATH."""

    root: Path
    home: Path  # $HOME
    state: Path  # $TINYARMS_HOME, not created yet
    config: Path  # $TINYARMS_CONFIG
    bin: Path
    log: Path  # one line per fake tool call: its name and argv
    env: dict[str, str]

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def fake(self, name: str, script: str) -> None:
        path = self.bin / name
        path.write_text(script.replace("@LOG@", str(self.log)).replace("@STATE@", str(self.root / "loaded"))
                        .replace("@UID@", str(UID)))
        path.chmod(0o755)

    def unit(self) -> Path:
        return self.root / "xdg" / "systemd" / "user" / "tinyarms.service"

    def agent(self) -> Path:
        return self.home / "Library" / "LaunchAgents" / "com.tinyarms.daemon.plist"


@pytest.fixture
def box(tmp_path: Path) -> Box:
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TINYARMS_") and k not in ("OLLAMA_HOST", "XDG_CONFIG_HOME")}
    env |= {
        "HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "TINYARMS_HOME": str(tmp_path / "state"), "TINYARMS_CONFIG": str(tmp_path / "config.yaml"),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    made = Box(tmp_path, home, tmp_path / "state", tmp_path / "config.yaml", bin_dir, tmp_path / "calls.log", env)
    made.fake("systemctl", LOG_ARGV)
    made.fake("launchctl", LAUNCHCTL)
    return made


def tinyarms(box: Box, *args: str, env: dict[str, str] | None = None,
             drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in {**box.env, **(env or {})}.items() if k not in drop}
    result = subprocess.run([sys.executable, "-m", "tinyarms", *args], cwd=box.root, env=full,
                            capture_output=True, text=True, timeout=120, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def read_unit(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(text)
    return parser["Service"]


def systemd_split(value: str) -> list[str]:
    """A unit file value split into words as systemd reads the quoting tinyarms writes (double
    quotes, ``\\"`` and ``\\\\`` inside them, ``%%`` for ``%``)."""
    return [word.replace("%%", "%") for word in shlex.split(value)]


def environment(unit: configparser.SectionProxy) -> dict[str, str]:
    return dict(word.split("=", 1) for word in systemd_split(unit["Environment"]))


# --- the files ----------------------------------------------------------------------------------


def test_plist_runs_this_python_at_load_kept_alive_with_env_and_logs(box: Box) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", "macos",
                      env={"OLLAMA_HOST": "gpu-box:11434"})

    assert result.returncode == 0, result.stderr
    agent = plistlib.loads(result.stdout.encode())
    assert agent["Label"] == "com.tinyarms.daemon"
    assert agent["ProgramArguments"] == [PYTHON, "-m", "tinyarms", "daemon", "run"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}  # restarted when it fails, not after `daemon stop`
    assert agent["EnvironmentVariables"] == {
        "TINYARMS_HOME": str(box.state.resolve()),
        "TINYARMS_CONFIG": str(box.config),
        "OLLAMA_HOST": "gpu-box:11434",
        "TINYARMS_DAEMON__IDLE_TIMEOUT": "null",
        "TINYARMS_SERVICE": "launchd",
    }
    assert agent["StandardOutPath"] == str(box.state.resolve() / "logs" / "daemon.out")
    assert agent["StandardErrorPath"] == str(box.state.resolve() / "logs" / "daemon.out")


def test_plist_escapes_what_xml_cannot_hold_raw() -> None:
    python = "/Users/a&b/<venv>/bin/python"
    env = {"TINYARMS_HOME": "/Users/a&b/state <1>", "OLLAMA_HOST": "http://h:1/?a=1&b=2"}

    agent = plistlib.loads(service.render_launchd(python, env, Path("/Users/a&b/state <1>/logs")))

    assert agent["ProgramArguments"][0] == python
    assert agent["EnvironmentVariables"] == env
    assert agent["StandardOutPath"] == "/Users/a&b/state <1>/logs/daemon.out"


def test_unit_runs_this_python_restarts_on_failure_with_env(box: Box) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux",
                      env={"OLLAMA_HOST": "127.0.0.1:11500"})

    assert result.returncode == 0, result.stderr
    unit = read_unit(result.stdout)
    assert systemd_split(unit["ExecStart"]) == [PYTHON, "-m", "tinyarms", "daemon", "run"]
    assert unit["Restart"] == "on-failure"
    assert environment(unit) == {
        "TINYARMS_HOME": str(box.state.resolve()),
        "TINYARMS_CONFIG": str(box.config),
        "OLLAMA_HOST": "127.0.0.1:11500",
        "TINYARMS_DAEMON__IDLE_TIMEOUT": "null",
        "TINYARMS_SERVICE": "systemd",
    }
    assert "WantedBy=default.target" in result.stdout  # what `enable` hooks it to: the user's login


def test_env_passes_only_what_the_shell_sets_and_names_what_it_leaves_out(box: Box) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux",
                      env={"TINYARMS_FAIL_ON": "error"}, drop=("TINYARMS_CONFIG",))

    assert environment(read_unit(result.stdout)) == {
        "TINYARMS_HOME": str(box.state.resolve()), "TINYARMS_DAEMON__IDLE_TIMEOUT": "null",
        "TINYARMS_SERVICE": "systemd",
    }
    assert "does not see TINYARMS_FAIL_ON" in result.stderr


def test_relative_config_path_is_made_absolute(box: Box) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux",
                      env={"TINYARMS_CONFIG": "conf/tinyarms.yaml"})

    assert environment(read_unit(result.stdout))["TINYARMS_CONFIG"] == str(box.root / "conf" / "tinyarms.yaml")


def test_null_idle_timeout_in_the_env_overrides_the_user_config(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from tinyarms.config import load_config

    user = tmp_path / "config.yaml"
    user.write_text("daemon:\n  idle_timeout: 60\n")
    monkeypatch.setenv("TINYARMS_CONFIG", str(user))
    assert load_config(None, env={}).config.daemon.idle_timeout == 60

    name, value = service.NO_IDLE_SHUTDOWN
    assert load_config(None, env={name: value}).config.daemon.idle_timeout is None


def test_unit_quotes_spaces_quotes_backslashes_and_percent() -> None:
    python = "/opt/my tools/100% $py/bin/python"
    env = {"TINYARMS_HOME": "/home/u/state dir", "TINYARMS_CONFIG": "C:\\odd\\path %h.yaml",
           "OLLAMA_HOST": "h:1", "TINYARMS_DAEMON__IDLE_TIMEOUT": "null"}

    unit = read_unit(service.render_systemd(python, env))

    assert systemd_split(unit["ExecStart"]) == [python, "-m", "tinyarms", "daemon", "run"]
    assert environment(unit) == env
    assert unit["ExecStart"].startswith('"/opt/my tools/100%% $py/bin/python" ')


@pytest.mark.parametrize("char", ['"', "'", "\\", "\n"])
def test_unit_refuses_a_python_path_systemd_cannot_run(char: str) -> None:
    with pytest.raises(service.ServiceError, match="systemd cannot run a Python"):
        service.render_systemd(f"/opt/odd{char}dir/bin/python", {})


def test_unit_escapes_control_characters() -> None:
    assert service.systemd_word("a\nb\tc\x01") == '"a\\nb\\tc\\x01"'
    assert service.systemd_word("") == '""'
    assert service.systemd_word("/plain/path") == "/plain/path"


needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")


def systemd_verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "units"
    folder.mkdir(exist_ok=True)
    (folder / "tinyarms.service").write_text(unit_text)
    runtime = tmp_path / "runtime"  # --user wants a runtime directory, even when only verifying
    runtime.mkdir(mode=0o700, exist_ok=True)
    return subprocess.run(
        ["systemd-analyze", "verify", "--user", "--man=no", str(folder / "tinyarms.service")],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )


@needs_systemd_analyze
def test_systemd_analyze_accepts_the_unit(box: Box) -> None:
    unit = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux",
                    env={"OLLAMA_HOST": "h:1"}).stdout

    result = systemd_verify(unit, box.root)

    # verify exits 0 even when it ignores a line, so its complaints are checked too
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


@needs_systemd_analyze
def test_systemd_analyze_finds_a_python_whose_path_needs_quoting(tmp_path: Path) -> None:
    odd = tmp_path / "my venv %h $x ${y}" / "bin"
    odd.mkdir(parents=True)
    (odd / "python").symlink_to(sys.executable)
    env = {"TINYARMS_HOME": str(tmp_path / "state dir"), "TINYARMS_DAEMON__IDLE_TIMEOUT": "null"}

    result = systemd_verify(service.render_systemd(str(odd / "python"), env), tmp_path)

    # a path read wrongly would be "not executable"
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


def test_templates_ship_in_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    force = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert force["launchd"] == "tinyarms/_data/launchd"
    assert (ROOT / "launchd" / "tinyarms.service").is_file()
    assert (ROOT / "launchd" / "com.tinyarms.daemon.plist").is_file()


# --- dry run ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "commands"), [
    ("linux", ["systemctl --user daemon-reload", "systemctl --user enable --now tinyarms.service"]),
    ("macos", [f"launchctl print {AGENT}", f"launchctl bootout {AGENT}", f"launchctl bootstrap gui/{UID} "]),
])
def test_dry_run_changes_nothing_and_prints_the_commands(box: Box, platform: str, commands: list[str]) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", platform)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(("# The tinyarms daemon", "<?xml"))
    lines = [line.strip() for line in result.stderr.splitlines()]
    for command in commands:
        assert any(line.startswith(command) for line in lines), (command, result.stderr)
    assert box.calls() == []
    # no unit, no state directory, no log folder, no tool called
    assert sorted(p.name for p in box.root.iterdir()) == ["bin", "home"]
    assert list(box.home.iterdir()) == []


def test_dry_run_uninstall_changes_nothing(box: Box) -> None:
    assert tinyarms(box, "service", "install", "--platform", "linux").returncode == 0
    before = box.calls()

    result = tinyarms(box, "service", "uninstall", "--dry-run", "--platform", "linux")

    assert result.returncode == 0
    assert "systemctl --user disable --now tinyarms.service" in result.stderr
    assert f"(then remove {box.unit()})" in result.stderr
    assert box.unit().exists() and box.calls() == before


# --- install and uninstall ----------------------------------------------------------------------


@pytest.mark.parametrize("xdg", ["set", "unset", "relative"])
def test_linux_install_is_idempotent_and_uninstall_removes_it(box: Box, xdg: str) -> None:
    env = {"XDG_CONFIG_HOME": "relative/xdg"} if xdg == "relative" else None
    drop = ("XDG_CONFIG_HOME",) if xdg == "unset" else ()
    unit = box.unit() if xdg == "set" else box.home / ".config" / "systemd" / "user" / "tinyarms.service"
    expected = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux", env=env, drop=drop).stdout

    first = tinyarms(box, "service", "install", "--platform", "linux", env=env, drop=drop)

    assert first.returncode == 0, first.stderr
    assert unit.read_text() == expected
    assert unit.stat().st_mode & 0o777 == 0o644
    assert box.calls() == ["systemctl --user daemon-reload", "systemctl --user enable --now tinyarms.service"]
    assert box.state.is_dir()

    again = tinyarms(box, "service", "install", "--platform", "linux", env=env, drop=drop)

    assert again.returncode == 0, again.stderr
    assert "up to date" in again.stderr
    assert unit.read_text() == expected
    assert box.calls()[2:] == ["systemctl --user daemon-reload", "systemctl --user enable --now tinyarms.service"]
    assert [p.name for p in unit.parent.iterdir()] == ["tinyarms.service"]  # no temporary file left

    gone = tinyarms(box, "service", "uninstall", "--platform", "linux", env=env, drop=drop)

    assert gone.returncode == 0, gone.stderr
    assert not unit.exists()
    assert box.calls()[4:] == ["systemctl --user disable --now tinyarms.service", "systemctl --user daemon-reload"]

    twice = tinyarms(box, "service", "uninstall", "--platform", "linux", env=env, drop=drop)

    assert twice.returncode == 0 and "no tinyarms service is installed" in twice.stderr
    assert len(box.calls()) == 6


def test_linux_install_rewrites_a_changed_unit(box: Box) -> None:
    tinyarms(box, "service", "install", "--platform", "linux")
    tinyarms(box, "service", "install", "--platform", "linux", env={"OLLAMA_HOST": "elsewhere:1"})

    assert environment(read_unit(box.unit().read_text()))["OLLAMA_HOST"] == "elsewhere:1"
    assert box.calls()[2:] == ["systemctl --user daemon-reload", "systemctl --user enable --now tinyarms.service"]


def test_macos_install_loads_reloads_and_uninstall_unloads(box: Box) -> None:
    plist = box.agent()

    first = tinyarms(box, "service", "install", "--platform", "macos")

    assert first.returncode == 0, first.stderr
    agent = plistlib.loads(plist.read_bytes())
    assert agent["ProgramArguments"][0] == PYTHON
    assert (box.state / "logs").is_dir()  # launchd opens the log there and would not create the folder
    assert box.calls() == [f"launchctl print {AGENT}", f"launchctl bootstrap gui/{UID} {plist}"]

    again = tinyarms(box, "service", "install", "--platform", "macos")

    assert again.returncode == 0, again.stderr  # the fake, like launchd, refuses to bootstrap a loaded agent
    assert box.calls()[2:] == [f"launchctl print {AGENT}", f"launchctl bootout {AGENT}",
                               f"launchctl bootstrap gui/{UID} {plist}"]

    gone = tinyarms(box, "service", "uninstall", "--platform", "macos")

    assert gone.returncode == 0, gone.stderr
    assert not plist.exists()
    assert box.calls()[5:] == [f"launchctl print {AGENT}", f"launchctl bootout {AGENT}"]


def test_failing_systemctl_exits_1_with_its_stderr_and_keeps_the_unit(box: Box) -> None:
    box.fake("systemctl", SYSTEMCTL_FAILS)

    result = tinyarms(box, "service", "install", "--platform", "linux")

    assert result.returncode == 1
    assert "systemctl --user daemon-reload` failed (exit 1)" in result.stderr
    assert "Failed to connect to bus: No medium found" in result.stderr
    assert "hint:" in result.stderr and "tinyarms daemon start" in result.stderr
    assert box.unit().is_file()
    assert box.calls() == ["systemctl --user daemon-reload"]  # nothing after the failure

    result = tinyarms(box, "service", "uninstall", "--platform", "linux")

    assert result.returncode == 1 and "No medium found" in result.stderr
    assert box.unit().is_file()


@pytest.mark.parametrize(("platform", "tool"), [("linux", "systemctl"), ("macos", "launchctl")])
def test_missing_tool_exits_1_and_keeps_the_file(box: Box, platform: str, tool: str) -> None:
    empty = box.root / "empty"
    empty.mkdir()

    result = tinyarms(box, "service", "install", "--platform", platform, env={"PATH": str(empty)})

    assert result.returncode == 1
    assert f"{tool} not found on PATH" in result.stderr and "hint:" in result.stderr
    assert (box.unit() if platform == "linux" else box.agent()).is_file()


@pytest.fixture
def hand_daemon(box: Box) -> Iterator[int]:
    """A daemon for the box's state directory, started as a user would, outside any service."""
    started = run_cli("daemon", "start", cwd=box.root, env=box.env)
    assert started.returncode == 0, started.stderr
    info = control.read_pid(box.state)
    assert info is not None
    yield info["pid"]
    control.stop(box.state)


def test_install_stops_a_daemon_started_by_hand_and_says_so(box: Box, hand_daemon: int) -> None:
    assert control.ping(box.state) is not None

    result = tinyarms(box, "service", "install", "--platform", "linux")

    assert result.returncode == 0, result.stderr
    assert f"stopped the running daemon (pid {hand_daemon})" in result.stderr
    assert control.ping(box.state) is None and not control.is_locked(box.state)
    assert box.calls()[-1] == "systemctl --user enable --now tinyarms.service"


def test_dry_run_only_says_it_would_stop_the_daemon(box: Box, hand_daemon: int) -> None:
    result = tinyarms(box, "service", "install", "--dry-run", "--platform", "linux")

    assert f"would first stop the running daemon (pid {hand_daemon})" in result.stderr
    assert control.ping(box.state) is not None
