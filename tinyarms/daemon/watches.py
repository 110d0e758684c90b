"""One watched repository: its watchdog ``Observer`` (recursive, one per repository), whether the
watch is healthy, and what the watcher has linted there.

The observer reports only events that can mean "saved" (a file created, written, closed after
writing, or renamed into place), never open or read events, which the watcher's own reads would
cause. A watch that cannot start or stops working (a folder that vanished, the inotify watch
limit) says why in words ``tinyarms status`` shows; the watcher retries it.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)


@dataclass(slots=True)
class WatchedRepo:
    """A repository in ``repos.json``: its watch, and the watcher's lints of its files."""

    root: Path
    state: str = "starting"  # starting | watching | error
    error: str | None = None
    observer: Any = None
    since: float = field(default_factory=time.time)
    tried: float = 0.0  # monotonic time of the last attempt to watch
    linted: int = 0
    last_lint: dict[str, Any] | None = None
    last_error: str | None = None

    def watch(self, saw: Callable[[Path, str], None], failed: Callable[[Exception], None]) -> str | None:
        """Start the observer; ``saw(root, path)`` hears of every saved file, ``failed(exc)`` of
        an error while handling an event. The problem, in words, when it cannot start."""
        self.tried = time.monotonic()
        if not self.root.is_dir():
            return f"{self.root}: no such directory (remove it with `tinyarms repo remove {self.root}`)"
        from watchdog.observers import Observer

        observer = Observer()
        observer.daemon = True
        try:
            # Only events that can mean "saved": no open/read events, which our own reads would cause.
            observer.schedule(_Handler(self.root, saw, failed), str(self.root), recursive=True,
                              event_filter=[FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent])
            observer.start()
        except Exception as exc:  # noqa: BLE001 - inotify limits, permissions, a folder that went away
            _stop_observer(observer)
            hint = (" (the inotify watch limit: raise fs.inotify.max_user_watches)"
                    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC else "")
            return f"cannot watch {self.root}: {exc}{hint}"
        self.observer = observer
        return None

    def problem(self) -> str | None:
        """What is wrong with a running watch, or None."""
        if not self.root.is_dir():
            return f"{self.root}: the folder is gone (remove it with `tinyarms repo remove {self.root}`)"
        observer = self.observer
        if observer is None or not observer.is_alive() or not all(e.is_alive() for e in observer.emitters):
            return "the file watch stopped; retrying"
        return None

    def unwatch(self) -> None:
        observer, self.observer = self.observer, None
        if observer is not None:
            _stop_observer(observer)


def _stop_observer(observer: Any) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=1.0)
    except Exception:  # noqa: BLE001 - a watch that cannot even stop is gone anyway
        pass


class _Handler(FileSystemEventHandler):
    """watchdog's callback: hands the saved path to the watcher; an exception here would end
    watchdog's thread, so none escapes."""

    def __init__(self, root: Path, saw: Callable[[Path, str], None], failed: Callable[[Exception], None]):
        super().__init__()
        self.root = root
        self.saw = saw
        self.failed = failed

    def dispatch(self, event: Any) -> None:
        try:
            if event.is_directory:
                return
            path = event.dest_path if event.event_type == "moved" else event.src_path
            if path:
                self.saw(self.root, os.fsdecode(path))
        except Exception as exc:  # noqa: BLE001
            self.failed(exc)
