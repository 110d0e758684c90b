"""The language server's side of the daemon: lint a buffer, subscribe to events, survive restarts.

Stdlib, ``protocol`` and ``daemon.control`` only, as the CLI's client is. The daemon is started
the way the hook and ``tinyarms lint`` start it (``control.start``), and started again when it
died under us: a request that finds no daemon, or loses it half-way, starts one and is sent once
more. The subscription (``op: subscribe``) lives on a thread of its own; when the daemon goes,
so does the subscription, and the next request makes both anew.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinyarms import __version__, protocol
from tinyarms.client import client_env
from tinyarms.daemon import control

REQUEST_TIMEOUT = 60.0  # seconds for one lint: Level 0 takes milliseconds; a cold daemon loads settings first
CONNECT_TIMEOUT = 0.5
SUBSCRIBE_TIMEOUT = 5.0  # seconds to connect and be acknowledged as a subscriber


class DaemonUnavailable(Exception):
    """No daemon could be reached or started; the message says why and where its log is."""


class Link:
    def __init__(self, home: Path, on_event: Callable[[dict[str, Any]], None]) -> None:
        self.home = home
        self.on_event = on_event
        self.env = client_env()
        self.restarts = 0  # daemons started by this link (the first one included)
        self._lock = threading.Lock()
        self._subscription: socket.socket | None = None
        self._closed = False

    # -- requests -------------------------------------------------------------------------------

    def lint_buffer(self, root: Path, rel: str, raw: bytes | None, size: int, budget: float) -> dict[str, Any]:
        """Lint ``raw`` as the file ``rel`` of the project at ``root``. ``raw`` None: too large to
        send, reported by the daemon as skipped (too-large)."""
        sent: dict[str, Any] = {"path": rel}
        if raw is None:
            sent["size"] = size
        else:
            sent["content_b64"] = base64.b64encode(raw).decode("ascii")
        return self.request({
            "op": "lint", "client_version": __version__, "cwd": str(root), "root": str(root), "files": [sent],
            "budget": budget, "env": self.env,
        })

    def lint_paths(self, root: Path, paths: list[str], budget: float) -> dict[str, Any]:
        """Lint files on disk (the workspace), from ``root``."""
        return self.request({
            "op": "lint", "client_version": __version__, "cwd": str(root), "paths": paths, "budget": budget,
            "env": self.env,
        })

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """One request, answered; the daemon is started (again) when none answers, and a request
        whose daemon died half-way is sent once more to the new one."""
        for attempt in (1, 2):
            self._ensure()
            try:
                with protocol.Connection(protocol.socket_path(self.home), CONNECT_TIMEOUT) as conn:
                    reply = conn.request(message, timeout=REQUEST_TIMEOUT)
            except (OSError, protocol.ProtocolError) as exc:
                if attempt == 2:
                    raise DaemonUnavailable(f"the daemon did not answer: {exc}") from None
                self._drop_subscription()  # its daemon is gone, whether or not its thread saw it yet
                continue
            if reply.get("version") not in (None, __version__) and attempt == 1:
                self._drop_subscription()
                self._start()  # a daemon from before an upgrade: control.start replaces it
                continue
            return reply
        raise AssertionError("unreachable")

    # -- the daemon and the subscription --------------------------------------------------------

    def _ensure(self) -> None:
        with self._lock:
            if self._closed:
                raise DaemonUnavailable("the language server is shutting down")
            if self._subscription is not None:
                return  # a live subscription means a live daemon
            if control.ping(self.home, CONNECT_TIMEOUT) is None:
                self._start()
            self._subscribe()

    def _start(self) -> None:
        try:
            control.start(self.home)
        except (OSError, RuntimeError) as exc:
            raise DaemonUnavailable(f"cannot start the tinyarms daemon: {exc}") from None
        self.restarts += 1

    def _subscribe(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(SUBSCRIBE_TIMEOUT)
            sock.connect(str(protocol.socket_path(self.home)))
            sock.sendall(protocol.encode({"v": protocol.PROTOCOL, "op": "subscribe", "client_version": __version__}))
            reader = sock.makefile("rb")
            first = protocol.decode(reader.readline(protocol.MAX_MESSAGE + 1) or b"null")
        except (OSError, protocol.ProtocolError):
            sock.close()
            return  # linting still works; answers then show at the next edit instead of at once
        if not first.get("ok"):
            sock.close()
            return
        sock.settimeout(None)
        self._subscription = sock
        threading.Thread(target=self._events, args=(sock, reader), name="tinyarms-events", daemon=True).start()

    def _events(self, sock: socket.socket, reader: Any) -> None:
        try:
            for line in reader:
                try:
                    event = protocol.decode(line)
                except protocol.ProtocolError:
                    continue
                if "event" in event:
                    self.on_event(event)
        except (OSError, ValueError):
            pass  # the daemon went away: the next request starts one and subscribes again
        finally:
            with self._lock:
                if self._subscription is sock:
                    self._subscription = None
            with contextlib.suppress(OSError):
                sock.close()

    def _drop_subscription(self) -> None:
        with self._lock:
            sock, self._subscription = self._subscription, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._drop_subscription()

