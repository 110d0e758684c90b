"""Deep scans inside the daemon: each on its own thread, followed by polling.

A scan runs for minutes or hours, far longer than a request should stay open, and the daemon's
background lanes give way to requests in flight. So the ``scan`` op starts the scan and replies
at once with an id (joining the identical scan when one already runs), ``scan-status`` tells how
far it is, and the scan's model work waits whenever a request is in flight: a commit never
queues behind the weekly scan. At shutdown running scans stop between two files; the journal
lets the next start continue them. The weekly scan itself (the scheduler's job, ``scan_watched``)
runs each watched repository's scan here in turn.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyarms import protocol, scan
from tinyarms.daemon.messages import Scan, ScanStatus
from tinyarms.errors import ConfigError
from tinyarms.log import get_logger
from tinyarms.stores import repos
from tinyarms.stores.cache import Cache
from tinyarms.stores.journal import ScanBusy

KEEP_FINISHED = 20
STOP_GRACE = 2.0


@dataclass(slots=True)
class _Run:
    id: str
    root: Path
    key: str
    started: float = field(default_factory=time.time)
    state: str = "running"  # running | done | stopped | failed
    progress: scan.Progress | None = None
    outcome: dict[str, Any] | None = None
    error: str | None = None
    problems: list[str] | None = None
    thread: threading.Thread | None = None

    def view(self) -> dict[str, Any]:
        p = self.progress
        return {
            "scan": self.id, "root": str(self.root), "state": self.state, "started": self.started,
            "stage": p.stage if p else "starting", "done": p.done if p else 0, "total": p.total if p else None,
            "resumed": p.resumed if p else 0, "outcome": self.outcome, "error": self.error, "problems": self.problems,
        }


class Scans:
    def __init__(self, home: Path, store: Cache | None, busy: Any):
        self.home = home
        self.store = store
        self.busy = busy  # () -> bool: a request is in flight; model work waits
        self.log = get_logger(component="scan")
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def handle(self, request: Scan | ScanStatus) -> dict[str, Any]:
        if isinstance(request, ScanStatus):
            with self._lock:
                run = self._runs.get(request.scan)
            if run is None:
                raise protocol.ProtocolError(protocol.BAD_REQUEST, f"no scan {request.scan!r} in this daemon")
            return run.view()
        return self.start(request)

    def start(self, request: Scan) -> dict[str, Any]:
        cwd = Path(request.cwd)
        if not cwd.is_absolute():
            raise protocol.ProtocolError(protocol.BAD_REQUEST, "cwd must be an absolute path")
        if self._stopping.is_set():
            raise protocol.ProtocolError(protocol.SHUTTING_DOWN, "the daemon is stopping")
        options = scan.ScanOptions(
            paths=request.paths, skills=request.skill, select=request.select, ignore=request.ignore,
            restart=request.restart, max_questions=request.max_questions, no_cache=request.no_cache, env=request.env,
        )
        return self.launch(cwd, options)

    def launch(self, cwd: Path, options: scan.ScanOptions) -> dict[str, Any]:
        """Start a scan of the repository of ``cwd`` on its own thread (the scheduler's entry too);
        the identical scan already running is joined instead. Raises ``ConfigError`` and
        ``ProtocolError`` (busy) before any work starts."""
        root, key = scan.identify(cwd, options)  # ConfigError: replied as config-error
        with self._lock:
            for run in self._runs.values():
                if run.state == "running" and run.root == root:
                    if run.key == key and not options.restart:
                        return run.view()  # the same scan: follow it
                    raise protocol.ProtocolError(
                        protocol.BUSY, f"{root} is being scanned right now with other options (scan {run.id}); "
                        "wait for it to finish")
            run = _Run(uuid.uuid4().hex[:12], root, key)
            self._runs[run.id] = run
            self._prune()
        run.thread = threading.Thread(target=self._work, args=(run, cwd, options), name=f"scan-{run.id}", daemon=True)
        run.thread.start()
        return run.view()

    def scan_watched(self, closing: Callable[[], bool]) -> str:
        """The scheduler's job: a deep scan of each watched repo in turn, on the scheduler's thread;
        none starts once ``closing()``. Returns the line ``status`` shows as the last result."""
        try:
            roots = repos.read(self.home)
        except ConfigError as exc:
            return "failed: " + "; ".join(exc.problems)
        if not roots:
            return "nothing to scan: no watched repos (add one with `tinyarms repo add`)"
        results = []
        for root in roots:
            if closing():
                results.append(f"{root}: not started, the daemon is stopping")
                continue
            try:
                view = self.launch(root, scan.ScanOptions())
            except (ConfigError, protocol.ProtocolError) as exc:
                problem = "; ".join(exc.problems) if isinstance(exc, ConfigError) else exc.message
                results.append(f"{root}: failed: {problem}")
                continue
            view = self.wait(view["scan"])
            outcome = view.get("outcome") or {}
            results.append(f"{root}: {view['state']}"
                           + (f", report {outcome['markdown']}" if outcome.get("markdown") else "")
                           + (f": {view['error']}" if view.get("error") else ""))
        return "; ".join(results)

    def _work(self, run: _Run, cwd: Path, options: scan.ScanOptions) -> None:
        def progress(event: scan.Progress) -> None:
            run.progress = event

        self.log.info("scan_started", root=str(run.root), scan=run.id)
        try:
            outcome = scan.run(cwd, options, home=self.home, store=None if options.no_cache else self.store,
                               progress=progress, yield_to=self.busy, should_stop=self._stopping.is_set)
        except scan.ScanStopped as exc:
            run.state, run.error = "stopped", str(exc)
        except ScanBusy as exc:
            run.state, run.error = "failed", str(exc)
        except ConfigError as exc:
            run.state, run.error, run.problems = "failed", "\n".join(exc.problems), exc.problems
        except Exception as exc:  # logged with its stack: a scan's bug must not take the daemon down
            self.log.exception("scan_failed", root=str(run.root), scan=run.id)
            run.state, run.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            run.outcome = {**outcome.report, "scan": outcome.scan}
            run.state = "done"
        self.log.info("scan_ended", root=str(run.root), scan=run.id, state=run.state, error=run.error)

    def wait(self, scan_id: str) -> dict[str, Any]:
        """Block until scan ``scan_id`` ends (done, stopped or failed); its final view."""
        with self._lock:
            run = self._runs[scan_id]
        if run.thread is not None:
            run.thread.join()
        return run.view()

    def running(self) -> bool:
        with self._lock:
            return any(run.state == "running" for run in self._runs.values())

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [run.view() for run in self._runs.values()]

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Ask running scans to stop after the file they are on; wait up to ``grace`` seconds."""
        self._stopping.set()
        deadline = time.monotonic() + grace
        with self._lock:
            threads = [run.thread for run in self._runs.values() if run.thread is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _prune(self) -> None:
        finished = [r for r in self._runs.values() if r.state != "running"]
        for run in sorted(finished, key=lambda r: r.started)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._runs[run.id]
