"""One model worker as its parent sees it: the process started for a model file, asked one
question at a time over the wire, told to cancel, killed or stopped.

A worker keeps each question's deadline itself. The parent waits ``GRACE`` past it, then sends
``cancel`` and waits ``KILL_GRACE`` more; a worker still silent then is killed. What that costs
the question, and the backend, is the pool's to say (``client``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyarms.models.base import BAD_ANSWER, ModelUnavailable
from tinyarms.models.worker import wire
from tinyarms.paths import state_dir

# A worker keeps its deadline itself (a check per generated token, and per graph node while it
# reads the prompt), so these only bound a worker that stopped responding. The asker does not
# wait for them (``EmbeddedBackend`` answers at the deadline); the next question to this worker does.
GRACE = 0.5  # seconds past a question's deadline before the parent stops waiting politely
KILL_GRACE = 1.0  # then, after a cancel, before a silent worker is killed
POLL = 0.05  # how often a waiting asker looks whether it was abandoned
COMMAND_ENV = "TINYARMS_MODEL_WORKER"  # a Python file to run as the worker instead (tests: fake workers)


@dataclass(frozen=True, slots=True)
class Spec:
    """What a worker is started with; a change (the config's n_ctx, say) means a new worker."""

    path: Path
    name: str
    n_ctx: int
    threads: int


def command(spec: Spec) -> list[str]:
    override = os.environ.get(COMMAND_ENV)
    head = [sys.executable, override] if override else [sys.executable, "-m", "tinyarms.models.worker"]
    return [*head, "--model", str(spec.path), "--name", spec.name, "--n-ctx", str(spec.n_ctx),
            "--threads", str(spec.threads)]


def log_path() -> Path:
    return state_dir() / "logs" / "model-worker.log"


class Worker:
    """One worker process and the model it holds."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.lock = threading.Lock()  # held while a question is asked (and while starting)
        self.ready: dict[str, Any] | None = None  # the worker's "ready" message, once it came
        self.questions = 0
        self.started = time.time()
        self.last_used = time.monotonic()
        self._ids = itertools.count(1)
        folder = log_path().parent
        folder.mkdir(parents=True, exist_ok=True)
        with open(log_path(), "ab") as log:
            self.proc = subprocess.Popen(
                command(spec), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                start_new_session=True,  # the terminal's Ctrl-C is for the parent, which then stops it
                close_fds=True,
            )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.reader = wire.LineReader(self.proc.stdout.fileno())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    # -- asking (callers hold self.lock) ---------------------------------------------------------

    def wait_ready(self, deadline: float) -> dict[str, Any]:
        """The ready message, reading it if it has not come yet (``TimeoutError`` at ``deadline``)."""
        if self.ready is None:
            message = self._read(deadline)
            if message.get("event") == "failed":
                error = message.get("error") or {}
                self.stop()
                raise ModelUnavailable(str(error.get("reason") or BAD_ANSWER), str(error.get("message")),
                                       error.get("hint"))
            if message.get("event") != "ready":
                raise wire.Garbled(f"expected the ready message, got {json.dumps(message)[:120]}")
            self.ready = message
        return self.ready

    def request(self, op: str, deadline: float, abandoned: threading.Event | None = None,
                **fields: Any) -> dict[str, Any]:
        """Send one request and read its reply by ``deadline``; raises ``TimeoutError`` (the worker
        did not answer: cancelled, then killed), ``EOFError`` (it died) or ``wire.Garbled``.
        ``abandoned`` set: the asker stopped waiting, so the worker is told to stop now."""
        rid = next(self._ids)
        self._send({"id": rid, "op": op, **fields})
        end = deadline + GRACE
        while True:
            try:
                return self._reply(rid, min(end, time.monotonic() + POLL) if abandoned else end)
            except TimeoutError:
                if time.monotonic() < end and not (abandoned is not None and abandoned.is_set()):
                    continue
            break
        with contextlib.suppress(EOFError):
            self._send({"op": "cancel", "id": rid})
        try:
            return self._reply(rid, time.monotonic() + KILL_GRACE)
        except TimeoutError:
            self.kill()
            raise

    def _reply(self, rid: int, deadline: float) -> dict[str, Any]:
        while True:
            message = self._read(deadline)
            if message.get("id") == rid:
                return message
            if message.get("id") is None or not isinstance(message.get("id"), int) or message["id"] > rid:
                raise wire.Garbled(f"a reply to no question: {json.dumps(message)[:120]}")
            # a late reply to an earlier, abandoned question: skip it

    def _read(self, deadline: float) -> dict[str, Any]:
        return wire.decode(self.reader.read(deadline))

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(wire.encode(message))
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise EOFError from None

    # -- ending ------------------------------------------------------------------------------------

    def returncode(self, wait: float = 2.0) -> int:
        """The exit status once the process is gone (killing it if it lingers after closing its output)."""
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait()
        self.close_pipes()

    def stop(self, wait: float = 2.0) -> None:
        """Ask it to exit (stdin closes), kill it if it does not within ``wait`` seconds."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                self.kill()
        self.close_pipes()

    def close_pipes(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError, ValueError):
                if pipe is not None:
                    pipe.close()

    def status(self) -> dict[str, Any]:
        rss = None
        with contextlib.suppress(Exception):
            import psutil

            rss = psutil.Process(self.pid).memory_info().rss
        return {"pid": self.pid, "model": self.spec.name, "rss": rss, "uptime": time.time() - self.started,
                "questions": self.questions, "ready": self.ready is not None,
                "load_seconds": (self.ready or {}).get("load_seconds")}
