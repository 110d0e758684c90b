"""The scan journal: what a deep scan set out to do and what it has done, so a scan stopped by a
crash, a kill or a shutdown goes on where it stopped.

SQLite (``<state>/scans.db``) because every step must be atomic: a batch's results and the fact
that its files are done are written in one transaction, so after a kill at any instant a file is
either done with its results on record or not done at all. A repository is scanned by one process
at a time (an advisory lock file next to the database; the kernel releases it when the holder
dies, however it dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    options_key TEXT NOT NULL,
    options TEXT NOT NULL,
    files TEXT NOT NULL,
    listing TEXT NOT NULL,
    started REAL NOT NULL,
    runs INTEGER NOT NULL DEFAULT 1,
    finished REAL,
    report TEXT
);
CREATE INDEX IF NOT EXISTS scans_repo ON scans (repo, options_key, finished);
CREATE TABLE IF NOT EXISTS scan_parts (
    scan_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    files TEXT NOT NULL,
    result TEXT NOT NULL,
    run INTEGER NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (scan_id, seq)
);
"""
KEEP_FINISHED = 20  # finished scans remembered per repository (their parts are dropped at once)
LOCK_MODE = 0o600  # the lock file holds a pid: the user's alone
_HOLDER_BYTES = 64  # read of the lock file: the holder's pid, and room to spare


class ScanBusy(Exception):
    """Another process is scanning this repository right now."""


class ScanRecord(NamedTuple):
    id: str
    repo: str
    options_key: str
    options: dict[str, Any]
    files: list[str]
    listing: dict[str, Any]
    started: float
    runs: int


class Part(NamedTuple):
    kind: str  # files | cross-file
    files: list[str]
    result: dict[str, Any]  # LintResult.to_dict()
    run: int


def repo_key(root: Path) -> str:
    return hashlib.sha256(os.fsencode(root.resolve())).hexdigest()[:16]


class Journal:
    def __init__(self, home: Path):
        self.home = home
        self.path = home / "scans.db"
        self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a recorded batch survives a power cut too
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def lock(self, root: Path) -> Iterator[None]:
        folder = self.home / "scans"
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{repo_key(root)}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, LOCK_MODE)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, _HOLDER_BYTES, 0).decode(errors="replace").strip() or "?"
                raise ScanBusy(f"{root} is being scanned right now (pid {holder}); "
                               "wait for that scan, or stop it (it resumes where it stopped)") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    # -- scans ------------------------------------------------------------------------------------

    def unfinished(self, repo: str, options_key: str) -> ScanRecord | None:
        row = self._db.execute(
            "SELECT id, repo, options_key, options, files, listing, started, runs FROM scans "
            "WHERE repo = ? AND options_key = ? AND finished IS NULL ORDER BY started DESC LIMIT 1",
            (repo, options_key)).fetchone()
        return _record(row) if row else None

    def discard_unfinished(self, repo: str, options_key: str) -> int:
        with self._transaction():
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM scans WHERE repo = ? AND options_key = ? AND finished IS NULL", (repo, options_key))]
            for scan_id in ids:
                self._db.execute("DELETE FROM scan_parts WHERE scan_id = ?", (scan_id,))
                self._db.execute("DELETE FROM scans WHERE id = ?", (scan_id,))
        return len(ids)

    def start(self, repo: str, options_key: str, options: dict[str, Any], files: list[str],
              listing: dict[str, Any]) -> ScanRecord:
        record = ScanRecord(uuid.uuid4().hex[:12], repo, options_key, options, files, listing, time.time(), 1)
        with self._transaction():
            self._db.execute(
                "INSERT INTO scans (id, repo, options_key, options, files, listing, started, runs) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (record.id, repo, options_key, json.dumps(options), json.dumps(files), json.dumps(listing),
                 record.started, 1))
        return record

    def resumed(self, record: ScanRecord) -> ScanRecord:
        """One more run of an unfinished scan."""
        with self._transaction():
            self._db.execute("UPDATE scans SET runs = runs + 1 WHERE id = ?", (record.id,))
        return record._replace(runs=record.runs + 1)

    def record(self, record: ScanRecord, kind: str, files: list[str], result: dict[str, Any]) -> None:
        """A batch's result and, in the same transaction, that its files are done."""
        with self._transaction():
            seq = self._db.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM scan_parts WHERE scan_id = ?",
                                   (record.id,)).fetchone()[0]
            self._db.execute("INSERT INTO scan_parts VALUES (?,?,?,?,?,?,?)", (
                record.id, seq, kind, json.dumps(files), json.dumps(result, separators=(",", ":")), record.runs,
                time.time()))

    def parts(self, record: ScanRecord) -> list[Part]:
        rows = self._db.execute("SELECT kind, files, result, run FROM scan_parts WHERE scan_id = ? ORDER BY seq",
                                (record.id,))
        return [Part(kind, json.loads(files), json.loads(result), run) for kind, files, result, run in rows]

    def finish(self, record: ScanRecord, report: dict[str, Any]) -> None:
        """Mark the scan done; its parts are in the report now, so they go."""
        with self._transaction():
            self._db.execute("UPDATE scans SET finished = ?, report = ? WHERE id = ?",
                             (time.time(), json.dumps(report), record.id))
            self._db.execute("DELETE FROM scan_parts WHERE scan_id = ?", (record.id,))
            old = [r[0] for r in self._db.execute(
                "SELECT id FROM scans WHERE repo = ? AND finished IS NOT NULL ORDER BY finished DESC LIMIT -1 OFFSET ?",
                (record.repo, KEEP_FINISHED))]
            self._db.executemany("DELETE FROM scans WHERE id = ?", [(i,) for i in old])

    def last_finished(self, repo: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT id, started, finished, report FROM scans "
                               "WHERE repo = ? AND finished IS NOT NULL "
                               "ORDER BY finished DESC LIMIT 1", (repo,)).fetchone()
        if row is None:
            return None
        return {"id": row[0], "started": row[1], "finished": row[2], "report": json.loads(row[3] or "null")}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _record(row: tuple[Any, ...]) -> ScanRecord:
    id_, repo, key, options, files, listing, started, runs = row
    return ScanRecord(id_, repo, key, json.loads(options), json.loads(files), json.loads(listing), started, runs)
