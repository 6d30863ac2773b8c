"""The durable store: a SQLite outbox every process of the application shares.

Events arrive in batches from the journals (``_journal.py``): one
transaction of ``INSERT OR IGNORE`` per batch, which also records how far
the batch's segment has been moved. A process without a running sender
commits a single event the same way, in autocommit, on a connection kept
per thread (and per pid), through SQLite's prepared-statement cache.

The sender claims due rows in one ``BEGIN IMMEDIATE`` statement that stamps
them with a lease token and pushes their ``next_attempt_at`` to the lease
end: a leased row is simply "not due" until its lease runs out, so the rows
of a sender that died come back by themselves, and one index on
``next_attempt_at`` serves every claim. Outcomes are written in groups,
each fenced by the token.

A process-wide lock guards every SQLite call so that :meth:`prepare_fork`
can make sure no connection is mid-statement when the process forks (a
child would otherwise inherit SQLite's internal mutexes locked).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from roasproof._delivery import _election
from roasproof._delivery._base import RejectedSummary
from roasproof._delivery._fork import abandon
from roasproof._delivery._journal import Record
from roasproof._delivery._schema import connect, immediate, moved_to
from roasproof._delivery._store import Pause, Results, Row

__all__ = ["SQLiteStore"]

_INSERT = (
    "INSERT OR IGNORE INTO pending (event_id, event, body, created_at, next_attempt_at) "
    "VALUES (?, ?, ?, ?, ?)"
)
_CLAIM = (
    "UPDATE pending SET lease_owner = ?, lease_until = ?, next_attempt_at = ? "
    "WHERE rowid IN (SELECT rowid FROM pending WHERE next_attempt_at <= ? "
    "ORDER BY next_attempt_at LIMIT ?) "
    "RETURNING event_id, body, created_at, attempts"
)
_SELECT_DUE = (
    "SELECT rowid, event_id, body, created_at, attempts FROM pending "
    "WHERE next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?"
)
_LEASE_ROW = (
    "UPDATE pending SET lease_owner = ?, lease_until = ?, next_attempt_at = ? WHERE rowid = ?"
)
_ACK = "DELETE FROM pending WHERE event_id = ? AND lease_owner = ?"
_RETRY = (
    "UPDATE pending SET attempts = ?, next_attempt_at = ?, last_error = ?, "
    "lease_owner = NULL, lease_until = NULL WHERE event_id = ? AND lease_owner = ?"
)
_RELEASE = (
    "UPDATE pending SET next_attempt_at = ?, lease_owner = NULL, lease_until = NULL "
    "WHERE event_id = ? AND lease_owner = ?"
)
_TO_DEAD = (
    "INSERT OR REPLACE INTO dead (event_id, event, body, created_at, attempts, dead_at, "
    "status_code, field, reason) SELECT event_id, event, body, created_at, attempts, ?, ?, ?, ? "
    "FROM pending WHERE event_id = ?"
)
_FENCE = " AND lease_owner = ?"
_DELETE = "DELETE FROM pending WHERE event_id = ?"
#: Expiry looks at the oldest rows only (insertion order ~ creation order), so a
#: sweep never scans a million-row backlog while holding anything.
_EXPIRED = (
    "SELECT event_id FROM (SELECT event_id, created_at, next_attempt_at, lease_owner "
    "FROM pending ORDER BY rowid LIMIT 5000) "
    "WHERE created_at < ? AND (lease_owner IS NULL OR next_attempt_at <= ?) LIMIT 500"
)
_KEEP_REJECTED = 1000
_MOVED = "INSERT OR REPLACE INTO ingested (segment, moved_to, at) VALUES (?, ?, ?)"
_FORGET = "DELETE FROM ingested WHERE segment = ?"
_FORGET_OLD = "DELETE FROM ingested WHERE at < ?"
#: A segment's note outlives any event in it (max_event_age is at most days).
_KEEP_MOVED = 30 * 86400.0
#: RETURNING arrived in SQLite 3.35; older libraries claim with SELECT + UPDATE.
HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


class SQLiteStore:
    """The outbox file at ``path``; see the module docstring."""

    durable = True

    def __init__(self, path: Path, durability: str = "normal") -> None:
        self.path = path
        self.durability = durability
        self._lock = threading.RLock()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._data_version: int | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self.returning = HAS_RETURNING

    # -- connections -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        try:
            return self._local.conn  # type: ignore[no-any-return]
        except AttributeError:
            conn = connect(self.path, self.durability)
            self._local.conn = conn
            self._connections.append(conn)
            return conn

    def prepare_fork(self) -> None:
        """Wait until no SQLite call of ours is running, and hold it so through the fork."""
        self._lock.acquire()
        self._checkpoint_lock.acquire()

    def after_fork(self, child: bool) -> None:
        """Parent: let calls run again. Child: start over with fresh connections and lock.

        The child never closes (nor uses) an inherited connection: closing
        one could checkpoint or unlink files the parent is still using.
        """
        if not child:
            self._checkpoint_lock.release()
            self._lock.release()
            return
        abandon(self._connections, self._local, self._lock, self._checkpointer)
        self._lock = threading.RLock()
        self._checkpoint_lock = threading.Lock()
        self._local = threading.local()
        self._connections = []
        self._checkpointer = None
        self._data_version = None

    def close(self) -> None:
        """Close every connection this process opened; the next call reopens one."""
        with self._lock, self._checkpoint_lock:
            connections, self._connections = self._connections, []
            if self._checkpointer is not None:
                connections.append(self._checkpointer)
                self._checkpointer = None
            self._local = threading.local()
            self._data_version = None
            for conn in connections:
                conn.close()

    # -- the track() path ----------------------------------------------------

    def enqueue(self, event_id: str, event: str, body: bytes, now: float) -> bool:
        """One INSERT OR IGNORE, committed; ``False`` if the event_id is already queued."""
        with self._lock:
            cursor = self._conn().execute(_INSERT, (event_id, event, body, now, now))
        return cursor.rowcount == 1

    def ingest(
        self, records: Sequence[Record], segment: str, offset: int, forget: Sequence[str] = ()
    ) -> int:
        """Insert a journal batch in one transaction; how many were new (not duplicates).

        The same transaction notes that ``segment`` was moved up to byte
        ``offset``, so a segment is never moved twice, and drops the notes of
        the ``forget`` segments (deleted since) and of anything past any
        event's age.
        """
        with self._lock:
            conn = self._conn()
            with immediate(conn):
                before = conn.total_changes
                conn.executemany(_INSERT, [(e, name, b, at, at) for e, name, b, at in records])
                added = conn.total_changes - before
                conn.execute(_MOVED, (segment, offset, time.time()))
                if forget:
                    conn.executemany(_FORGET, [(name,) for name in forget])
                conn.execute(_FORGET_OLD, (time.time() - _KEEP_MOVED,))
        return added

    def ingested_offset(self, segment: str) -> int:
        """How far ``segment`` was already moved (0: not at all)."""
        with self._lock:
            return moved_to(self._conn(), segment)

    def record_rejected(self, summary: RejectedSummary) -> None:
        """Keep the summary (no PII by construction) and only the latest 1,000 of them."""
        fields = json.dumps(list(summary.fields))
        with self._lock:
            conn = self._conn()
            with immediate(conn):
                conn.execute(
                    "INSERT INTO rejected (at, event, event_id, fields, message) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (summary.at, summary.event, summary.event_id, fields, summary.message),
                )
                conn.execute(
                    "DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?",
                    (_KEEP_REJECTED,),
                )

    # -- the sender's side -----------------------------------------------------

    def claim(self, token: str, limit: int, now: float, lease: float) -> list[Row]:
        """Lease up to ``limit`` due rows, oldest due first, in one immediate transaction."""
        until = now + lease
        with self._lock:
            conn = self._conn()
            with immediate(conn):
                if self.returning:
                    found = conn.execute(_CLAIM, (token, until, until, now, limit)).fetchall()
                else:
                    due = conn.execute(_SELECT_DUE, (now, limit)).fetchall()
                    conn.executemany(_LEASE_ROW, [(token, until, until, row[0]) for row in due])
                    found = [row[1:] for row in due]
        return [Row(str(r[0]), bytes(r[1]), float(r[2]), int(r[3]), token) for r in found]

    def apply(self, results: Results, now: float) -> None:
        """Write every outcome in one transaction; rows no longer ours are left alone."""
        with self._lock:
            conn = self._conn()
            with immediate(conn):
                if results.acks:
                    conn.executemany(_ACK, results.acks)
                if results.retries:
                    conn.executemany(_RETRY, results.retries)
                if results.releases:
                    conn.executemany(_RELEASE, results.releases)
                for dead in results.deads:
                    values = (now, dead.status_code, dead.field, dead.reason, dead.event_id)
                    conn.execute(_TO_DEAD + _FENCE, (*values, dead.token))
                    conn.execute(_DELETE + _FENCE, (dead.event_id, dead.token))

    def expire(self, cutoff: float, now: float) -> list[str]:
        """Move unleased rows created before ``cutoff`` to the dead letters as ``expired``."""
        with self._lock:
            conn = self._conn()
            with immediate(conn):
                ids = [str(r[0]) for r in conn.execute(_EXPIRED, (cutoff, now)).fetchall()]
                for event_id in ids:  # checked in this same transaction: no fence needed
                    conn.execute(_TO_DEAD, (now, None, None, "expired", event_id))
                    conn.execute(_DELETE, (event_id,))
        return ids

    def checkpoint(self) -> None:
        """Copy the WAL into the database (PASSIVE: never waits for, nor blocks, writers).

        Runs on its own connection under its own lock, so ``track()`` commits
        proceed meanwhile: the copy and the database fsync stay off their path.
        """
        with self._checkpoint_lock:
            if self._checkpointer is None:
                self._checkpointer = connect(self.path, self.durability)
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def next_due(self) -> float | None:
        """The earliest ``next_attempt_at`` (an index lookup)."""
        with self._lock:
            row = self._conn().execute("SELECT min(next_attempt_at) FROM pending").fetchone()
        return None if row[0] is None else float(row[0])

    def changed(self) -> bool:
        """``PRAGMA data_version`` moved: some other connection committed since last time."""
        with self._lock:
            version = int(self._conn().execute("PRAGMA data_version").fetchone()[0])
        changed = version != self._data_version
        self._data_version = version
        return changed

    def mark(self) -> int:
        """The highest rowid queued now: everything at or below it was queued before."""
        with self._lock:
            row = self._conn().execute("SELECT max(rowid) FROM pending").fetchone()
        return 0 if row[0] is None else int(row[0])

    def pending_through(self, mark: int) -> bool:
        """Whether a row at or below ``mark`` is still queued."""
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT 1 FROM pending WHERE rowid <= ? LIMIT 1", (mark,))
                .fetchone()
            )
        return row is not None

    def hurry(self, mark: int, now: float) -> int:
        """Cancel the backoff of unleased rows up to ``mark`` (for flush and drain)."""
        with self._lock:
            cursor = self._conn().execute(
                "UPDATE pending SET next_attempt_at = ? "
                "WHERE rowid <= ? AND lease_owner IS NULL AND next_attempt_at > ?",
                (now, mark, now),
            )
        return cursor.rowcount

    def count(self) -> int:
        """How many rows are queued."""
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM pending").fetchone()[0])

    # -- pause and lease ---------------------------------------------------------

    def get_pause(self) -> Pause | None:
        """The pause row, shared by every process using the outbox."""
        with self._lock:
            row = (
                self._conn()
                .execute("SELECT reason, until, since, probes, message, key_fingerprint FROM pause")
                .fetchone()
            )
        if row is None:
            return None
        return Pause(str(row[0]), float(row[1]), float(row[2]), int(row[3]), row[4], row[5])

    def set_pause(self, pause: Pause | None) -> None:
        """Write (or clear) the pause row."""
        with self._lock:
            conn = self._conn()
            if pause is None:
                conn.execute("DELETE FROM pause")
                return
            conn.execute(
                "INSERT OR REPLACE INTO pause "
                "(id, reason, until, since, probes, message, key_fingerprint) "
                "VALUES (1, ?, ?, ?, ?, ?, ?)",
                (
                    pause.reason,
                    pause.until,
                    pause.since,
                    pause.probes,
                    pause.message,
                    pause.key_fingerprint,
                ),
            )

    def acquire_lease(self, owner: str, ttl: float, now: float) -> bool:
        """See :func:`roasproof._delivery._election.acquire`."""
        with self._lock:
            return _election.acquire(self._conn(), owner, ttl, now)

    def release_lease(self, owner: str) -> None:
        """See :func:`roasproof._delivery._election.release`."""
        with self._lock:
            _election.release(self._conn(), owner)
