"""Model requests in flight at once, per backend, for the whole process (``models.concurrency``).

The daemon lints many requests at once (pre-commit runs hooks in parallel, the background
finishes what budgets cut), each on its own thread and event loop, all asking the same backend.
The limit is the process's, so ten hooks do not send one small local server ten questions at
once. A question waits for a slot only until its deadline; then it is left for the background
like any other the budget cut.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

POLL_SECONDS = 0.02  # how often a waiting question looks for a free slot


class Slots:
    """``limit`` slots; taken by polling, so a question cancelled while waiting holds nothing."""

    def __init__(self, limit: int):
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    async def take(self, deadline: float | None, defer: Callable[[], bool] | None = None) -> bool:
        """A slot, or False when ``deadline`` (``time.monotonic()``) passes first. While
        ``defer()`` says so (background work, a request waiting) no slot is taken."""
        while (defer is not None and defer()) or not self._free.acquire(blocking=False):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL_SECONDS)
        return True

    def give(self) -> None:
        self._free.release()

    @asynccontextmanager
    async def turn(self, deadline: float | None, defer: Callable[[], bool] | None = None) -> AsyncIterator[bool]:
        """``async with slots.turn(deadline) as mine:`` -- ``mine`` False: no slot in time."""
        mine = await self.take(deadline, defer)
        try:
            yield mine
        finally:
            if mine:
                self.give()


_lock = threading.Lock()
_by_backend: dict[tuple[str, int], Slots] = {}


def for_backend(key: str, limit: int) -> Slots:
    """The process's slots for one backend (its kind and address) at one limit."""
    with _lock:
        slots = _by_backend.get((key, limit))
        if slots is None:
            slots = _by_backend[(key, limit)] = Slots(limit)
        return slots


def backend_key(backend: object) -> str:
    """Which server a backend asks: the same Ollama host or OpenAI base URL shares slots."""
    address = getattr(backend, "host", None) or getattr(backend, "base_url", None) or ""
    return f"{getattr(backend, 'name', type(backend).__name__)}:{address}"
