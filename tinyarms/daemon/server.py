"""The daemon: an asyncio Unix-socket server that owns config, skills, the cache and the models.

Lint work runs on a thread pool, off the event loop, so twenty hooks at once are served while
the loop keeps accepting. The daemon's parts each have their module: its connections
(``connections``: deadlines, size caps, peers, subscriptions), its settings (``settings``), the
background lane (``background``), lint-on-save (``watcher``), deep scans (``scans``,
``scheduler``) and the model backends (``backends``). Here they are put together, requests are
answered, and the daemon stops: on a signal, ``op: shutdown``, when idle, or when its socket or
its installation is gone. ``process`` runs it as ``tinyarms daemon run``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tinyarms import __version__, lintjob, protocol, report
from tinyarms.config import ScheduleConfig
from tinyarms.daemon import backends
from tinyarms.daemon.background import Background
from tinyarms.daemon.connections import Connections
from tinyarms.daemon.messages import OPS, REQUEST, Lint, Scan, ScanStatus, lint_job
from tinyarms.daemon.scans import Scans
from tinyarms.daemon.scheduler import DeepScanScheduler
from tinyarms.daemon.settings import SettingsCache
from tinyarms.daemon.watcher import Watcher
from tinyarms.errors import ConfigError
from tinyarms.log import get_logger
from tinyarms.models.worker import client as workers
from tinyarms.stores import repos
from tinyarms.stores.cache import Cache
from tinyarms.yamlio import format_loc, validation_messages

LINT_THREADS = 64
SHUTDOWN_GRACE = 1.0
SOCKET_CHECK = 1.0  # seconds between checks that our socket is still there
SOCKET_UMASK = 0o177  # the socket is born 0600: no window where others may connect
DRAIN_POLL = 0.01  # seconds between looks at the requests still in flight while stopping
IDLE_CHECKS = 4  # looks at the idle time per idle_timeout
_INSTALLED = Path(__file__).resolve().parents[1] / "__init__.py"  # the tinyarms package we run from


class Daemon:
    def __init__(self, home: Path, idle_timeout: float | None, request_timeout: float,
                 schedule: ScheduleConfig | None = None):
        self.home = home
        self.idle_timeout = idle_timeout
        self.request_timeout = request_timeout
        self.started = time.time()
        self.log = get_logger(component="daemon")
        self.store = Cache(home / "cache.db")
        self.executor = ThreadPoolExecutor(LINT_THREADS, thread_name_prefix="lint")
        self.settings = SettingsCache()
        self.latencies: deque[float] = deque(maxlen=1000)
        self.served: Counter[str] = Counter()
        self.errors: deque[dict[str, Any]] = deque(maxlen=20)
        self.last_request = time.monotonic()
        self.in_flight = 0
        self.bound: int | None = None  # our socket's inode, once bound
        self._stop: asyncio.Event | None = None
        self._closing = threading.Event()
        # Each connection's requests, and the events for connections that asked for them
        # (op "subscribe": the language server).
        self.connections = Connections(self._answer, request_timeout, self._refused, self._request_stop)
        # Model questions a commit's budget cut: answered here, after the commit, so the next
        # commit finds them cached. Hook requests always go first.
        self.background = Background(self.store, self._busy, self._closing, self.connections.publish)
        # Deep scans (`tinyarms scan`): a thread each, polled with scan-status; model work waits for requests.
        self.scans = Scans(home, self.store, busy=self._busy)
        # Lint-on-save for the repos in repos.json: a background lane below every request.
        self.watcher = Watcher(home, self.settings.for_watch, self.store, busy=self._busy)
        # The weekly deep scan of every watched repo (None: `schedule.enabled: false`).
        self.scheduler = (DeepScanScheduler(home, schedule, self.scheduled_scan, lambda: self.last_request)
                          if schedule is not None and schedule.enabled else None)

    # -- the server ---------------------------------------------------------------------------

    async def serve(self) -> None:
        self._stop = asyncio.Event()
        self.connections.loop = asyncio.get_running_loop()
        path = protocol.socket_path(self.home)
        old_umask = os.umask(SOCKET_UMASK)
        try:
            server = await asyncio.start_unix_server(
                self.connections.handle, path=str(path), limit=protocol.MAX_MESSAGE + 1)
        finally:
            os.umask(old_umask)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        idle = asyncio.create_task(self._idle_watch()) if self.idle_timeout else None
        self.bound = inode(path)
        lost = asyncio.create_task(self._watch_socket(path, self.bound))
        self.background.start()
        self.watcher.start()
        if self.scheduler is not None:
            self.scheduler.start()
        threading.Thread(target=backends.preload, name="preload", daemon=True).start()
        self.log.info("daemon_started", pid=os.getpid(), socket=str(path), version=__version__)
        try:
            await self._stop.wait()
        finally:
            server.close()
            if idle is not None:
                idle.cancel()
            lost.cancel()
            self._closing.set()
            if self.scheduler is not None:
                self.scheduler.stop()
            self.scans.stop()  # between two files; the journal resumes them at the next start
            self.watcher.stop()
            await self._drain()
            self.executor.shutdown(wait=False, cancel_futures=True)
            workers.pool.stop_all()  # their memory goes with the daemon (exit_now skips atexit)
            self.store.close()
            self.log.info("daemon_stopped", served=sum(self.served.values()))

    async def _drain(self) -> None:
        """Give in-flight requests up to a second to finish, then cancel them."""
        deadline = time.monotonic() + SHUTDOWN_GRACE
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL)
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task():
                task.cancel()

    async def _idle_watch(self) -> None:
        assert self._stop is not None and self.idle_timeout is not None
        while True:
            await asyncio.sleep(min(1.0, self.idle_timeout / IDLE_CHECKS))
            idle = time.monotonic() - self.last_request > self.idle_timeout
            if not self.in_flight and not self.scans.running() and idle:
                self.log.info("idle_shutdown", idle_timeout=self.idle_timeout)
                self._stop.set()
                return

    async def _watch_socket(self, path: Path, bound: int | None) -> None:
        """Stop when our socket is gone or replaced (the state directory deleted, say): no client
        can reach us any more, and the next one starts a daemon of its own, so we would linger
        as an orphan holding memory and a model. Stop too when our own installation is gone."""
        assert self._stop is not None
        while True:
            await asyncio.sleep(SOCKET_CHECK)
            if inode(path) != bound:
                self.log.warning("socket_lost", socket=str(path), state_dir=str(self.home),
                                 hint="the state directory was deleted or replaced; this daemon stops")
                print(f"tinyarms daemon: {path} is gone; stopping (a client starts a new daemon)", file=sys.stderr)
                self._stop.set()
                return
            # Our installation deleted (pre-commit removes a hook's environment: `try-repo` at its
            # end, `gc`): we cannot read our built-in config any more and would fail every
            # request; stopped, we leave the next client to start the one installed now.
            if not _INSTALLED.exists():
                self.log.warning("installation_lost", package=str(_INSTALLED.parent),
                                 hint="the environment this daemon runs from was deleted; this daemon stops")
                print(f"tinyarms daemon: {_INSTALLED.parent} is gone; stopping (a client starts a new daemon)",
                      file=sys.stderr)
                self._stop.set()
                return

    def _request_stop(self) -> None:
        assert self._stop is not None
        self._stop.set()

    def _busy(self) -> bool:
        """Whether a request is in flight: background work waits."""
        return self.in_flight > 0

    # -- requests -----------------------------------------------------------------------------

    async def _answer(self, line: bytes) -> tuple[dict[str, Any], str | None]:
        started = time.perf_counter()
        self.last_request = received = time.monotonic()
        self.in_flight += 1
        op = None
        try:
            message = protocol.decode(line)
            op = message.get("op") if isinstance(message.get("op"), str) else None
            request = REQUEST.validate_python(message)
            op = request.op
            if request.op == "ping":
                result: Any = {"pid": os.getpid(), "version": __version__, "protocol": protocol.PROTOCOL}
            elif request.op == "status":
                result = await asyncio.get_running_loop().run_in_executor(self.executor, self.status)
            elif request.op == "reload":
                self.settings.clear()
                result = {"reloaded": True}
            elif request.op == "shutdown":
                result = {"stopping": True}
            elif request.op == "subscribe":
                result = {"subscribed": True, "events": ["answered"]}
            elif isinstance(request, Scan | ScanStatus):
                result = await asyncio.get_running_loop().run_in_executor(self.executor, self.scans.handle, request)
            else:
                result = await asyncio.get_running_loop().run_in_executor(self.executor, self.lint, request, received)
            self.served[request.op] += 1
            return protocol.reply_ok(__version__, result), request.op
        except protocol.ProtocolError as exc:
            return self._failed(exc.code, exc.message, op), op
        except ValidationError as exc:
            problems = [f"{format_loc(loc)}: {msg}" for loc, msg in validation_messages(exc)]
            code = protocol.UNKNOWN_OP if op is not None and op not in OPS else protocol.BAD_REQUEST
            return self._failed(code, "; ".join(problems[:5]), op), op
        except ConfigError as exc:
            return self._failed(protocol.CONFIG_ERROR, "\n".join(exc.problems), op, problems=exc.problems), op
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must cost one request, not the daemon
            self.log.exception("request_failed", op=op)
            return self._failed(protocol.INTERNAL, f"{type(exc).__name__}: {exc}", op), op
        finally:
            self.in_flight -= 1
            self.latencies.append((time.perf_counter() - started) * 1000)

    def _failed(self, code: str, message: str, op: str | None, **extra: Any) -> dict[str, Any]:
        self._error(code, message, op)
        return protocol.reply_error(__version__, code, message, **extra)

    def _error(self, code: str, message: str, op: str | None = None) -> None:
        self.errors.append({"time": time.time(), "code": code, "op": op, "message": message[:500]})
        self.log.warning("request_error", code=code, op=op, message=message[:500])

    def _refused(self, refusal: str) -> None:
        self._error("forbidden", refusal)

    # -- the work (on the thread pool) --------------------------------------------------------

    def scheduled_scan(self) -> str:
        """The scheduler's job: a deep scan of each watched repo in turn (``Scans.scan_watched``)."""
        return self.scans.scan_watched(self._closing.is_set)

    def lint(self, request: Lint, received: float | None = None) -> dict[str, Any]:
        cwd = Path(request.cwd)
        if not cwd.is_absolute():
            raise protocol.ProtocolError(protocol.BAD_REQUEST, "cwd must be an absolute path")
        job = lint_job(request, received)
        settings, warnings = self.settings.get(job, cwd)
        if request.staged:
            self.watcher.note_client(job.root, request.env)  # background lints use the commit's settings
        result = lintjob.execute(job, cwd, settings, None if request.no_cache else self.store, self.background.enqueue)
        output = None
        if request.format is not None:
            from tinyarms import render

            output = render.render(
                request.format, result, settings.ruleset.meta(), fail_on=settings.config.fail_on, color=request.color)
        return {
            **result.to_dict(), "exit_code": lintjob.exit_code(settings, result), "output": output,
            "warnings": warnings,
        }

    def status(self) -> dict[str, Any]:
        import psutil

        me = psutil.Process()
        with me.oneshot():
            memory = me.memory_info().rss
            cpu = me.cpu_percent(interval=None)
            threads = me.num_threads()
        latencies = list(self.latencies)
        return {
            "daemon": {
                "pid": os.getpid(), "version": __version__, "python": sys.version.split()[0],
                "uptime_s": round(time.time() - self.started, 1), "started_at": self.started,
                "rss_bytes": memory, "cpu_percent": cpu, "threads": threads,
                "socket": str(protocol.socket_path(self.home)), "state_dir": str(self.home),
                "log": str(self.home / "logs" / "daemon.log"),
                "idle_timeout": self.idle_timeout,
            },
            "config": self.settings.status(),
            "models": backends.status(),
            "background": {**self.background.status(), "subscribers": len(self.connections.subscribers)},
            "cache": self.store.summary(),
            "feedback": _feedback_summary(self.home),
            "requests": {
                "served": sum(self.served.values()), "by_op": dict(self.served),
                "in_flight": self.in_flight - 1,  # not this one
                "latency_ms": {
                    "p50": round(statistics.median(latencies), 2) if latencies else None,
                    "p95": round(_percentile(latencies, pct=95), 2) if latencies else None,
                    "count": len(latencies),
                },
            },
            **self.watcher.status(),  # watched_repos, watcher
            "scan": self._scan_status(),
            "recent_errors": list(self.errors),
        }

    def _scan_status(self) -> dict[str, Any]:
        """The schedule (last and next run, why it waits) and each watched repo's latest report."""
        schedule = (self.scheduler.status() if self.scheduler is not None
                    else {"schedule": None, "last": None, "last_result": None, "next": None,
                          "state": "disabled (schedule.enabled: false)"})
        try:
            roots = repos.read(self.home)
        except ConfigError:
            roots = []  # the watcher's status says what is wrong with the registry
        reports = {str(root): report.latest(self.home, root) for root in roots}
        return {**schedule, "reports": reports, "running": [v for v in self.scans.status() if v["state"] == "running"]}


def inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _feedback_summary(home: Path) -> dict[str, Any]:
    from tinyarms.stores import feedback

    return feedback.summary(home / "feedback.db")


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]
