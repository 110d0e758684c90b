"""Starting and stopping the daemon, and knowing whether one runs. Stdlib only.

Exactly one daemon per state directory: it holds an exclusive ``flock`` on ``daemon.pid`` for
its whole life. That lock, not the pid in the file, is the truth: a pid file or socket left by
a daemon killed with SIGKILL (or a reboot) has no lock holder and is cleaned up by whoever
looks next.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from tinyarms import protocol

# The service's names under launchd and systemd (`tinyarms service install` writes them).
LABEL = "com.tinyarms.daemon"
UNIT = "tinyarms.service"

START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
_POLL = 0.02
_LOCK_POLL = 0.01  # seconds between tries for the pid file's lock


def pid_path(home: Path) -> Path:
    return home / protocol.PID_NAME


def acquire_lock(home: Path, tries: int = 5) -> IO[str] | None:
    """The daemon's lock, held open for the daemon's life; None if another process holds it.

    A few tries, because ``is_locked`` elsewhere takes the lock shared for an instant."""
    path = pid_path(home)
    while True:
        fh = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            tries -= 1
            if tries <= 0:
                return None
            time.sleep(_LOCK_POLL)
            continue
        # The previous holder may have unlinked the file between our open and our lock;
        # then we locked an orphan inode and must try again on the new file.
        try:
            if os.fstat(fh.fileno()).st_ino == path.stat().st_ino:
                return fh
        except FileNotFoundError:
            pass
        fh.close()


def write_pid(fh: IO[str], info: dict[str, Any]) -> None:
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(info))
    fh.flush()


def read_pid(home: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(pid_path(home).read_text(encoding="utf-8") or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_locked(home: Path) -> bool:
    """Whether a live daemon holds the lock (without disturbing it)."""
    path = pid_path(home)
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def clean_stale(home: Path) -> bool:
    """Remove the socket and pid file of a dead daemon; True if there was something to remove."""
    if is_locked(home):
        return False
    removed = False
    for path in (protocol.socket_path(home), pid_path(home)):
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
    return removed


def ping(home: Path, timeout: float = 0.5) -> dict[str, Any] | None:
    try:
        with protocol.Connection(protocol.socket_path(home), timeout) as conn:
            reply = conn.request({"op": "ping"})
    except (OSError, protocol.ProtocolError):
        return None
    return reply if reply.get("ok") else None


def spawn(home: Path, extra_env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``tinyarms daemon run`` detached from this terminal and session."""
    logs = home / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(logs / "daemon.out", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tinyarms", "daemon", "run"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True,
            # A hand-started daemon is not the service's, whatever environment it is started from.
            env={**{k: v for k, v in os.environ.items() if k != "TINYARMS_SERVICE"}, "TINYARMS_HOME": str(home),
                 **(extra_env or {})},
        )


def start(home: Path, timeout: float = START_TIMEOUT) -> dict[str, Any]:
    """Return the running daemon's ping result, starting one if needed; raises on failure."""
    from tinyarms import __version__

    reply = ping(home)
    if reply is not None and reply.get("version") != __version__:
        # A daemon from before an upgrade. One systemd or launchd runs is restarted by its
        # manager, so the service keeps owning it; stopped by hand, it would stay stopped there.
        if restart_service(read_pid(home) or {}, wait=timeout):
            return _wait_replaced(home, (reply.get("result") or {}).get("pid"), timeout)
        stop(home)
        reply = None
    if reply is not None:
        return reply
    clean_stale(home)
    child = spawn(home)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = ping(home, timeout=0.5)
        if reply is not None:
            _wait_lost(home, child, reply, deadline)
            return reply
        code = child.poll()
        # Exit 0 means another start won the lock: wait for that daemon to answer.
        if code not in (None, 0):
            raise RuntimeError(f"the daemon exited with status {code}; see {home / 'logs' / 'daemon.out'}")
        time.sleep(_POLL)
    raise RuntimeError(f"the daemon did not answer within {timeout:.0f} s; see {home / 'logs' / 'daemon.out'}")


def _wait_lost(home: Path, child: subprocess.Popen[bytes], reply: dict[str, Any], deadline: float) -> None:
    """When another start's daemon answered, wait for ours to find the lock taken and exit.

    Left starting, it would take the lock as soon as the winner stops: a ``stop`` right after
    two racing starts would return with a daemon running."""
    winner = (reply.get("result") or {}).get("pid")
    while winner != child.pid and child.poll() is None and time.monotonic() < deadline:
        if (read_pid(home) or {}).get("pid") == child.pid:  # the winner died and ours took over
            return
        time.sleep(_POLL)


def stop(home: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Stop the daemon; returns once it is gone and its files are removed. False if none ran."""
    if not is_locked(home):
        clean_stale(home)
        return False
    pid = (read_pid(home) or {}).get("pid")  # the lock holder's: it writes the file right after locking
    try:
        with protocol.Connection(protocol.socket_path(home), 1.0) as conn:
            conn.request({"op": "shutdown"})
    except (OSError, protocol.ProtocolError):
        if isinstance(pid, int):
            _signal(pid, signal.SIGTERM)
    if not _wait_unlocked(home, timeout) and isinstance(pid, int):
        _signal(pid, signal.SIGKILL)
        _wait_unlocked(home, timeout)
    # The lock goes before the process does (interpreter exit joins the lint threads): "stopped"
    # means gone, so a stuck exit is killed rather than left behind.
    if isinstance(pid, int) and not _wait_exited(pid, timeout):
        _signal(pid, signal.SIGKILL)
        _wait_exited(pid, timeout)
    clean_stale(home)
    return True


def restart_in_background(home: Path) -> None:
    """Replace a stale daemon without making the caller wait for the new one. A daemon run by
    systemd or launchd is restarted by its manager, so the service keeps owning it."""
    if restart_service(read_pid(home) or {}):
        return
    stop(home)
    clean_stale(home)
    spawn(home)


def restart_service(info: dict[str, Any], wait: float | None = None) -> bool:
    """Ask the service manager named in the daemon's pid file to restart it; False when no
    manager runs it or its tool cannot be started. Without ``wait`` the caller does not wait
    for the manager; with it, up to ``wait`` seconds, and a manager that fails is False too."""
    manager = info.get("service")
    if manager == "systemd":
        command = ["systemctl", "--user", "restart", UNIT]
    elif manager == "launchd":
        command = ["launchctl", "kickstart", "-k", f"gui/{os.getuid()}/{LABEL}"]
    else:
        return False
    quiet: dict[str, Any] = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
                             "start_new_session": True, "close_fds": True}
    try:
        if wait is None:
            subprocess.Popen(command, **quiet)
            return True
        return subprocess.run(command, timeout=wait, check=False, **quiet).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _wait_replaced(home: Path, old: int | None, timeout: float) -> dict[str, Any]:
    """The ping of the daemon that replaced the one with pid ``old``, once it answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = ping(home, timeout=0.5)
        if reply is not None and (reply.get("result") or {}).get("pid") != old:
            return reply
        time.sleep(_POLL)
    manager = (read_pid(home) or {}).get("service") or "its service manager"
    raise RuntimeError(f"the daemon (pid {old}) was not replaced by {manager} within {timeout:.0f} s; "
                       f"see {home / 'logs' / 'daemon.out'}")


def _wait_unlocked(home: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_locked(home):
            return True
        time.sleep(_POLL)
    return False


def _wait_exited(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child (spawned by this process)
                return True
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        if _is_zombie(pid):  # exited; its parent has yet to reap it
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # Linux; elsewhere a zombie waits out the timeout
            return fh.read().rpartition(b")")[2].split()[:1] == [b"Z"]
    except OSError:
        return False


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
