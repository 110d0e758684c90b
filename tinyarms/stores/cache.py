"""The result cache: SQLite, content-addressed, shared by the CLI, the daemon and the scans.

A key is the hash of (tinyarms version, rule-set digest, file path, content hash), so a result
is reused only when nothing that could change it has changed. The cache is an optimisation:
when it cannot be opened or written (read-only disk, disk full, a corrupt file) linting goes on
without it and the error is reported, never raised.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tinyarms import __version__

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created REAL NOT NULL
)
"""
_CHUNK = 500  # stay well under SQLite's bound-parameter limit


LOCKED_SECONDS = 2.0  # how long opening waits for another process setting up the same file
LOCKED_POLL = 0.02  # seconds between tries while it does


def when_unlocked(open_: Callable[[], T], seconds: float = LOCKED_SECONDS) -> T:
    """``open_()``, again while SQLite says the file is locked. Two processes creating one
    database at once (two hooks on a fresh machine) collide on switching it to WAL, and SQLite
    answers that at once, without waiting out the busy timeout."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return open_()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(LOCKED_POLL)


def _is_corruption(exc: Exception) -> bool:
    return isinstance(exc, sqlite3.DatabaseError) and ("malformed" in str(exc) or "not a database" in str(exc))


def key(digest: str, rel: str, raw: bytes) -> str:
    content = hashlib.sha256(raw).hexdigest()
    # surrogatepass: a file name that is not UTF-8 reaches here as lone surrogates (os.fsdecode)
    return hashlib.sha256(f"{__version__}\0{digest}\0{rel}\0{content}".encode("utf-8", "surrogatepass")).hexdigest()


class Cache:
    def __init__(self, path: Path):
        self.path = path
        self.error: str | None = None
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()  # the daemon lints on several threads; one connection
        self._db: sqlite3.Connection | None = None
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._fail("open", exc)

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            if not _is_corruption(exc):
                raise
            self._set_aside()
            return self._connect()

    def _set_aside(self) -> None:
        """A damaged cache holds nothing worth keeping: move it (and its WAL) aside."""
        stamp = int(time.time())
        for suffix in ("", "-wal", "-shm"):
            part = self.path.with_name(self.path.name + suffix)
            if part.exists():
                part.rename(part.with_name(f"{self.path.name}.corrupt-{stamp}{suffix}"))

    def _recover(self, exc: Exception) -> None:
        """Damage found after opening (a bad page deep in the file): start a fresh cache."""
        if not _is_corruption(exc):
            return
        try:
            if self._db is not None:
                self._db.close()
            self._set_aside()
            self._db = self._connect()
        except (sqlite3.Error, OSError) as again:
            self._db = None
            self._fail("recover", again)

    def _connect(self) -> sqlite3.Connection:
        return when_unlocked(self._connect_once)

    def _connect_once(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _fail(self, what: str, exc: Exception) -> None:
        self.error = f"cache {what} failed ({self.path}): {exc}"
        from tinyarms.log import get_logger

        get_logger().warning("cache_error", operation=what, path=str(self.path), error=str(exc))

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        keys = list(keys)
        found: dict[str, dict[str, Any]] = {}
        if self._db is not None:
            try:
                with self._lock:
                    rows = []
                    for i in range(0, len(keys), _CHUNK):
                        chunk = keys[i : i + _CHUNK]
                        marks = ",".join("?" * len(chunk))
                        query = f"SELECT key, value FROM results WHERE key IN ({marks})"
                        rows += self._db.execute(query, chunk).fetchall()
                found = {k: _loads(value) for k, value in rows}
            except (sqlite3.Error, ValueError) as exc:
                self._fail("read", exc)
                with self._lock:
                    self._recover(exc)
                found = {}
        self.hits += len(found)
        self.misses += len(keys) - len(found)
        return found

    def put_many(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        if self._db is None:
            return
        now = time.time()
        rows = [(k, _dumps(v), now) for k, v in items]
        if not rows:
            return
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO results VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._fail("write", exc)
            with self._lock:
                self._recover(exc)
        else:
            self.error = None  # writing again (disk freed, directory writable): status stops saying otherwise

    def summary(self) -> dict[str, Any]:
        """Entries, bytes on disk and this process's hit rate, for ``tinyarms status``."""
        entries = None
        if self._db is not None:
            try:
                with self._lock:
                    entries = self._db.execute("SELECT count(*) FROM results").fetchone()[0]
            except sqlite3.Error as exc:
                self._fail("read", exc)
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        asked = self.hits + self.misses
        return {
            "path": str(self.path), "entries": entries, "size_bytes": size, "hits": self.hits,
            "misses": self.misses, "hit_rate": round(self.hits / asked, ndigits=3) if asked else None,
            "error": self.error,
        }

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _loads(value: str) -> Any:
    """A cached value: by orjson (a cached lint decodes thousands: a tenth of its time with the
    standard library's), or by the standard library where orjson refuses a value ``_dumps`` wrote
    with it (an escaped lone surrogate)."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)


def _dumps(value: dict[str, Any]) -> str:
    """Compact JSON by orjson, or by the standard library where orjson refuses: a lone surrogate,
    from a file name that is not UTF-8, or an integer beyond 64 bits."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"))
