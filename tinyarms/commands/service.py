"""``tinyarms service install|uninstall [--dry-run]``: the daemon as a per-user service.

Linux: a systemd user unit, ``$XDG_CONFIG_HOME/systemd/user/tinyarms.service``; macOS: a launchd
agent, ``~/Library/LaunchAgents/com.tinyarms.daemon.plist``. Both are rendered from the templates
in ``launchd/`` with this interpreter and this state directory filled in; both run
``python -m tinyarms daemon run`` at login and again when it fails.

The service's environment is fixed when it is installed: ``TINYARMS_HOME`` (this state
directory), ``TINYARMS_CONFIG`` and ``OLLAMA_HOST`` when the installing shell sets them, and
idle shutdown off. Install writes the file only when it changed and can run again at any time.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

from tinyarms import resources
from tinyarms.daemon.control import LABEL, UNIT
from tinyarms.paths import is_config_env, state_dir

PLATFORMS = ("linux", "macos")
COMMAND_TIMEOUT = 60.0
# An environment variable cannot leave a key unset, but env_layer parses values as YAML, so
# "null" is None: idle_timeout off, whatever the user config says.
NO_IDLE_SHUTDOWN = ("TINYARMS_DAEMON__IDLE_TIMEOUT", "null")
# Tells the daemon which manager runs it, so a client replacing it after an upgrade asks that
# manager to restart it instead of starting a second, hand-run daemon (daemon/control.py).
MANAGED_BY = "TINYARMS_SERVICE"
_PLACEHOLDER = re.compile(r"@([A-Z_]+)@")
_C_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_ASCII_END = 0x80  # below: one \xNN escape
_BMP_END = 0x10000  # below: one \uNNNN escape; above, \UNNNNNNNN
UNIT_MODE = 0o644  # the service file: the user writes it, the service manager reads it


class ServiceError(Exception):
    """What went wrong and what to do: exit status 1."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint


class Target(NamedTuple):
    """One platform's service: the file it reads and the tool that loads it."""

    platform: str
    path: Path
    tool: str  # systemctl or launchctl


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("install", "uninstall"))
    parser.add_argument("--dry-run", action="store_true",
                        help="print the file and the commands that would run; change nothing")
    parser.add_argument("--platform", choices=PLATFORMS, default=None,
                        help="write the service file of this platform (default: this machine's); "
                             "with --dry-run, shows the other platform's file")


# --- rendering: pure functions of the interpreter and the environment -----------------------------


def template(name: str) -> Path:
    return resources.data_dir("launchd") / name


def service_environment(home: Path, environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, str]:
    """The daemon's environment under the service, taken from the installing shell."""
    env = {"TINYARMS_HOME": str(home)}
    if environ.get("TINYARMS_CONFIG"):
        # The service starts in another directory: a relative path would name another file.
        env["TINYARMS_CONFIG"] = os.path.abspath(environ["TINYARMS_CONFIG"])
    if environ.get("OLLAMA_HOST"):
        env["OLLAMA_HOST"] = environ["OLLAMA_HOST"]
    env[NO_IDLE_SHUTDOWN[0]] = NO_IDLE_SHUTDOWN[1]
    return env


def _fill(text: str, values: dict[str, str], source: str) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise ServiceError(f"{source}: unknown placeholder {match.group(0)}")
        return values[match.group(1)]

    return _PLACEHOLDER.sub(value, text)


def systemd_word(value: str) -> str:
    """``value`` as one word of a unit file line (systemd.syntax(7), "Quoting"): ``%`` doubled,
    since specifiers expand everywhere; double-quoted, with C escapes, when it holds blanks,
    quotes, backslashes or control characters.

    ``$`` is left alone: ``$$`` would reach the executable path verbatim, and a ``$`` inside a word
    is substituted only as ``${NAME}`` (in ExecStart arguments; never in Environment=)."""
    value = value.replace("%", "%%")
    if value and not any(char in " \"'\\" or not char.isprintable() for char in value):
        return value
    out = []
    for char in value:
        if char in "\"\\":
            out.append("\\" + char)
        elif char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < _ASCII_END:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < _BMP_END:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


def render_systemd(python: str, env: dict[str, str]) -> str:
    # systemd refuses these in an executable's path, however quoted ("contains special characters")
    if any(char in "\"'\\" or not char.isprintable() for char in python):
        raise ServiceError(f"systemd cannot run a Python whose path holds quotes, backslashes or control "
                           f"characters: {python}", "install tinyarms with a Python at a plainer path")
    source = template(UNIT)
    return _fill(source.read_text(encoding="utf-8"), {
        "PYTHON": systemd_word(python),
        # One Environment= line of quoted assignments, the form systemd.exec(5) documents.
        "ENVIRONMENT": " ".join(systemd_word(f"{name}={value}") for name, value in env.items()),
    }, str(source))


def render_launchd(python: str, env: dict[str, str], logs: Path) -> bytes:
    """The agent plist. Built by plistlib, so paths with ``&`` or ``<`` come out well-formed."""
    import plistlib

    source = template(f"{LABEL}.plist")
    values = {"PYTHON": python, "LOG_DIR": str(logs)}

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return _fill(node, values, str(source))
        if isinstance(node, list):
            return [fill(item) for item in node]
        if isinstance(node, dict):
            return {key: fill(item) for key, item in node.items()}
        return node

    agent = fill(plistlib.loads(source.read_bytes()))
    agent["EnvironmentVariables"] = dict(env)
    return plistlib.dumps(agent, sort_keys=False)  # the template's order, which reads best


def target(platform: str) -> Target:
    if platform == "macos":
        return Target(platform, Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist", "launchctl")
    config = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative value.
    base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
    return Target(platform, base / "systemd" / "user" / UNIT, "systemctl")


def render(where: Target, home: Path) -> bytes:
    if not sys.executable:
        raise ServiceError("cannot tell which Python runs tinyarms (sys.executable is empty)",
                           "run the command as `/path/to/python -m tinyarms service install`")
    python = os.path.abspath(sys.executable)  # not resolved: a venv's python is a symlink that must stay one
    env = service_environment(home)
    if where.platform == "macos":
        return render_launchd(python, {**env, MANAGED_BY: "launchd"}, home / "logs")
    return render_systemd(python, {**env, MANAGED_BY: "systemd"}).encode("utf-8")


# --- doing it ---------------------------------------------------------------------------------


def write_atomic(path: Path, content: bytes) -> bool:
    """Write ``content`` unless the file holds it already; True if the file changed. systemd and
    launchd read either the old file or the new one, never part of one."""
    import tempfile

    try:
        if path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, UNIT_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


class Manager:
    """Runs systemctl or launchctl, or with ``--dry-run`` only says what it would run."""

    def __init__(self, where: Target, dry_run: bool, hint: str):
        self.tool = where.tool
        self.dry_run = dry_run
        self.hint = hint  # what to do when the tool fails

    def require(self) -> str:
        exe = shutil.which(self.tool)
        if exe is None:
            raise ServiceError(f"{self.tool} not found on PATH", self.hint)
        return exe

    def _show(self, args: tuple[str, ...], note: str) -> None:
        print(f"  {shlex.join([self.tool, *args])}" + (f"    # {note}" if note else ""), file=sys.stderr)

    def _call(self, args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        command = shlex.join([self.tool, *args])
        try:
            return subprocess.run([self.require(), *args], capture_output=True, text=True,
                                  stdin=subprocess.DEVNULL, timeout=COMMAND_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise ServiceError(f"`{command}` did not finish within {COMMAND_TIMEOUT:.0f} s", self.hint) from None
        except OSError as exc:
            raise ServiceError(f"`{command}` could not run: {exc}", self.hint) from None

    def run(self, *args: str, note: str = "") -> None:
        if self.dry_run:
            self._show(args, note)
            return
        result = self._call(args)
        if result.returncode != 0:
            output = (result.stderr.strip() or result.stdout.strip() or "(no output)")
            raise ServiceError(
                f"`{shlex.join([self.tool, *args])}` failed (exit {result.returncode}):\n{output}", self.hint,
            )

    def probe(self, *args: str, note: str = "") -> bool:
        """A read-only question; exit 0 is yes. Under --dry-run shown and taken as yes, so the
        commands that depend on it are shown too."""
        if self.dry_run:
            self._show(args, note)
            return True
        return self._call(args).returncode == 0


def _say(message: str) -> None:
    print(f"tinyarms: {message}", file=sys.stderr)


def _stop_running_daemon(home: Path, dry_run: bool) -> None:
    """One daemon per state directory: a daemon started by hand (or by the git hook) holds the
    lock, and the service's daemon would find it taken and exit. Stop it, so the service owns it."""
    from tinyarms.daemon import control

    if not control.is_locked(home):
        return
    pid = (control.read_pid(home) or {}).get("pid", "?")
    if dry_run:
        _say(f"would first stop the running daemon (pid {pid}), so the service's daemon owns {home}")
    elif control.stop(home):
        _say(f"stopped the running daemon (pid {pid}), so the service's daemon owns {home}")


def _left_out(env: dict[str, str]) -> None:
    names = sorted(name for name in os.environ if is_config_env(name) and name not in env)
    if names:
        from tinyarms.config import user_config_path

        them = "it" if len(names) == 1 else "them"
        _say(f"note: the service does not see {', '.join(names)} from this shell; to apply {them} to "
             f"the daemon, set {them} in the user config ({user_config_path()})")


def _install_hint(where: Target, uid: int) -> str:
    if where.platform == "linux":
        return (f"the unit stays at {where.path}. Without a systemd user session (a container, WSL "
                "without systemd, an SSH login without `loginctl enable-linger`) run `tinyarms daemon "
                "start` instead (the git hook also starts the daemon when needed); "
                "`tinyarms service uninstall` removes the unit")
    return (f"the agent stays at {where.path}; check it with `plutil -lint {where.path}`. "
            f"launchctl needs a logged-in GUI session (domain gui/{uid}); "
            "`tinyarms service uninstall` removes the agent")


def install(where: Target, dry_run: bool) -> None:
    home = state_dir(create=not dry_run).resolve()
    content = render(where, home)
    uid = os.getuid()
    manager = Manager(where, dry_run, _install_hint(where, uid))

    if dry_run:
        _say(f"would write {where.path}:")
        sys.stderr.flush()
        sys.stdout.write(content.decode("utf-8"))
        sys.stdout.flush()
        _stop_running_daemon(home, dry_run=True)
        _say("and run:")
    else:
        if where.platform == "macos":
            # launchd opens the log file itself and does not create its folder
            (home / "logs").mkdir(mode=0o700, parents=True, exist_ok=True)
        changed = write_atomic(where.path, content)
        _say(f"wrote {where.path}" if changed else f"{where.path} is up to date")
        manager.require()  # before stopping a daemon nothing would replace
        _stop_running_daemon(home, dry_run=False)

    if where.platform == "linux":
        manager.run("--user", "daemon-reload")
        manager.run("--user", "enable", "--now", UNIT)
        status = (f"systemctl --user status {UNIT}; output: journalctl --user -u {UNIT}; "
                  f"log: {home / 'logs' / 'daemon.log'}")
    else:
        service = f"gui/{uid}/{LABEL}"
        # bootstrap refuses a label that is loaded already: unload it first to load the new file.
        if manager.probe("print", service, note="loaded already?"):
            manager.run("bootout", service, note="only if it is: unload the old one")
        manager.run("bootstrap", f"gui/{uid}", str(where.path))
        status = f"launchctl print {service}; output: {home / 'logs' / 'daemon.out'}"
    if not dry_run:
        _say(f"the daemon runs as a {'systemd user service' if where.platform == 'linux' else 'launchd agent'}, "
             f"started at login (status: {status})")
    _left_out(service_environment(home))


def uninstall(where: Target, dry_run: bool) -> None:
    if not where.path.exists():
        _say(f"no tinyarms service is installed ({where.path} does not exist)")
        return
    hint = f"{where.path} is left in place; fix the error and run `tinyarms service uninstall` again"
    manager = Manager(where, dry_run, hint)
    if dry_run:
        _say("would run:")
    else:
        manager.require()
    if where.platform == "linux":
        manager.run("--user", "disable", "--now", UNIT)
        _remove(where.path, dry_run)
        manager.hint = f"{where.path} is removed; run `systemctl --user daemon-reload` once the error is fixed"
        manager.run("--user", "daemon-reload")
    else:
        service = f"gui/{os.getuid()}/{LABEL}"
        if manager.probe("print", service, note="loaded?"):
            manager.run("bootout", service, note="only if it is")
        _remove(where.path, dry_run)


def _remove(path: Path, dry_run: bool) -> None:
    if dry_run:
        print(f"  (then remove {path})", file=sys.stderr)
        return
    path.unlink(missing_ok=True)
    _say(f"removed {path}")


def _platform(choice: str | None) -> str:
    if choice:
        return choice
    if sys.platform == "darwin":
        return "macos"
    if sys.platform.startswith("linux"):
        return "linux"
    raise ServiceError(f"no service manager is supported on {sys.platform} (only systemd and launchd)",
                       "run `tinyarms daemon start` instead; the git hook also starts the daemon when needed")


def run(args: argparse.Namespace) -> int:
    try:
        where = target(_platform(args.platform))
        (install if args.action == "install" else uninstall)(where, args.dry_run)
    except ServiceError as exc:
        print(f"tinyarms: error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"tinyarms: hint: {exc.hint}", file=sys.stderr)
        return 1
    return 0
