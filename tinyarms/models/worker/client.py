"""The parent's side of the model workers: start one per model file, ask it, notice when it dies.

- **Questions.** A worker answers one question at a time (``Worker.lock``); each has a deadline
  the worker keeps by itself, and one that overruns it is cancelled, then killed (``process``):
  the question is ``model-timeout``.
- **Crashes.** A worker that dies (any signal, any exit) or talks garbage costs the question in
  flight: ``model-crashed`` naming the signal or status, with the fix for it (``crashes``). The
  next question starts a new worker, after a back-off once crashes repeat; after ``BROKEN_AFTER``
  failures in a row the backend is *broken* until this process restarts or ``tinyarms doctor``
  passes (``doctor_passed()``), and ``auto`` stops choosing it.
- **Memory.** Before a start, free memory must cover the model (``memory_needed``), else
  ``model-no-memory`` with the numbers. A worker unused for ``keep_alive`` seconds is stopped, and
  its memory goes back to the system.

Everything here is blocking and thread-safe; ``EmbeddedBackend`` calls it from worker threads.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from tinyarms.models.base import BAD_ANSWER, CRASHED, NO_MEMORY, ModelUnavailable, timed_out
from tinyarms.models.worker import wire
from tinyarms.models.worker.crashes import Crash, crash_hint, death, doctor_passed
from tinyarms.models.worker.process import Spec, Worker
from tinyarms.units import MIB

BROKEN_AFTER = 3  # failures in a row that mark the backend broken
BACKOFF = (0.0, 2.0)  # seconds before the 1st, 2nd... restart after failures in a row
FILE_FACTOR = 1.3  # the weights, plus what llama.cpp allocates around them
CONTEXT_BASE = 64 << 20  # compute buffers that do not grow with the context
CONTEXT_PER_TOKEN = 48 << 10  # KV cache and scratch per context token (generous for 0.5B-1.5B models)
DEFAULT_KEEP_ALIVE = 300.0  # seconds, as models.keep_alive (5m) until the config says otherwise
TIMER_SLACK = 0.05  # the idle check runs just after a worker's keep_alive has passed, not just before


def memory_needed(file_size: int, n_ctx: int) -> int:
    return int(file_size * FILE_FACTOR) + CONTEXT_BASE + n_ctx * CONTEXT_PER_TOKEN


def mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


class Pool:
    """The workers of this process, one per model file, and the failures of the backend."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._workers: dict[Path, Worker] = {}
        self.failures = 0  # in a row; an answer resets it
        self.crashes: list[Crash] = []  # the latest few, newest last
        self.total_crashes = 0
        self.broken_at: float | None = None
        self._restart_at = 0.0
        self._timer: threading.Timer | None = None
        self.keep_alive = DEFAULT_KEEP_ALIVE
        self.loads: dict[Path, int] = {}  # models loaded by this process's workers, per file

    # -- lifecycle ---------------------------------------------------------------------------------

    def worker(self, spec: Spec) -> Worker:
        """The worker for ``spec``, started if needed (its model loads meanwhile: see ``ask``)."""
        with self._lock:
            worker = self._workers.get(spec.path)
            if worker is not None and worker.spec != spec:  # the config changed: n_ctx, threads
                del self._workers[spec.path]
                _retire(worker)
                worker = None
            elif worker is not None and not worker.alive() and worker.ready is not None and not worker.lock.locked():
                # it died between questions (the OOM killer takes idle processes too): a failure
                # nobody was asking about; a death while busy or loading is its asker's to report
                code = worker.returncode(wait=0.1)
                del self._workers[spec.path]
                if code != 0:
                    self._failed(worker, code)
                worker = None
            if worker is None:
                self._check_can_start(spec)
                worker = self._workers[spec.path] = Worker(spec)
            return worker

    def _check_can_start(self, spec: Spec) -> None:
        broken = self.broken()
        if broken is not None:
            raise broken
        wait = self._restart_at - time.monotonic()
        if wait > 0:
            last = self.crashes[-1]
            raise ModelUnavailable(CRASHED, f"the model worker died ({last.cause}); restarting in {wait:.1f} s",
                                   last.hint)
        size = spec.path.stat().st_size
        need = memory_needed(size, spec.n_ctx)
        import psutil

        available = psutil.virtual_memory().available
        if available < need:
            raise ModelUnavailable(
                NO_MEMORY,
                f"not enough free memory to load {spec.name}: {mib(available)} available, about {mib(need)} needed",
                "close other programs, lower models.embedded.n_ctx, or use a smaller model",
            )

    def broken(self) -> ModelUnavailable | None:
        """Why the backend must not be used now, or None. A doctor pass since then mends it."""
        if self.broken_at is None:
            return None
        if doctor_passed() > self.broken_at:
            self.mend()
            return None
        last = self.crashes[-1]
        return ModelUnavailable(
            CRASHED, f"the embedded backend is broken: its model worker failed {self.failures} times in a row "
            f"(last: {last.cause})", last.hint)

    def mend(self) -> None:
        with self._lock:
            self.failures, self.broken_at, self._restart_at = 0, None, 0.0

    def reset(self) -> None:
        """Forget every failure (tests); running workers stay."""
        with self._lock:
            self.mend()
            self.crashes, self.total_crashes = [], 0

    def stop_idle(self, now: float | None = None) -> list[str]:
        """Stop every worker unused for ``keep_alive`` seconds; returns their models."""
        now = time.monotonic() if now is None else now
        stopped = []
        for path, worker in self.items():
            if now - worker.last_used < self.keep_alive or not worker.lock.acquire(blocking=False):
                continue
            try:
                if now - worker.last_used >= self.keep_alive:
                    worker.stop()
                    with self._lock:
                        if self._workers.get(path) is worker:
                            del self._workers[path]
                    stopped.append(worker.spec.name)
            finally:
                worker.lock.release()
        return stopped

    def stop_all(self) -> None:
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        for worker in workers:
            worker.stop()

    def items(self) -> list[tuple[Path, Worker]]:
        with self._lock:
            return list(self._workers.items())

    def arm(self) -> None:
        """Make sure idle workers are looked at within ``keep_alive`` seconds."""
        with self._lock:
            if self._timer is not None and self._timer.is_alive():
                return
            self._timer = threading.Timer(self.keep_alive + TIMER_SLACK, self._tick)
            self._timer.daemon = True
            self._timer.start()

    def _tick(self) -> None:
        with self._lock:
            self._timer = None
        self.stop_idle()
        if self.items():
            self.arm()

    # -- asking --------------------------------------------------------------------------------------

    def ask(self, spec: Spec, op: str, deadline: float, abandoned: threading.Event | None = None,
            **fields: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Ask the worker for ``spec``: the reply's result, and the worker's ready message when the
        model was loaded for this question (else None). ``op`` "load" only waits for the model.
        Raises ``ModelUnavailable``."""
        while True:
            worker = self.worker(spec)
            if not worker.lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise timed_out(spec.name, "waiting for the model, busy with another question")
            with self._lock:
                current = self._workers.get(spec.path) is worker
            if current and (worker.alive() or worker.ready is None):
                break  # a death while loading is read below, from its ready message that never came
            # While we waited, the question before ours had it killed (or it died idle): take the
            # pool's current worker, which worker() starts or records as it must.
            worker.lock.release()
        try:
            loaded = worker.ready is None
            try:
                ready = worker.wait_ready(deadline)
            except TimeoutError:
                raise timed_out(spec.name, "loading the model") from None
            if loaded:
                self.loads[spec.path] = self.loads.get(spec.path, 0) + 1
            if op == "load":
                return ready, ready if loaded else None
            fields["timeout"] = max(0.0, deadline - time.monotonic())
            reply = worker.request(op, deadline, abandoned, **fields)
            worker.questions += op in ("complete", "score")
        except TimeoutError:  # the worker did not answer by deadline + grace, nor stop when told: killed
            # Not counted towards "broken": a slow machine is no broken build.
            self._failed(worker, None, "did not stop at its deadline and was killed", counts=False)
            raise timed_out(spec.name, "the model worker did not stop at the deadline and was killed") from None
        except EOFError:
            code = worker.returncode()
            raise self._failed(worker, code) from None
        except wire.Garbled as exc:
            worker.kill()
            raise self._failed(worker, None, f"sent a malformed message ({exc})", reason=BAD_ANSWER) from None
        except ModelUnavailable:  # it could not load the model, and said why: not a crash
            with self._lock:
                if self._workers.get(spec.path) is worker:
                    del self._workers[spec.path]
            raise
        finally:
            worker.last_used = time.monotonic()
            worker.lock.release()
            self.arm()
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise ModelUnavailable(str(error.get("reason") or BAD_ANSWER), str(error.get("message")), error.get("hint"))
        with self._lock:
            self.failures, self._restart_at = 0, 0.0
        result = reply.get("result")
        if not isinstance(result, dict):
            raise ModelUnavailable(BAD_ANSWER, f"the model worker's reply has no result: {json.dumps(reply)[:120]}")
        return result, ready if loaded else None

    def _failed(self, worker: Worker, code: int | None, cause: str | None = None,
                reason: str = CRASHED, counts: bool = True) -> ModelUnavailable:
        """Record a failure of ``worker`` (dead, killed or garbled) and the error for its question."""
        if cause is None:
            cause = f"died of {death(code)}" if code is not None and code < 0 else f"exited with {death(code or 0)}"
        system_info = str((worker.ready or {}).get("system_info", ""))
        hint = crash_hint(code if code is not None else 0, worker.spec, system_info)
        crash = Crash(worker.spec.name, worker.pid, cause, hint)
        with self._lock:
            if self._workers.get(worker.spec.path) is worker:
                del self._workers[worker.spec.path]
            self.total_crashes += 1
            self.crashes = [*self.crashes[-9:], crash]
            if counts:
                self.failures += 1
                if self.failures >= BROKEN_AFTER:
                    self.broken_at = time.time()
                self._restart_at = time.monotonic() + BACKOFF[min(self.failures, len(BACKOFF)) - 1]
        worker.close_pipes()
        state = " while answering" if worker.ready is not None else " while loading the model"
        return ModelUnavailable(
            reason, f"the model worker for {worker.spec.name} (pid {worker.pid}) {cause}{state}", hint)

    def status(self) -> dict[str, Any]:
        broken = self.broken()
        return {
            "workers": [w.status() for _, w in self.items()],
            "crashes": self.total_crashes,
            "last_crash": self.crashes[-1].as_dict() if self.crashes else None,
            "failures_in_a_row": self.failures,
            "broken": broken.message if broken else None,
            "keep_alive": self.keep_alive,
        }


def _retire(worker: Worker) -> None:
    """Stop ``worker`` once its question (if any) is answered."""
    def stop() -> None:
        with worker.lock:
            worker.stop()

    threading.Thread(target=stop, name="retire-worker", daemon=True).start()


pool = Pool()
