"""The wire between clients and the daemon. This module owns the framing; stdlib only.

One request per line, one reply per line: UTF-8 JSON objects terminated by ``\\n``, at most
``MAX_MESSAGE`` bytes. Every message carries ``"v": PROTOCOL``. A connection may carry several
requests in turn.

    request  {"v": 1, "op": "ping" | "lint" | "status" | "reload" | "shutdown" | "subscribe" | "scan"
                      | "scan-status", ...}
    reply    {"v": 1, "ok": true, "version": "<tinyarms>", "result": {...}}
             {"v": 1, "ok": false, "version": "<tinyarms>", "error": {"code": "...", "message": "..."}}
    event    {"v": 1, "event": "answered", "paths": ["src/app.py", ...]}   (after "subscribe" only)

A ``subscribe`` request turns its connection into a one-way stream: after its reply the daemon
sends event lines until the client hangs up (the language server re-lints open buffers when the
background answered model questions about them, instead of polling).

The git hook (``hooks/pre-commit``) speaks this wire with its own dozen lines, because it must
not import tinyarms; ``tests/daemon`` run the real hook against the real daemon to keep the two
in step. Request fields are validated by ``tinyarms.daemon.messages``.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

PROTOCOL = 1
MAX_MESSAGE = 32 << 20
SOCKET_NAME = "daemon.sock"
PID_NAME = "daemon.pid"

# Error codes a reply may carry.
BAD_REQUEST = "bad-request"
TOO_LARGE = "too-large"
TIMEOUT = "timeout"
FORBIDDEN = "forbidden"
CONFIG_ERROR = "config-error"
UNKNOWN_OP = "unknown-op"
INTERNAL = "internal"
SHUTTING_DOWN = "shutting-down"
BUSY = "busy"  # e.g. another scan of the same repository is running


class ProtocolError(Exception):
    def __init__(self, code: str, message: str):
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


def encode(message: dict[str, Any]) -> bytes:
    text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
    try:
        data = text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:
        # A lone surrogate (an undecodable file name, a "\ud800" a client sent) has no UTF-8 form;
        # as a \uXXXX escape it crosses the wire and decodes back to the same string.
        data = json.dumps(message, separators=(",", ":")).encode("ascii") + b"\n"
    if len(data) > MAX_MESSAGE:
        raise ProtocolError(TOO_LARGE, f"message of {len(data)} bytes is over the {MAX_MESSAGE}-byte limit")
    return data


def decode(line: bytes) -> dict[str, Any]:
    """Parse one framed message; anything but a JSON object is a ``bad-request``."""
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(BAD_REQUEST, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "JSON nested too deeply") from None
    if not isinstance(message, dict):
        raise ProtocolError(BAD_REQUEST, "a message must be a JSON object")
    return message


def reply_ok(version: str, result: Any) -> dict[str, Any]:
    return {"v": PROTOCOL, "ok": True, "version": version, "result": result}


def reply_error(version: str, code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"v": PROTOCOL, "ok": False, "version": version, "error": {"code": code, "message": message, **extra}}


def socket_path(home: Path) -> Path:
    return home / SOCKET_NAME


class Connection:
    """A blocking client connection: ``request()`` sends one message and reads one reply."""

    def __init__(self, path: Path, timeout: float):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except BaseException:
            self.sock.close()
            raise
        self._buffer = b""

    def request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if timeout is not None:
            self.sock.settimeout(timeout)
        self.sock.sendall(encode({"v": PROTOCOL, **message}))
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the daemon closed the connection without a reply")
            self._buffer += chunk
            if len(self._buffer) > MAX_MESSAGE:
                raise ProtocolError(TOO_LARGE, "reply over the size limit")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return decode(line)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
