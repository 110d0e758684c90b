"""Lint-on-save: the daemon watches every registered repository and lints files as they are
saved, so the commit that follows finds Level 0 and the model answers already in the cache.

How an event becomes a lint:

1. watchdog (one ``Observer`` per repository, recursive: ``watches``) reports a file created,
   written, closed after writing or renamed into place. Paths under ``.git/`` (and other VCS
   folders) are dropped at once; a path under another registered repository nested in this one
   is left to that repository's watch.
2. The path waits in a debounce table until it has been quiet for ``DEBOUNCE`` seconds: editors
   write several times per save (temp file + rename, truncate + write, a backup first).
3. Quiet paths are judged per repository in one batch: gone (an editor's temp file), ignored
   (``git check-ignore --stdin``), excluded or matched by no rule (the repository's settings).
   The rest go to a bounded queue; a path already queued is not queued twice, and a path that
   does not fit is counted as dropped.
4. One low-priority thread lints the queue, a file at a time: its *working* content, Level 0
   and the model levels with no deadline, with the repository's settings and the daemon's cache.
   It waits while any request is in flight, and model work gives way between questions, so a
   commit always goes first.

Watch errors (a folder that vanished, the inotify watch limit) put that repository in state
``error`` and are retried; lint errors are logged and counted. Nothing here stops the daemon.
``tinyarms status`` shows every repository's state and the queue.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinyarms import files, router
from tinyarms.daemon.watches import WatchedRepo
from tinyarms.errors import ConfigError
from tinyarms.log import get_logger
from tinyarms.ruleset import Settings
from tinyarms.stores import repos
from tinyarms.stores.cache import Cache

DEBOUNCE = 0.3  # seconds a path must be quiet before it is linted
REFRESH = 1.0  # seconds between looks at repos.json and at the watches' health
RETRY = 10.0  # seconds between attempts to watch a repository that failed
QUEUE_SIZE = 1000  # files waiting to be linted
PENDING_SIZE = 20_000  # paths waiting out their debounce (a branch switch touches thousands)
MIN_WAIT = 0.01  # seconds: the shortest sleep between looks at what is due
PAUSE_POLL = 0.02  # seconds between looks while a request is waiting
_VCS_DIRS = frozenset({".git", ".hg", ".svn"})

SettingsFor = Callable[[Path, "dict[str, str]"], Settings]


class Watcher:
    """Owns the watches, the debounce table, the queue and the lint thread.

    ``settings_for(root, env)`` returns the settings a lint of ``root`` uses (the daemon's, with
    its reload rules); ``busy()`` says whether a request is waiting, so background work waits."""

    def __init__(self, home: Path, settings_for: SettingsFor, store: Cache | None, busy: Callable[[], bool]):
        self.home = home
        self.settings_for = settings_for
        self.store = store
        self.busy = busy
        self.log = get_logger(component="watcher")
        self._repos: dict[Path, WatchedRepo] = {}
        self._registry_stamp: Any = object()  # never equal to a stamp: the first refresh reads the file
        self.registry_error: str | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Path, float]] = {}  # absolute path -> (repository, last event)
        self._queue: queue.Queue[tuple[Path, str]] = queue.Queue(maxsize=QUEUE_SIZE)
        self._queued: set[tuple[Path, str]] = set()
        self._envs: dict[Path, dict[str, str]] = {}
        # Before any commit: the daemon's own variables, passed explicitly (as a client's are), so
        # these settings are never confused with those of a client that sent none.
        self._own_env = {k: v for k, v in os.environ.items() if k.startswith("TINYARMS_") or k == "OLLAMA_HOST"}
        self.linting: str | None = None
        self.counts = {"events": 0, "linted": 0, "ignored": 0, "out_of_scope": 0,
                       "dropped": 0, "failed": 0}
        self.errors: deque[dict[str, Any]] = deque(maxlen=20)
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- life -----------------------------------------------------------------------------

    def start(self) -> None:
        for target, name in ((self._control_loop, "watch-control"), (self._lint_loop, "watch-lint")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._closing.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=1.0)
        with self._lock:
            watched = list(self._repos.values())
        for repo in watched:
            repo.unwatch()

    def note_client(self, root: Path | None, env: dict[str, str] | None) -> None:
        """The environment of the last commit in ``root``: background lints use the same settings
        (``OLLAMA_HOST``, ``TINYARMS_*``), so what they cache is what the next commit looks up."""
        if root is not None and env is not None:
            with self._lock:
                self._envs[Path(root)] = dict(env)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        with self._lock:
            queued_by_root: dict[Path, int] = {}
            for root, _ in self._queued:
                queued_by_root[root] = queued_by_root.get(root, 0) + 1
            repos_ = [{
                "path": str(r.root), "state": r.state, "error": r.error, "since": r.since,
                "queued": queued_by_root.get(r.root, 0), "linted": r.linted, "last_lint": r.last_lint,
                "last_error": r.last_error,
            } for r in sorted(self._repos.values(), key=lambda r: str(r.root))]
            pending = len(self._pending)
        return {
            "watched_repos": repos_,
            "watcher": {
                "queued": self._queue.qsize(), "pending": pending, "linting": self.linting,
                "debounce_s": DEBOUNCE, **self.counts, "registry": str(repos.registry_path(self.home)),
                "registry_error": self.registry_error, "recent_errors": list(self.errors),
            },
        }

    # -- the control thread: the registry, the watches' health, the debounce table ---------

    def _control_loop(self) -> None:
        next_refresh = 0.0
        while not self._closing.is_set():
            now = time.monotonic()
            if now >= next_refresh:
                try:
                    self.refresh()
                except Exception as exc:  # noqa: BLE001 - the control thread must outlive any bug
                    self._error(None, "refresh", exc)
                next_refresh = now + REFRESH
            try:
                self._admit(self._take_quiet(now))
            except Exception as exc:  # noqa: BLE001
                self._error(None, "admit", exc)
            with self._lock:
                earliest = min((t for _, t in self._pending.values()), default=None)
            wake_at = next_refresh if earliest is None else min(next_refresh, earliest + DEBOUNCE)
            self._wake.wait(max(MIN_WAIT, wake_at - time.monotonic()))
            self._wake.clear()

    def refresh(self) -> None:
        """Follow repos.json (when it changed) and re-check every watch."""
        stamp = repos.stamp(self.home)
        if stamp != self._registry_stamp:
            self._registry_stamp = stamp
            try:
                wanted = repos.read(self.home)
                self.registry_error = None
            except ConfigError as exc:  # keep watching what we watch; status says why nothing changes
                self.registry_error = "; ".join(exc.problems)
                self.log.warning("registry_unreadable", problems=exc.problems)
                wanted = None
            if wanted is not None:
                with self._lock:
                    current = dict(self._repos)
                for root in set(current) - set(wanted):
                    current[root].unwatch()
                    with self._lock:
                        self._repos.pop(root, None)
                    self.log.info("watch_removed", root=str(root))
                for root in wanted:
                    if root not in current:
                        with self._lock:
                            self._repos[root] = WatchedRepo(root)
        with self._lock:
            watched = list(self._repos.values())
        now = time.monotonic()
        for repo in watched:
            if repo.state == "watching":
                problem = repo.problem()
                if problem:
                    repo.unwatch()
                    self._set_error(repo, problem)
            elif repo.state == "starting" or now - repo.tried >= RETRY:
                self._watch(repo)

    def _watch(self, repo: WatchedRepo) -> None:
        problem = repo.watch(self.saw, lambda exc: self._error(None, "event", exc))
        if problem:
            self._set_error(repo, problem)
            return
        repo.state, repo.error, repo.since = "watching", None, time.time()
        self.log.info("watching", root=str(repo.root))

    def _set_error(self, repo: WatchedRepo, message: str) -> None:
        if repo.state != "error" or repo.error != message:
            self.log.warning("watch_error", root=str(repo.root), error=message)
            self.errors.append({"time": time.time(), "repo": str(repo.root), "what": "watch", "message": message})
        repo.state, repo.error, repo.since = "error", message, time.time()

    # -- events (on watchdog's threads: quick, and never raising) ---------------------------

    def saw(self, root: Path, path: str) -> None:
        """A file event for ``path`` in ``root``'s watch: (re)start its debounce."""
        rel = os.path.relpath(path, root)
        parts = rel.split(os.sep)
        if parts[0] == os.pardir or _VCS_DIRS.intersection(parts[:-1]):
            return
        with self._lock:
            if self._owner(path) != root:
                return
            self.counts["events"] += 1
            if path not in self._pending and len(self._pending) >= PENDING_SIZE:
                self.counts["dropped"] += 1
                return
            first = not self._pending
            self._pending[path] = (root, time.monotonic())
        if first:
            self._wake.set()

    def _owner(self, path: str) -> Path | None:
        """The deepest registered repository holding ``path`` (a repository may nest in another)."""
        best: Path | None = None
        for root in self._repos:
            text = str(root)
            if (path == text or path.startswith(text.rstrip(os.sep) + os.sep)) and (
                    best is None or len(text) > len(str(best))):
                best = root
        return best

    def _take_quiet(self, now: float) -> dict[Path, list[str]]:
        quiet: dict[Path, list[str]] = {}
        with self._lock:
            for path, (root, last) in list(self._pending.items()):
                if now - last >= DEBOUNCE:
                    del self._pending[path]
                    quiet.setdefault(root, []).append(path)
        return quiet

    def _admit(self, quiet: dict[Path, list[str]]) -> None:
        """Queue the quiet paths that are still there, not ignored and matched by some rule."""
        for root, paths in quiet.items():
            with self._lock:
                repo = self._repos.get(root)
            if repo is None or repo.state != "watching":
                continue
            rels = sorted({os.path.relpath(p, root).replace(os.sep, "/") for p in paths if os.path.isfile(p)})
            if not rels:
                continue
            ignored = self._git_ignored(repo, rels)
            try:
                settings = self._settings(root)
            except ConfigError as exc:
                self._lint_error(repo, "config", "; ".join(exc.problems))
                continue
            for rel in rels:
                if rel in ignored:
                    self.counts["ignored"] += 1
                elif settings.ruleset.excluded(rel) or not files.in_scope(settings.ruleset, rel):
                    self.counts["out_of_scope"] += 1
                else:
                    self._enqueue(root, rel)

    def _git_ignored(self, repo: WatchedRepo, rels: list[str]) -> set[str]:
        try:
            done = subprocess.run(
                ["git", "-C", str(repo.root), "check-ignore", "-z", "--stdin"],
                input="".join(f"{r}\0" for r in rels).encode(), capture_output=True, timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            self._lint_error(repo, "git check-ignore", str(exc))
            return set()
        if done.returncode not in (0, 1):  # 1: none is ignored
            self._lint_error(repo, "git check-ignore", done.stderr.decode(errors="replace").strip())
            return set()
        return {os.fsdecode(name) for name in done.stdout.split(b"\0") if name}

    def _enqueue(self, root: Path, rel: str) -> None:
        item = (root, rel)
        with self._lock:
            if item in self._queued:
                return  # already waiting: it is read when its turn comes, so it lints the newest content
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                self.counts["dropped"] += 1
                return
            self._queued.add(item)

    # -- the lint thread --------------------------------------------------------------------

    def _lint_loop(self) -> None:
        while not self._closing.is_set():
            try:
                root, rel = self._queue.get(timeout=0.25)
            except queue.Empty:
                continue
            with self._lock:
                self._queued.discard((root, rel))  # a save from now on queues it again
                repo = self._repos.get(root)
            while self._paused():
                if self._closing.is_set():
                    return
                time.sleep(PAUSE_POLL)  # a request is waiting: it goes first
            if repo is None or repo.state != "watching":
                continue
            self.linting = f"{root}/{rel}"
            try:
                self._lint(repo, rel)
            except ConfigError as exc:  # the repo's config does not load: status and the log say why
                self._lint_error(repo, "config", "; ".join(exc.problems))
            except Exception as exc:  # noqa: BLE001 - a bug costs one file, not the daemon
                self.counts["failed"] += 1
                self._lint_error(repo, f"lint {rel}", f"{type(exc).__name__}: {exc}", exc_info=True)
            finally:
                self.linting = None

    def _lint(self, repo: WatchedRepo, rel: str) -> None:
        root = repo.root
        started = time.perf_counter()
        settings = self._settings(root)
        path = root / rel
        if not path.is_file():
            return  # deleted while it waited
        namer = files.Namer(root, root)  # named as the hook names it, so the cache keys match
        try:
            collected = files.collect_paths([str(path)], settings.ruleset, namer, settings.config.max_file_bytes)
        except ConfigError:
            return  # deleted between the check and the read
        if not collected.jobs:
            return
        # Content saved again unchanged is linted again too: it is all cache hits, and a model
        # that could not answer last time gets asked.
        options = router.LintOptions(budget=None, workers=1, yield_to=self._paused)
        result = router.run(settings, collected.jobs, options, self.store)
        unasked = [s for s in result.skipped if s.level and s.level > 0]
        with self._lock:
            self.counts["linted"] += 1
            repo.linted += 1
            repo.last_lint = {
                "path": rel, "time": time.time(), "findings": len(result.findings),
                "seconds": round(time.perf_counter() - started, ndigits=3), "models": result.stats.get("models"),
                "skipped": [f"{s.rule}: {s.reason}" for s in unasked][:5],
            }
        self.log.info("watch_linted", root=str(root), path=rel, findings=len(result.findings),
                      seconds=repo.last_lint["seconds"])

    def _paused(self) -> bool:
        """Whether background work waits: while a request is in flight, and for good once the
        daemon stops (no new model question starts then)."""
        return self.busy() or self._closing.is_set()

    def _settings(self, root: Path) -> Settings:
        with self._lock:
            env = self._envs.get(root, self._own_env)
        return self.settings_for(root, env)

    def _lint_error(self, repo: WatchedRepo, what: str, message: str, exc_info: bool = False) -> None:
        repo.last_error = f"{what}: {message}"[:500]
        self.errors.append({"time": time.time(), "repo": str(repo.root), "what": what, "message": message[:500]})
        if exc_info:
            self.log.exception("watch_lint_failed", root=str(repo.root), what=what)
        else:
            self.log.warning("watch_lint_failed", root=str(repo.root), what=what, message=message[:500])

    def _error(self, repo: WatchedRepo | None, what: str, exc: Exception) -> None:
        self.errors.append({"time": time.time(), "repo": str(repo.root) if repo else None, "what": what,
                            "message": f"{type(exc).__name__}: {exc}"[:500]})
        self.log.exception("watcher_error", what=what)
