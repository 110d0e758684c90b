"""Feedback: what a developer said about a finding — a false positive, or confirmed real.

It lives in its own SQLite file, ``feedback.db`` in the state directory, not in the result
cache: the cache is disposable (a damaged one is set aside and started afresh) and feedback is
not, so a damaged feedback file is reported and left alone. WAL and a busy timeout let
``tinyarms feedback`` write while the daemon reads.

Entries belong to a repository (its resolved root path) and a finding's fingerprint
(``finding.assign_fingerprints``: path, rule, the line's content, occurrence), one verdict each;
a new verdict replaces the old one.

- A false positive never fails a run again for that fingerprint in that repository
  (:func:`mark`, called for every lint, in process and in the daemon): the finding is still
  reported, with ``feedback: "false-positive"``, and ``finding.fails`` ignores it.
- It becomes a counter-example for its rule in the model prompts for that repository
  (:meth:`Store.counter_examples`, :class:`Examples`): at most ``MAX_EXAMPLES``, the most
  similar to the code asked about first, then the most recent, and only those alike enough
  (``similarity``: Jaccard of token-pair shingles) — so a false positive changes the prompts,
  hence the model-cache keys, of code like it, not of every question about that rule.
- When the rule's finder sorts its claims into kinds (design-tokens: the property and the token
  family, ``font-size:--size``; ``Candidate.kind``), it also settles the other questions of that
  kind in that repository: they are not asked, and their findings are reported as known false
  positives that name the report. Measured here, the small models do not heed counter-examples
  (docs/feedback.md, "What feedback is worth"); this is what makes one report count for the code like it.
- A confirmation records that a finding is real (``feedback: "confirmed"``); a confirmed finding
  of a kind hands that kind back to the model, which judges each question of it again.

Measuring what feedback is worth (``tinyarms eval --feedback``, ``feedback_effect.run_feedback``), on a
labelled corpus split in two halves laid out under one repository root (entries are per
repository)::

    store = Store(tmp_home / "feedback.db")           # with TINYARMS_HOME=tmp_home for the lints
    before = fp_rate(lint(held_out))                  # no feedback yet
    for f in lint(training).findings:                 # teach: every finding the labels reject
        if not labelled_violation(f):
            store.record_finding(root, f, rel_path, file_lines, FALSE_POSITIVE)
    after = fp_rate(lint(held_out))                   # prompts now carry counter-examples

Fingerprints of the held-out half never match the training half's, so ``after - before``
measures the counter-examples alone (on the training half itself every taught finding is
suppressed by fingerprint, which proves nothing). The changed prompts miss the model cache by
themselves; no ``--no-cache`` is needed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from tinyarms.errors import ConfigError
from tinyarms.finding import CONFIRMED, FALSE_POSITIVE, Finding, LintResult
from tinyarms.stores.cache import when_unlocked
from tinyarms.stores.similarity import rank

VERDICTS = (FALSE_POSITIVE, CONFIRMED)
MAX_EXAMPLES = 3  # counter-examples in one prompt
MAX_CONSIDERED = 200  # the most recent false positives of a rule that are ranked at all
MAX_STORED_LINES = 40  # of a finding's code; prompts show fewer (prompts.MAX_EXAMPLE_LINES)
MAX_NOTE = 500
SCHEMA_VERSION = 2  # 2: the kind of claim a finding made (Entry.kind)

_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    verdict TEXT NOT NULL,
    rule TEXT NOT NULL,
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    note TEXT,
    created REAL NOT NULL,
    kind TEXT,
    UNIQUE (repo, fingerprint)
)""", "CREATE INDEX IF NOT EXISTS feedback_by_rule ON feedback (repo, rule, verdict, created)")
_COLUMNS = "id, repo, fingerprint, verdict, rule, path, line, code, message, note, created, kind"


class FeedbackError(ConfigError):
    """The feedback file cannot be read or written. Exit 2 on the command line; a lint goes on."""


@dataclass(slots=True, frozen=True)
class Entry:
    id: int
    repo: str  # the repository root, resolved
    fingerprint: str
    verdict: str
    rule: str
    path: str  # relative to the repository root
    line: int
    code: str  # the finding's lines when the verdict was given
    message: str
    note: str | None
    created: float
    kind: str | None = None  # the kind of claim the finding made, when its finder has kinds (Candidate.kind)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def feedback_path() -> Path:
    from tinyarms.paths import state_dir

    return state_dir() / "feedback.db"


def repo_key(root: Path | str | None) -> str:
    """How entries name a repository: its root, with symlinks resolved ("" outside one)."""
    return os.path.realpath(root) if root else ""


def finding_code(lines: Sequence[str], finding: Finding) -> str:
    """The lines a finding spans, as a counter-example shows them (bounded)."""
    first = max(1, finding.line)
    last = min(max(first, finding.end_line), first + MAX_STORED_LINES - 1, len(lines))
    return "\n".join(lines[first - 1 : last])


class Store:
    """One connection to the feedback file. Use as a context manager, or ``close()``."""

    def __init__(self, path: Path | None = None):
        self.path = path or feedback_path()
        try:
            self._db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._error("open", exc) from None
        try:
            when_unlocked(self._prepare)  # the daemon and a `feedback` command may create it together
        except (sqlite3.Error, FeedbackError) as exc:
            self._db.close()
            raise exc if isinstance(exc, FeedbackError) else self._error("open", exc) from None

    def _prepare(self) -> None:
        self._db.execute("PRAGMA busy_timeout=5000")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise FeedbackError([f"{self.path}: written by a newer tinyarms (schema {version}); upgrade tinyarms"])
        if version < SCHEMA_VERSION:
            self._db.execute("PRAGMA journal_mode=WAL")  # persistent: set once, when the file is made
            with self._transaction():
                for statement in _SCHEMA:
                    self._db.execute(statement)
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(feedback)")}
                if "kind" not in columns:  # a schema 1 file: its entries keep working, with no kind
                    self._db.execute("ALTER TABLE feedback ADD COLUMN kind TEXT")
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @classmethod
    def existing(cls, path: Path | None = None) -> Store | None:
        """The store when its file exists, else None: a lint with no feedback pays nothing."""
        path = path or feedback_path()
        return cls(path) if path.exists() else None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    # -- writing ------------------------------------------------------------------------------

    def record(self, repo: str, fingerprint: str, verdict: str, *, rule: str, path: str, line: int, code: str,
               message: str, note: str | None = None, now: float | None = None, kind: str | None = None) -> Entry:
        """Say ``verdict`` about a finding; a verdict given before for it is replaced."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        if note is not None:
            note = " ".join(note.split())[:MAX_NOTE] or None
        row = (repo, fingerprint, verdict, rule, path, line, code, message, note, time.time() if now is None else now,
               kind)
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO feedback (repo, fingerprint, verdict, rule, path, line, code, message, note, created,"
                    " kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo, fingerprint) DO UPDATE SET"
                    " verdict=excluded.verdict, rule=excluded.rule, path=excluded.path, line=excluded.line,"
                    " code=excluded.code, message=excluded.message, note=excluded.note, created=excluded.created,"
                    " kind=excluded.kind",
                    row,
                )
                entry = self.lookup(repo, fingerprint)
        except sqlite3.Error as exc:
            raise self._error("write", exc) from None
        assert entry is not None
        return entry

    def record_finding(self, root: Path | str | None, finding: Finding, rel: str, lines: Sequence[str], verdict: str,
                       note: str | None = None, now: float | None = None, kind: str | None = None) -> Entry:
        """``record`` for a finding of a lint; ``rel`` is its path from the root, ``lines`` its file,
        ``kind`` the kind of claim its candidate made (``levels.questions.claim_kind``)."""
        return self.record(repo_key(root), finding.fingerprint, verdict, rule=finding.rule, path=rel,
                           line=finding.line, code=finding_code(lines, finding), message=finding.message,
                           note=note, now=now, kind=kind)

    def remove(self, entry_id: int) -> bool:
        try:
            with self._transaction():
                return self._db.execute("DELETE FROM feedback WHERE id = ?", (entry_id,)).rowcount > 0
        except sqlite3.Error as exc:
            raise self._error("write", exc) from None

    # -- reading ------------------------------------------------------------------------------

    def lookup(self, repo: str, fingerprint: str) -> Entry | None:
        rows = self._select("WHERE repo = ? AND fingerprint = ?", (repo, fingerprint))
        return rows[0] if rows else None

    def matching(self, repo: str | None, fingerprint_prefix: str) -> list[Entry]:
        """Entries whose fingerprint starts with the prefix (in one repository, or any)."""
        escaped = fingerprint_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where, args = "WHERE fingerprint LIKE ? ESCAPE '\\'", [escaped + "%"]
        if repo is not None:
            where, args = where + " AND repo = ?", [*args, repo]
        return self._select(where + " ORDER BY created DESC", tuple(args))

    def get(self, entry_id: int) -> Entry | None:
        rows = self._select("WHERE id = ?", (entry_id,))
        return rows[0] if rows else None

    def verdicts(self, repo: str) -> dict[str, str]:
        """fingerprint -> verdict for one repository."""
        try:
            rows = self._db.execute("SELECT fingerprint, verdict FROM feedback WHERE repo = ?", (repo,)).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        return dict(rows)

    def entries(self, repo: str | None = None) -> list[Entry]:
        """Every entry (of one repository), newest first."""
        if repo is None:
            return self._select("ORDER BY created DESC, id DESC", ())
        return self._select("WHERE repo = ? ORDER BY created DESC, id DESC", (repo,))

    def false_positives(self, repo: str, rule: str | None = None) -> list[Entry]:
        """A repository's false positives (of one rule), the ``MAX_CONSIDERED`` newest per rule."""
        where, args = "WHERE repo = ? AND verdict = ?", [repo, FALSE_POSITIVE]
        if rule is not None:
            where, args = where + " AND rule = ?", [*args, rule]
        rows = self._select(where + " ORDER BY created DESC, id DESC", tuple(args))
        kept: list[Entry] = []
        per_rule: dict[str, int] = {}
        for entry in rows:
            per_rule[entry.rule] = per_rule.get(entry.rule, 0) + 1
            if per_rule[entry.rule] <= MAX_CONSIDERED:
                kept.append(entry)
        return kept

    def confirmed_kinds(self, repo: str) -> set[tuple[str, str]]:
        """(rule, kind) of a repository's confirmed findings: kinds a false positive may not settle."""
        try:
            rows = self._db.execute("SELECT DISTINCT rule, kind FROM feedback WHERE repo = ? AND verdict = ?"
                                    " AND kind IS NOT NULL", (repo, CONFIRMED)).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        return {(rule, kind) for rule, kind in rows}

    def counter_examples(self, repo: str, rule: str, code: str, limit: int = MAX_EXAMPLES) -> list[Entry]:
        """The false positives of ``rule`` a prompt about ``code`` shows, best first."""
        return rank(self.false_positives(repo, rule), code, limit)

    def counts(self) -> dict[str, int]:
        try:
            by_verdict = dict(self._db.execute("SELECT verdict, count(*) FROM feedback GROUP BY verdict").fetchall())
            repos = self._db.execute("SELECT count(DISTINCT repo) FROM feedback").fetchone()[0]
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        return {"false_positives": by_verdict.get(FALSE_POSITIVE, 0), "confirmed": by_verdict.get(CONFIRMED, 0),
                "repos": repos}

    # -- plumbing -----------------------------------------------------------------------------

    def _select(self, tail: str, args: tuple[Any, ...]) -> list[Entry]:
        try:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM feedback {tail}", args).fetchall()
        except sqlite3.Error as exc:
            raise self._error("read", exc) from None
        return [Entry(*row) for row in rows]

    def _transaction(self) -> Any:
        return _Immediate(self._db)

    def _error(self, what: str, exc: Exception) -> FeedbackError:
        hint = ""
        if isinstance(exc, sqlite3.DatabaseError) and ("malformed" in str(exc) or "not a database" in str(exc)):
            hint = "; it is damaged: move it aside (your feedback is in it) and tinyarms starts a new one"
        elif isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
            hint = "; another process holds it: try again"
        return FeedbackError([f"{self.path}: cannot {what} the feedback database: {exc}{hint}"])


class _Immediate:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``: a writer takes the lock up front and waits for it
    (busy timeout) instead of failing half-way when the daemon is reading."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *exc: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


# -- counter-examples for a lint ------------------------------------------------------------------


class Examples:
    """A repository's false positives, read once per lint: ranked per question as counter-examples,
    and by kind, to settle the questions of a kind developers called false (unless they also
    confirmed one of that kind: then the model still judges each)."""

    def __init__(self, entries: list[Entry], confirmed: set[tuple[str, str]] | None = None):
        self._by_rule: dict[str, list[Entry]] = {}
        self._by_kind: dict[tuple[str, str], Entry] = {}
        confirmed = confirmed or set()
        for entry in entries:  # newest first: the newest of a kind is the one named
            self._by_rule.setdefault(entry.rule, []).append(entry)
            if entry.kind is not None and (entry.rule, entry.kind) not in confirmed:
                self._by_kind.setdefault((entry.rule, entry.kind), entry)

    @classmethod
    def load(cls, root: Path | str | None, path: Path | None = None) -> Examples | None:
        """None when there is nothing to show (no file, no false positives, or it cannot be read:
        then the prompts are the plain ones and the error is logged)."""
        try:
            store = Store.existing(path)
            if store is None:
                return None
            with store:
                entries = store.false_positives(repo_key(root))
                confirmed = store.confirmed_kinds(repo_key(root)) if entries else set()
        except FeedbackError as exc:
            _log_error(exc)
            return None
        return cls(entries, confirmed) if entries else None

    def for_code(self, rule: str, code: str, limit: int = MAX_EXAMPLES) -> list[Entry]:
        entries = self._by_rule.get(rule)
        return rank(entries, code, limit) if entries else []

    def settling(self, rule: str, kind: str | None) -> Entry | None:
        """The false positive that settles a question of this kind, if one does."""
        return None if kind is None else self._by_kind.get((rule, kind))


# -- marking a lint's findings --------------------------------------------------------------------


def mark(result: LintResult, root: Path | str | None, path: Path | None = None) -> None:
    """Mark the findings a developer gave a verdict about; false positives then fail nothing.
    ``stats.false_positives`` counts them; a feedback file that cannot be read is reported in
    ``stats.feedback_error`` and the lint goes on."""
    result.stats["false_positives"] = 0
    if not result.findings:
        return
    try:
        store = Store.existing(path)
        if store is None:
            return
        with store:
            verdicts = store.verdicts(repo_key(root))
    except FeedbackError as exc:
        _log_error(exc)
        result.stats["feedback_error"] = "\n".join(exc.problems)
        return
    for finding in result.findings:  # a verdict on this very finding outranks one a kind of them got
        finding.feedback = verdicts.get(finding.fingerprint, finding.feedback)
    result.stats["false_positives"] = sum(1 for f in result.findings if f.feedback == FALSE_POSITIVE)


def summary(path: Path | None = None) -> dict[str, Any]:
    """For ``tinyarms status``: counts, where the file is, and whether it can be read."""
    path = path or feedback_path()
    out: dict[str, Any] = {"path": str(path), "false_positives": 0, "confirmed": 0, "repos": 0, "error": None}
    try:
        store = Store.existing(path)
        if store is not None:
            with store:
                out.update(store.counts())
    except FeedbackError as exc:
        out["error"] = "\n".join(exc.problems)
    return out


def _log_error(exc: FeedbackError) -> None:
    from tinyarms.log import get_logger

    get_logger().warning("feedback_error", problems=exc.problems)
