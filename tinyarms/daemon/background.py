"""The daemon's background lane: model questions a commit's budget cut, answered after the commit
on a thread of their own, so the next commit finds them in the cache.

Requests always go first: the lane waits while one is in flight, and model work gives way
between questions. A full queue drops the work (its reply already listed it as skipped). When
answers come, subscribers are told which files they concern (event ``answered``), so editors
lint those files again and find them cached.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from tinyarms import router
from tinyarms.log import get_logger
from tinyarms.stores.cache import Cache

BACKGROUND_QUEUE = 100
BUSY_POLL = 0.05  # seconds background work waits while a commit's request is in flight


class Background:
    """``busy()``: a request is in flight; ``closing``: set when the daemon stops;
    ``publish(event)``: tell subscribers."""

    def __init__(self, store: Cache, busy: Callable[[], bool], closing: threading.Event,
                 publish: Callable[[dict[str, Any]], None]) -> None:
        self.store = store
        self.busy = busy
        self.closing = closing
        self.publish = publish
        self.log = get_logger(component="daemon")
        self.queue: queue.Queue[router.PendingWork] = queue.Queue(maxsize=BACKGROUND_QUEUE)
        self.answered = 0
        self.dropped = 0

    def enqueue(self, work: router.PendingWork) -> None:
        try:
            self.queue.put_nowait(work)
        except queue.Full:
            self.dropped += 1  # already reported as skipped (budget) in its reply

    def start(self) -> None:
        threading.Thread(target=self._loop, name="background", daemon=True).start()

    def status(self) -> dict[str, Any]:
        return {"queued": self.queue.qsize(), "answered": self.answered, "dropped": self.dropped}

    def _loop(self) -> None:
        while not self.closing.is_set():
            try:
                work = self.queue.get(timeout=0.25)
            except queue.Empty:
                continue
            while self.busy() and not self.closing.is_set():
                time.sleep(BUSY_POLL)  # a commit is waiting: it goes first
            if self.closing.is_set():
                return
            try:
                answered = router.answer_pending(work, self.store, yield_to=self.busy)
            except Exception:  # logged with its stack: background work must never take the daemon down
                self.log.exception("background_failed")
                continue
            self.answered += answered
            if answered:
                # Editors (the language server) re-lint these files now and find the answers cached.
                self.publish({"event": "answered", "paths": sorted({q.src.rel for q in work.questions})})
