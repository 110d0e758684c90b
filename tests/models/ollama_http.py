"""The HTTP side of the fake Ollama (``ollama_server``): a request handler that reads, records and
answers the way Go's ``net/http`` does, which ``ollama_routes`` fills with Ollama's endpoints.

Keep-alive (HTTP/1.1), as Go serves it; a small body gets a ``Content-Length`` and a larger one is
sent chunked; every request waits out the fake's ``busy`` time first; a client that goes away
mid-answer closes the connection, nothing more.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.models.ollama_server import FakeOllama, Request

# Go's net/http sets Content-Length only when the whole body fits its pre-chunking buffer.
_CHUNKING_THRESHOLD = 2048


class OllamaHTTPHandler(BaseHTTPRequestHandler):
    """The plumbing; a subclass answers ``_get`` and ``_post``."""

    fake: FakeOllama
    protocol_version = "HTTP/1.1"  # keep-alive, as Go serves it; httpx pools connections
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's delayed
    # ACK holds the body back ~40 ms per answer, which Go's server (one write) never does.
    disable_nagle_algorithm = True
    server_version = "fake-ollama"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, True)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        self.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -------------------------------------------------------------------------

    def _read(self) -> tuple[Any, bytes, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, raw, True
        try:
            return json.loads(raw), raw, True
        except ValueError:
            return None, raw, False

    def _record(self, body: Any, raw: bytes) -> Request:
        return self.fake._record(self.command, self.path.split("?", 1)[0], body, raw, dict(self.headers.items()))

    def _send(self, status: int, payload: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Date", self.date_time_string())
        if len(payload) <= _CHUNKING_THRESHOLD:
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        else:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(payload), 64 << 10):
                if self.fake._stopping.is_set():
                    self.close_connection = True
                    return
                self._chunk(payload[i:i + (64 << 10)])
            self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode())

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _not_found_page(self) -> None:
        self._send(404, b"404 page not found", "text/plain")

    def _guard(self, fn: Callable[[], None]) -> None:
        if self.fake._busy and self.fake._stopping.wait(self.fake._busy):
            self.close_connection = True
            return
        try:
            fn()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client went away, e.g. it refused a huge answer

    # -- the methods ----------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._record(None, b"")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", "17")
        self.end_headers()

    def do_GET(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def do_DELETE(self) -> None:
        self._record(*self._read()[:2])
        self._not_found_page()

    def _get(self) -> None:
        raise NotImplementedError

    def _post(self) -> None:
        raise NotImplementedError
