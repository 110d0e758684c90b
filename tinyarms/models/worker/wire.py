"""The worker's wire: one JSON object per line, on the worker's stdin and on a copy of its stdout.

Parent to worker: ``{"id": 1, "op": "complete", ...}``, ``{"id": 2, "op": "ping"}``, and
``{"op": "cancel", "id": 1}`` (stop working on question 1 now). Worker to parent: first
``{"event": "ready", ...}`` once the model is loaded, or ``{"event": "failed", "error": {...}}``;
then one reply per request, ``{"id": 1, "ok": true, "result": {...}}`` or
``{"id": 1, "ok": false, "error": {"reason": ..., "message": ..., "hint": ...}}``.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any

from tinyarms.models.base import MAX_ANSWER_BYTES

MAX_LINE = MAX_ANSWER_BYTES + (64 << 10)  # an answer plus its timings and usage


class Garbled(Exception):
    """Bytes that are not a message of this wire: the other side is not speaking it (any more)."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Garbled(f"not JSON ({exc}): {line[:80]!r}") from None
    if not isinstance(message, dict):
        raise Garbled(f"not a JSON object: {line[:80]!r}")
    return message


class LineReader:
    """Whole lines from a pipe, each within a deadline; what was read past a line is kept."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def read(self, deadline: float) -> bytes:
        """The next line (without its newline). ``TimeoutError`` at ``deadline`` (time.monotonic);
        ``EOFError`` when the writer is gone (a line it left unfinished is dropped with it);
        ``Garbled`` for a line over ``MAX_LINE``."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line
            if len(self.buffer) > MAX_LINE:
                raise Garbled(f"a message of over {MAX_LINE} bytes")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise EOFError
            self.buffer += chunk
