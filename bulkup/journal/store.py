"""The run journal: what the server acknowledged, file by file, in SQLite (WAL mode).

One journal per upload target (server, company, destination and source roots). It makes a
crashed run resumable (files recorded ``posted`` are not sent again), a nightly sync incremental
(a file whose size and mtime, or sha256, match its last acknowledged state is skipped), and the
report exact. Writes are one transaction per POST or per chunk of walked files, never per file.

States of a file: ``posted`` (a POST that carried it was acknowledged), ``confirmed`` (the job
log says it became an asset), ``failed`` (with the reason). A file gets its row when it is
first posted or fails; a walk only marks the rows it passes as seen by the run.

States of a job (``jobs.closed``): ``0`` open, ``2`` closing (its endJob was sent; whether the
server took it is not known), ``1`` closed (endJob answered, or the server said so). Only an
open job is ever resumed (spec D-07: never a POST into a closed job); a closing or closed job's
files stay acknowledged and its job log still gives their verdicts.

Schema versions: 1 had no closing state; 2 adds it (the values of 1 keep their meaning, so a
version 1 journal is migrated by recording the new version; bulkup of schema 1 refuses a
version 2 journal rather than misread a closing job).

The API is synchronous; :class:`bulkup.journal.session.AsyncJournal` runs it on one thread.
"""

from __future__ import annotations

import errno
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkup.errors import JournalError
from bulkup.models import FileEntry, FileFailure

SCHEMA_VERSION = 2
JOB_OPEN, JOB_CLOSED, JOB_CLOSING = 0, 1, 2
KEEP_RUNS = 200
ACKNOWLEDGED = ("posted", "confirmed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    target TEXT PRIMARY KEY, source TEXT NOT NULL, state TEXT NOT NULL,
    acked_size INTEGER, acked_mtime_ns INTEGER, acked_inode INTEGER, acked_sha256 TEXT,
    sha256 TEXT, sha_size INTEGER, sha_mtime_ns INTEGER, sha_inode INTEGER,
    job_handle TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    seen_run INTEGER, run_id INTEGER, updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at REAL NOT NULL, ended_at REAL, pid INTEGER NOT NULL,
    walk_complete INTEGER NOT NULL DEFAULT 0, summary TEXT
);
CREATE TABLE IF NOT EXISTS jobs (
    handle TEXT PRIMARY KEY, run_id INTEGER NOT NULL, name TEXT NOT NULL, source_ip TEXT,
    params_digest TEXT NOT NULL, opened_at REAL NOT NULL, last_activity REAL NOT NULL,
    closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS failures (
    run_id INTEGER NOT NULL, path TEXT NOT NULL, target TEXT, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS failures_run ON failures (run_id);
"""


@dataclass(frozen=True, slots=True)
class Known:
    """What the journal knows of one target."""

    state: str
    acked_size: int | None
    acked_mtime_ns: int | None
    acked_sha256: str | None
    sha256: str | None
    sha_key: tuple[int | None, int | None, int | None]

    def unchanged_since_ack(self, entry: FileEntry) -> bool:
        """Same size and mtime as when it was last acknowledged."""
        return (
            self.state in ACKNOWLEDGED
            and self.acked_size == entry.size
            and self.acked_mtime_ns == entry.mtime_ns
        )

    def cached_sha256(self, entry: FileEntry) -> str | None:
        """The cached hash when size, mtime and inode still match it."""
        return self.sha256 if self.sha_key == (entry.size, entry.mtime_ns, entry.inode) else None


@dataclass(frozen=True, slots=True)
class ResumableJob:
    """An open job of an earlier run that may be continued."""

    handle: str
    name: str
    last_activity: float


class Journal:
    """One journal file; not thread-safe (use it from one thread)."""

    def __init__(self, path: Path, *, clock: Any = time.time) -> None:
        self.path = path
        self._clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unusable_folder(path, exc) from None
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None)
            self._prepare()
        except sqlite3.OperationalError as exc:  # cannot open or write: not damage
            raise unusable_folder(path, _as_os_error(exc)) from None
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {path} is damaged ({exc}); move it aside to start "
                "afresh (every file would then be sent again)"
            ) from exc

    def _prepare(self) -> None:
        db = self._db
        _require_json(db, self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # a process crash loses nothing committed
        found = self._schema_version()
        if found is not None and found > SCHEMA_VERSION:
            raise JournalError(
                f"journal {self.path} has schema {found}, newer than this "
                f"bulkup knows ({SCHEMA_VERSION}); upgrade bulkup"
            )
        if found is None and db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise JournalError(f"{self.path} is an SQLite file but not a bulkup journal")
        if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise JournalError(f"journal {self.path} is damaged (integrity check failed)")
        if found is None:  # executescript commits first, so the script is its own transaction
            db.executescript(
                f"BEGIN; {_SCHEMA} INSERT OR IGNORE INTO meta VALUES "
                f"('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
            )
        elif found < SCHEMA_VERSION:
            self._migrate(found)

    def _migrate(self, found: int) -> None:
        """Bring an older journal to :data:`SCHEMA_VERSION` in one transaction (1 → 2: the
        closing state is new, existing values keep their meaning)."""
        with self._transaction():
            self._db.execute(
                "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),)
            )

    def _schema_version(self) -> int | None:
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
        ).fetchone()
        if not has_meta:
            return None
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or not str(row[0]).isdigit():
            raise JournalError(f"journal {self.path} has no valid schema version")
        return int(row[0])

    def _transaction(self) -> Any:
        return _Transaction(self._db)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # --- runs -----------------------------------------------------------------------------

    def describe(self, description: dict[str, Any]) -> None:
        """Record what this journal is for (server, company, roots)."""
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('target', ?)",
                (json.dumps(description, sort_keys=True),),
            )

    def target(self) -> dict[str, Any]:
        """What this journal is for, as :meth:`describe` recorded it (empty if never)."""
        row = self._db.execute("SELECT value FROM meta WHERE key='target'").fetchone()
        found = json.loads(row[0]) if row else {}
        return found if isinstance(found, dict) else {}

    def file_counts(self) -> dict[str, int]:
        """How many files the journal holds in each state (posted, confirmed, failed...)."""
        return dict(self._db.execute("SELECT state, count(*) FROM files GROUP BY state"))

    def begin_run(self, pid: int) -> int:
        """A new run; returns its id."""
        with self._transaction():
            cur = self._db.execute(
                "INSERT INTO runs (started_at, pid) VALUES (?, ?)", (self._clock(), pid)
            )
        return int(cur.lastrowid or 0)

    def end_run(self, run_id: int, summary: dict[str, Any], walk_complete: bool) -> None:
        """Record the run's summary and prune old runs."""
        with self._transaction():
            self._db.execute(
                "UPDATE runs SET ended_at=?, summary=?, walk_complete=? WHERE id=?",
                (self._clock(), json.dumps(summary), int(walk_complete), run_id),
            )
            self._prune()

    def _prune(self) -> None:
        row = self._db.execute(
            "SELECT id FROM runs ORDER BY id DESC LIMIT 1 OFFSET ?", (KEEP_RUNS,)
        ).fetchone()
        if row is not None:
            self._db.execute("DELETE FROM runs WHERE id <= ?", (row[0],))
            self._db.execute("DELETE FROM failures WHERE run_id <= ?", (row[0],))
            self._db.execute("DELETE FROM jobs WHERE run_id <= ? AND closed<>?", (row[0], JOB_OPEN))

    def recent_runs(self, limit: int = 10) -> list[dict[str, Any]]:
        """The latest runs, newest first, with their summaries."""
        rows = self._db.execute(
            "SELECT id, started_at, ended_at, pid, walk_complete, summary FROM runs "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "run": r[0],
                "started_at": r[1],
                "ended_at": r[2],
                "pid": r[3],
                "walk_complete": bool(r[4]),
                **(json.loads(r[5]) if r[5] else {}),
            }
            for r in rows
        ]

    def last_run_failures(self, limit: int = 100_000) -> list[dict[str, Any]]:
        """The failures of the most recent run that ended."""
        row = self._db.execute("SELECT max(id) FROM runs WHERE ended_at IS NOT NULL").fetchone()
        if row is None or row[0] is None:
            return []
        rows = self._db.execute(
            "SELECT path, target, reason FROM failures WHERE run_id=? LIMIT ?", (row[0], limit)
        ).fetchall()
        return [{"path": r[0], "target": r[1], "reason": r[2]} for r in rows]

    # --- files ----------------------------------------------------------------------------

    def lookup(self, targets: Sequence[str]) -> dict[str, Known]:
        """What the journal knows of these targets (one statement, one row back)."""
        (rows,) = self._db.execute(
            "SELECT json_group_array(json_array(target, state, acked_size, acked_mtime_ns, "
            "acked_sha256, sha256, sha_size, sha_mtime_ns, sha_inode)) FROM files "
            "WHERE target IN (SELECT value FROM json_each(?))",
            (_json(targets),),
        ).fetchone()
        return {
            row[0]: Known(
                state=row[1],
                acked_size=row[2],
                acked_mtime_ns=row[3],
                acked_sha256=row[4],
                sha256=row[5],
                sha_key=(row[6], row[7], row[8]),
            )
            for row in json.loads(rows)
        }

    def walked_changed(self, run_id: int, walked: Sequence[FileEntry]) -> list[int]:
        """The plain sync's whole question in one transaction: which of ``walked`` to send
        (new, never acknowledged, or size or mtime other than at the last acknowledgement),
        as indexes into ``walked``; the rest were unchanged. Every walked file the journal
        knows is marked seen by ``run_id`` (not gone). The comparison runs in SQLite, so an
        unchanged file costs no row sent back to Python: the nightly run that finds nothing
        to do reads one short list per chunk."""
        rows = _json([(e.target, e.size, e.mtime_ns) for e in walked])
        with self._transaction():
            self._db.execute(
                "UPDATE files SET seen_run=? WHERE target IN "
                "(SELECT json_extract(value, '$[0]') FROM json_each(?))",
                (run_id, rows),
            )
            (changed,) = self._db.execute(
                "SELECT json_group_array(w.key) FROM json_each(?) AS w "
                "LEFT JOIN files AS f ON f.target = json_extract(w.value, '$[0]') "
                "WHERE f.target IS NULL OR f.state NOT IN ('posted', 'confirmed') "
                "OR f.acked_size IS NOT json_extract(w.value, '$[1]') "
                "OR f.acked_mtime_ns IS NOT json_extract(w.value, '$[2]')",
                (rows,),
            ).fetchone()
        indexes: list[int] = json.loads(changed)
        return indexes

    def has_files(self) -> bool:
        """Whether any file was ever recorded (a first run need not look files up)."""
        return bool(self._db.execute("SELECT EXISTS (SELECT 1 FROM files)").fetchone()[0])

    def record_walked(
        self, run_id: int, known_seen: Sequence[FileEntry], hashes: dict[str, str]
    ) -> None:
        """Files of the journal this run walked past (so they are not gone), with their
        hashes cached; files new to the journal get their row when posted or failed."""
        with self._transaction():
            self._db.execute(
                "UPDATE files SET seen_run=? WHERE target IN (SELECT value FROM json_each(?))",
                (run_id, _json([e.target for e in known_seen])),
            )
            self._cache_hashes(known_seen, hashes)

    def _cache_hashes(self, entries: Iterable[FileEntry], hashes: dict[str, str]) -> None:
        rows = [
            (e.target, hashes[e.target], e.size, e.mtime_ns, e.inode)
            for e in entries
            if e.target in hashes
        ]
        if rows:
            self._db.execute(
                f"UPDATE files SET ({_COLUMNS_SHA}) = ({_columns(4, first=1)}) "
                "FROM json_each(?) WHERE files.target = json_extract(value, '$[0]')",
                (_json(rows),),
            )

    def record_posted(
        self, run_id: int, entries: Sequence[FileEntry], job_handle: str, hashes: dict[str, str]
    ) -> None:
        """The POST that carried these files was acknowledged (one transaction)."""
        now = self._clock()
        rows = [
            (e.target, e.path, e.size, e.mtime_ns, e.inode, hashes.get(e.target)) for e in entries
        ]
        with self._transaction():
            self._db.execute(
                "INSERT INTO files (target, source, state, acked_size, acked_mtime_ns, "
                "acked_inode, acked_sha256, job_handle, attempts, seen_run, run_id, "
                f"updated_at) SELECT {_columns(2)}, 'posted', {_columns(4, first=2)}, ?1, 1, "
                "?2, ?2, ?3 FROM json_each(?4) WHERE true "
                "ON CONFLICT(target) DO UPDATE SET state='posted', source=excluded.source, "
                "acked_size=excluded.acked_size, acked_mtime_ns=excluded.acked_mtime_ns, "
                "acked_inode=excluded.acked_inode, acked_sha256=excluded.acked_sha256, "
                "job_handle=excluded.job_handle, attempts=files.attempts + 1, "
                "last_error=NULL, seen_run=excluded.seen_run, run_id=excluded.run_id, "
                "updated_at=excluded.updated_at",
                (job_handle, run_id, now, _json(rows)),
            )
            self._cache_hashes(entries, hashes)
            self._db.execute("UPDATE jobs SET last_activity=? WHERE handle=?", (now, job_handle))

    def record_failed(self, run_id: int, failures: Iterable[FileFailure]) -> None:
        """Files that will not be delivered by this run (one transaction)."""
        now = self._clock()
        rows = list(failures)
        with self._transaction():
            self._db.executemany(
                "INSERT INTO failures VALUES (?, ?, ?, ?)",
                ((run_id, f.path, f.target, f.reason) for f in rows),
            )
            self._db.executemany(
                "INSERT INTO files (target, source, state, last_error, attempts, run_id, "
                "updated_at) VALUES (?, ?, 'failed', ?, 1, ?, ?) ON CONFLICT(target) DO "
                "UPDATE SET state='failed', last_error=excluded.last_error, "
                "attempts=files.attempts + 1, run_id=excluded.run_id, "
                "updated_at=excluded.updated_at",
                ((f.target, f.path, f.reason, run_id, now) for f in rows if f.target),
            )

    def posted_sources(self, job_handle: str, targets: Sequence[str]) -> dict[str, str]:
        """target → source path, for those of ``targets`` posted to ``job_handle``."""
        (found,) = self._db.execute(
            "SELECT json_group_object(target, source) FROM files WHERE job_handle=? AND "
            "target IN (SELECT value FROM json_each(?))",
            (job_handle, _json(targets)),
        ).fetchone()
        return dict(json.loads(found))

    def record_confirmed(self, targets: Sequence[str]) -> None:
        """The job log says these files became assets: one transaction."""
        now = self._clock()
        with self._transaction():
            self._db.execute(
                "UPDATE files SET state='confirmed', last_error=NULL, updated_at=? "
                "WHERE target IN (SELECT value FROM json_each(?))",
                (now, _json(targets)),
            )

    def jobs_with_unconfirmed(self, limit: int = 20) -> list[str]:
        """Jobs (newest first) that still have files posted but not confirmed."""
        rows = self._db.execute(
            "SELECT job_handle FROM files WHERE state='posted' AND job_handle IS NOT NULL "
            "GROUP BY job_handle ORDER BY max(updated_at) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [row[0] for row in rows]

    def count_unconfirmed(self, job_handle: str) -> int:
        """Files posted to the job that have no verdict yet."""
        row = self._db.execute(
            "SELECT count(*) FROM files WHERE job_handle=? AND state='posted'", (job_handle,)
        ).fetchone()
        return int(row[0])

    def gone(self, run_id: int, limit: int = 10_000) -> list[str]:
        """Acknowledged files this run's (complete) walk did not see: gone from disk."""
        rows = self._db.execute(
            "SELECT source FROM files WHERE (seen_run IS NULL OR seen_run < ?) AND state IN "
            "('posted', 'confirmed') ORDER BY source LIMIT ?",
            (run_id, limit),
        ).fetchall()
        return [r[0] for r in rows]

    # --- jobs -----------------------------------------------------------------------------

    def record_job_opened(
        self, run_id: int, handle: str, name: str, source_ip: str | None, params_digest: str
    ) -> None:
        """A job was opened by this run."""
        now = self._clock()
        with self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (handle, run_id, name, source_ip, params_digest, now, now),
            )

    def record_job_active(self, handle: str) -> None:
        """A POST of the job was acknowledged now."""
        with self._transaction():
            self._db.execute(
                "UPDATE jobs SET last_activity=? WHERE handle=?", (self._clock(), handle)
            )

    def record_job_closing(self, handle: str) -> None:
        """The job's endJob POST is about to be sent: from now on it is never resumed."""
        with self._transaction():
            self._db.execute("UPDATE jobs SET closed=? WHERE handle=?", (JOB_CLOSING, handle))

    def record_job_closed(self, handle: str) -> None:
        """The job's endJob POST was acknowledged (or the job is known closed)."""
        with self._transaction():
            self._db.execute("UPDATE jobs SET closed=? WHERE handle=?", (JOB_CLOSED, handle))

    def job_state(self, handle: str) -> int | None:
        """The job's state (:data:`JOB_OPEN`, :data:`JOB_CLOSING`, :data:`JOB_CLOSED`), or
        None when the journal does not know the job."""
        row = self._db.execute("SELECT closed FROM jobs WHERE handle=?", (handle,)).fetchone()
        return None if row is None else int(row[0])

    def resumable_job(
        self, *, source_ip: str | None, params_digest: str, within_s: float
    ) -> ResumableJob | None:
        """The newest open job with the same source address and options, active recently."""
        row = self._db.execute(
            "SELECT handle, name, last_activity, source_ip, params_digest FROM jobs "
            "WHERE closed=? ORDER BY last_activity DESC LIMIT 1",
            (JOB_OPEN,),
        ).fetchone()
        if row is None or row[3] != source_ip or row[4] != params_digest:
            return None
        if self._clock() - row[2] >= within_s:
            return None
        return ResumableJob(handle=row[0], name=row[1], last_activity=row[2])


_COLUMNS_SHA = "sha256, sha_size, sha_mtime_ns, sha_inode"


def _require_json(db: sqlite3.Connection, path: Path) -> None:
    try:
        db.execute("SELECT json_each.value FROM json_each('[1]')").fetchone()
    except sqlite3.OperationalError:
        raise JournalError(
            f"journal {path}: this Python's SQLite {sqlite3.sqlite_version} has "
            "no JSON functions (SQLite 3.38 or later has them built in); run "
            "with --no-journal or use a newer Python"
        ) from None


def _json(rows: Sequence[Any]) -> str:
    """Rows for ``json_each``: a whole batch is bound as one parameter, so a statement runs
    once per batch. (A statement per row gives up and retakes the GIL per row: beside a busy
    event loop that costs far more than the SQL itself; see benchmarks/README.md.)"""
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))


def _columns(count: int, first: int = 0) -> str:
    """``json_extract(value, '$[first]'), …``: columns of a ``json_each`` row."""
    return ", ".join(f"json_extract(value, '$[{i}]')" for i in range(first, first + count))


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def unusable_folder(path: Path, exc: OSError) -> JournalError:
    """The error for a journal or lock ``path`` whose folder cannot be used, and what to do."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno == errno.ENOSPC:
        advice = "free some space, or give --journal PATH on another disk"
    else:
        advice = (
            "give --journal PATH in a writable folder, set XDG_STATE_HOME to one, or "
            "--no-journal (no resume, no skipping of unchanged files)"
        )
    return JournalError(f"cannot use {path} ({reason}); {advice}")


def _as_os_error(exc: sqlite3.OperationalError) -> OSError:
    """SQLite's reason as an OSError for :func:`unusable_folder` (a full disk as ENOSPC)."""
    text = str(exc)
    full = "full" in text.lower()
    return OSError(errno.ENOSPC if full else errno.EIO, "disk full" if full else text)
