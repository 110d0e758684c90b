"""In-test servers that can neither block in ``accept()`` nor make ``stop()`` wait for ever.

A blocking listening socket can hang a whole test run: ``select()`` says a connection is waiting,
the client resets it (the fault tests do that on purpose) before ``accept()`` runs, and
``accept()`` then waits for a connection that never comes while ``shutdown()`` waits for it.
Every server a test starts goes through here instead:

- ``LoopbackHTTPServer``: a ``ThreadingHTTPServer`` on 127.0.0.1 whose listening socket is
  non-blocking (``accept()`` on a vanished connection raises, and the serve loop goes on);
- ``serve(httpd, name)`` / ``stop(httpd, thread)``: run it in a thread and stop it with a bounded
  wait (``stop`` fails loudly rather than hanging if the loop does not end);
- ``Listener``: a raw TCP or Unix listening socket whose ``accept`` gives up after a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STOP_TIMEOUT = 5.0  # seconds stop() waits for a serve loop that polls every 50 ms
POLL = 0.05

_HANG_UPS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


class LoopbackHTTPServer(ThreadingHTTPServer):
    """127.0.0.1 only; handler threads never keep the process or ``server_close`` waiting."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), handler)

    def server_activate(self) -> None:
        super().server_activate()
        self.socket.setblocking(False)  # select() said readable, the client reset: accept() raises, no hang

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = self.socket.accept()
        conn.setblocking(True)  # handlers read and write as usual
        return conn, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up (a deadline cancelled its question) is no server error."""
        if not isinstance(sys.exc_info()[1], _HANG_UPS):
            super().handle_error(request, client_address)


def serve(httpd: ThreadingHTTPServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": POLL}, name=name, daemon=True)
    thread.start()
    return thread


def stop(httpd: ThreadingHTTPServer, thread: threading.Thread | None, timeout: float = STOP_TIMEOUT) -> None:
    """Ask the serve loop to end and wait at most ``timeout``; a loop that will not end is a test error.

    ``BaseServer.shutdown()`` waits without a limit; this sets the same flag and bounds the wait.
    """
    httpd._BaseServer__shutdown_request = True  # type: ignore[attr-defined]  # what shutdown() sets
    if thread is not None:
        thread.join(timeout)
    httpd.server_close()
    if thread is not None and thread.is_alive():
        raise RuntimeError(f"server thread {thread.name!r} did not stop within {timeout} s")


class Listener:
    """A listening socket (TCP on 127.0.0.1, or Unix at ``path``) whose ``accept`` never blocks for ever."""

    def __init__(self, path: Path | None = None, backlog: int = 8) -> None:
        if path is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(str(path))
        self.sock.listen(backlog)
        self.sock.settimeout(POLL)  # accept() wakes up this often; accepted sockets are blocking

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def accept(self, timeout: float, stopping: threading.Event | None = None) -> socket.socket | None:
        """A connection within ``timeout`` seconds, or None (also once ``stopping`` is set)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not (stopping is not None and stopping.is_set()):
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed under us, or the connection vanished before accept()
                if self.sock.fileno() < 0:
                    return None
                continue
            conn.settimeout(None)
            return conn
        return None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
