"""The daemon's process: ``tinyarms daemon run`` from the lock to the exit.

One daemon per state directory: the process takes the pid file's lock first (``control``), and
a second start exits 0 at once. It writes the pid file, sets up the daemon's log, serves until
stopped, and on the way out removes only the socket and pid file that are still its own, then
exits without waiting for lint threads stuck on a hung model.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

from tinyarms import __version__, protocol
from tinyarms.daemon import control
from tinyarms.daemon.server import Daemon, inode
from tinyarms.errors import ConfigError


def _service_manager() -> str | None:
    """Which service manager runs us, as the service file says (``TINYARMS_SERVICE``), or None."""
    manager = os.environ.get("TINYARMS_SERVICE")
    return manager if manager in ("systemd", "launchd") else None


def exit_now(code: int) -> int:
    """Exit with ``code`` without waiting for lint threads still stuck after the shutdown grace.

    A thread waiting on a hung model (up to its whole budget, or forever) cannot be cancelled
    from here, and the interpreter's exit joins pool threads: the daemon would linger after
    SIGTERM with its socket already gone. By now the cache is closed and the socket and pid
    file removed, so only the logs are left to flush. Returns when no such thread is left."""
    if not any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return code
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run(home: Path) -> int:
    """``tinyarms daemon run``: serve in the foreground until stopped. Exit 0 also when another
    daemon already holds the lock (two racing starts leave one daemon, and neither is an error)."""
    lock = control.acquire_lock(home)
    if lock is None:
        info = control.read_pid(home) or {}
        print(f"tinyarms daemon already running (pid {info.get('pid', '?')})", file=sys.stderr)
        return 0
    socket_file = protocol.socket_path(home)
    pid_inode = os.fstat(lock.fileno()).st_ino
    daemon = None
    try:
        socket_file.unlink(missing_ok=True)  # we hold the lock: any socket here is a dead daemon's
        control.write_pid(lock, {
            "pid": os.getpid(), "version": __version__, "socket": str(socket_file), "started": time.time(),
            "service": _service_manager(),
        })
        from tinyarms.config import load_config
        from tinyarms.log import configure_daemon

        configure_daemon(home / "logs" / "daemon.log")
        try:
            config = load_config(None).config
        except ConfigError as exc:
            for problem in exc.problems:
                print(f"tinyarms: error: {problem}", file=sys.stderr)
            return 2
        daemon = Daemon(home, config.daemon.idle_timeout, config.daemon.request_timeout, config.schedule)
        asyncio.run(daemon.serve())
        return 0
    finally:
        # Only what is still ours: after the state directory was deleted, a new daemon may own
        # these paths already, and taking its socket away would leave it unreachable.
        for path, ours in ((socket_file, daemon.bound if daemon else None), (control.pid_path(home), pid_inode)):
            if ours is not None and inode(path) == ours:
                path.unlink(missing_ok=True)
        lock.close()
