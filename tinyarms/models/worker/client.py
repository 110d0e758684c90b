"""The parent's side of the model workers: start one per model file, ask it, notice when it dies.

- **Questions.** A worker answers one question at a time (``Worker.lock``); each has a deadline
  the worker keeps by itself. The parent waits ``GRACE`` past it, then sends ``cancel`` and waits
  ``KILL_GRACE`` more; a worker still silent then is killed and the question is ``model-timeout``.
- **Crashes.** A worker that dies (any signal, any exit) or talks garbage costs the question in
  flight: ``model-crashed`` naming the signal or status, with the fix for it. The next question
  starts a new worker, after a back-off once crashes repeat; after ``BROKEN_AFTER`` failures in a
  row the backend is *broken* until this process restarts or ``tinyarms doctor`` passes
  (``doctor_passed()``), and ``auto`` stops choosing it.
- **Memory.** Before a start, free memory must cover the model (``memory_needed``), else
  ``model-no-memory`` with the numbers. A worker unused for ``keep_alive`` seconds is stopped, and
  its memory goes back to the system.

Everything here is blocking and thread-safe; ``EmbeddedBackend`` calls it from worker threads.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyarms.models.base import BAD_ANSWER, CRASHED, NO_MEMORY, ModelUnavailable, timed_out
from tinyarms.models.worker import wire
from tinyarms.paths import state_dir
from tinyarms.units import MIB

# A worker keeps its deadline itself (a check per generated token, and per graph node while it
# reads the prompt), so these only bound a worker that stopped responding. The asker does not
# wait for them (``EmbeddedBackend`` answers at the deadline); the next question to this worker does.
GRACE = 0.5  # seconds past a question's deadline before the parent stops waiting politely
KILL_GRACE = 1.0  # then, after a cancel, before a silent worker is killed
POLL = 0.05  # how often a waiting asker looks whether it was abandoned
BROKEN_AFTER = 3  # failures in a row that mark the backend broken
BACKOFF = (0.0, 2.0)  # seconds before the 1st, 2nd... restart after failures in a row
FILE_FACTOR = 1.3  # the weights, plus what llama.cpp allocates around them
CONTEXT_BASE = 64 << 20  # compute buffers that do not grow with the context
CONTEXT_PER_TOKEN = 48 << 10  # KV cache and scratch per context token (generous for 0.5B-1.5B models)
COMMAND_ENV = "TINYARMS_MODEL_WORKER"  # a Python file to run as the worker instead (tests: fake workers)
DOCTOR_MARK = "doctor-passed"  # in the state directory: touched by a passing `tinyarms doctor`
DEFAULT_KEEP_ALIVE = 300.0  # seconds, as models.keep_alive (5m) until the config says otherwise
TIMER_SLACK = 0.05  # the idle check runs just after a worker's keep_alive has passed, not just before


def memory_needed(file_size: int, n_ctx: int) -> int:
    return int(file_size * FILE_FACTOR) + CONTEXT_BASE + n_ctx * CONTEXT_PER_TOKEN


def mib(n: int) -> str:
    return f"{n / MIB:,.0f} MiB"


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


def death(code: int) -> str:
    """'SIGILL (illegal instruction)' or 'status 3', for a return code of ``Popen``."""
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"signal {-code}"
        shown = f"{sig.name} ({signal.strsignal(sig) or sig.name})"
        return shown.replace("(Illegal instruction)", "(illegal instruction)")
    return f"status {code}"


def crash_hint(code: int, spec: Spec, system_info: str = "") -> str:
    """What to do about a worker that ended with ``code``; ``system_info`` is its llama.cpp build's."""
    from tinyarms.models import buildflags

    rebuild = f"{buildflags.reinstall_command()}, then `tinyarms doctor`"
    if code == -signal.SIGILL:
        return ("this llama.cpp build uses CPU instructions this machine does not run; "
                f"reinstall it for this CPU: {rebuild}")
    if "AMX" in system_info and code in (-signal.SIGSEGV, -signal.SIGBUS):
        # seen here: a -march=native build's AMX kernels die on VMs that advertise AMX
        return ("this llama.cpp build uses AMX (it was built with -march=native), which crashes on many VMs; "
                f"reinstall it without: {rebuild}")
    if code == -signal.SIGKILL:
        return ("killed from outside, most likely by the kernel's OOM killer (`journalctl -k | grep -i oom`): "
                "free memory, lower models.embedded.n_ctx, or use a smaller model (`tinyarms models recommend`)")
    if code in (-signal.SIGSEGV, -signal.SIGBUS, -signal.SIGABRT, -signal.SIGFPE):
        fetch = f"`tinyarms models fetch {spec.name}` checks the file" if ":" in spec.name else "check the GGUF file"
        return f"llama.cpp crashed: {fetch}; `tinyarms doctor` tells whether the build works"
    return f"see {log_path()}; `tinyarms doctor` tells whether the embedded backend works"


def log_path() -> Path:
    return state_dir() / "logs" / "model-worker.log"


def doctor_passed() -> float:
    """When ``tinyarms doctor`` last passed on this machine (epoch seconds), or 0."""
    try:
        return (state_dir(create=False) / DOCTOR_MARK).stat().st_mtime
    except OSError:
        return 0.0


@dataclass
class Crash:
    """One failure of a worker: what it died of, and when."""

    model: str
    pid: int
    cause: str  # "SIGILL (illegal instruction)", "status 3", "a malformed message", "no answer ..."
    hint: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "pid": self.pid, "cause": self.cause, "hint": self.hint, "at": self.at}


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
        self._close_pipes()

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
        self._close_pipes()

    def _close_pipes(self) -> None:
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
        worker._close_pipes()
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
