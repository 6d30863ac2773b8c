"""Looking into an outbox from outside the application: the ``roasproof outbox`` queries.

Read-mostly and safe to run while the application writes and delivers:
every write (requeueing or purging dead letters, ending a pause) is one
immediate transaction, and nothing here touches rows under a live lease.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from roasproof._delivery import _election
from roasproof._delivery._journal import read_segments, unmoved
from roasproof._delivery._schema import immediate, moved_to, open_existing
from roasproof._delivery._store import LeaseHolder, Pause

__all__ = ["DeadRow", "OutboxAdmin", "OutboxStatus", "RejectedRow"]


@contextmanager
def _snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """One read transaction: every query inside sees the same state of the outbox."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


_REQUEUE = (
    "INSERT OR IGNORE INTO pending (event_id, event, body, created_at, attempts, "
    "next_attempt_at) SELECT event_id, event, body, ?, 0, ? FROM dead"
)


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    """Counts by state, the oldest pending event, the pause and the elected sender."""

    path: Path
    size_bytes: int
    due: int
    waiting: int
    leased: int
    #: written by a running process's track() and not yet moved into the outbox
    journaled: int
    dead: int
    rejected: int
    oldest_created_at: float | None
    pause: Pause | None
    sender: LeaseHolder | None

    @property
    def pending(self) -> int:
        """Every event still to deliver, whatever its state."""
        return self.due + self.waiting + self.leased + self.journaled

    def as_dict(self, now: float) -> dict[str, object]:
        """A JSON-ready view (``roasproof outbox status --json``)."""
        oldest = self.oldest_created_at
        return {
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "pending": self.pending,
            "due": self.due,
            "waiting_to_retry": self.waiting,
            "being_sent": self.leased,
            "in_journals": self.journaled,
            "dead": self.dead,
            "rejected": self.rejected,
            "oldest_pending_age_s": None if oldest is None else round(now - oldest, 3),
            "pause": None
            if self.pause is None
            else {
                "reason": self.pause.reason,
                "until": self.pause.until,
                "since": self.pause.since,
                "message": self.pause.message,
            },
            "sender": None
            if self.sender is None
            else {
                "owner": self.sender.owner,
                "pid": self.sender.pid,
                "hostname": self.sender.hostname,
                "lease_until": self.sender.until,
            },
        }


@dataclass(frozen=True, slots=True)
class DeadRow:
    """One dead letter: an event the API refused for good, or that expired."""

    event_id: str
    event: str
    created_at: float
    attempts: int
    dead_at: float
    status_code: int | None
    field: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """The summary of an event ``track()`` refused as invalid (no PII)."""

    at: float
    event: str | None
    event_id: str | None
    fields: tuple[str, ...]
    message: str


class OutboxAdmin:
    """Queries and maintenance on the outbox at ``path`` (which must exist)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = open_existing(path)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _one(self, sql: str, *params: object) -> int:
        return int(self._conn.execute(sql, params).fetchone()[0] or 0)

    def status(self, now: float | None = None) -> OutboxStatus:
        """Counts by state and the rest of ``roasproof outbox status``."""
        now = time.time() if now is None else now
        segments = read_segments(self.path)  # before the snapshot: see read_segments
        with _snapshot(self._conn):
            return self._status(now, segments)

    def _status(self, now: float, segments: dict[str, bytes]) -> OutboxStatus:
        journaled = [
            record
            for name, data in segments.items()
            for record in unmoved(name, data, moved_to(self._conn, name))
        ]
        leased = self._one(
            "SELECT count(*) FROM pending WHERE lease_owner IS NOT NULL AND lease_until > ?", now
        )
        due = self._one("SELECT count(*) FROM pending WHERE next_attempt_at <= ?", now)
        total = self._one("SELECT count(*) FROM pending")
        oldest = self._conn.execute("SELECT min(created_at) FROM pending").fetchone()[0]
        row = self._conn.execute(
            "SELECT reason, until, since, probes, message, key_fingerprint FROM pause"
        ).fetchone()
        pause = None if row is None else Pause(row[0], row[1], row[2], row[3], row[4], row[5])
        sender = _election.holder(self._conn)
        if journaled:
            first = min(record[3] for record in journaled)
            oldest = first if oldest is None else min(float(oldest), first)
        return OutboxStatus(
            path=self.path,
            size_bytes=sum(map(len, segments.values()))
            + sum(
                p.stat().st_size
                for p in (self.path, self.path.with_name(self.path.name + "-wal"))
                if p.exists()
            ),
            due=due,
            waiting=max(total - due - leased, 0),
            leased=leased,
            journaled=len(journaled),
            dead=self._one("SELECT count(*) FROM dead"),
            rejected=self._one("SELECT count(*) FROM rejected"),
            oldest_created_at=None if oldest is None else float(oldest),
            pause=pause,
            sender=sender if sender is not None and sender.until > now else None,
        )

    def dead(self, limit: int = 50, event_ids: Sequence[str] = ()) -> list[DeadRow]:
        """Dead letters, newest first (or the ones named)."""
        columns = "event_id, event, created_at, attempts, dead_at, status_code, field, reason"
        if event_ids:
            marks = ",".join("?" * len(event_ids))
            sql = f"SELECT {columns} FROM dead WHERE event_id IN ({marks}) ORDER BY dead_at DESC"  # noqa: S608 - placeholders only
            rows = self._conn.execute(sql, tuple(event_ids)).fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {columns} FROM dead ORDER BY dead_at DESC LIMIT ?",  # noqa: S608 - constant
                (limit,),
            ).fetchall()
        return [DeadRow(*row) for row in rows]

    def rejected(self, limit: int = 50) -> list[RejectedRow]:
        """Summaries of invalid events, newest first."""
        rows = self._conn.execute(
            "SELECT at, event, event_id, fields, message FROM rejected ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [RejectedRow(r[0], r[1], r[2], tuple(json.loads(r[3])), r[4]) for r in rows]

    def retry(self, event_ids: Sequence[str] = (), now: float | None = None) -> int:
        """Requeue dead letters (all, or the ones named) as fresh events; how many.

        They get a new ``max_event_age`` window and zero attempts: retrying is
        a deliberate act, after the cause was fixed.
        """
        now = time.time() if now is None else now
        where, params = self._which(event_ids)
        with immediate(self._conn) as conn:
            cursor = conn.execute(_REQUEUE + where, (now, now, *params))
            conn.execute(f"DELETE FROM dead{where}", params)  # noqa: S608 - placeholders only
        return cursor.rowcount

    def purge_dead(self, event_ids: Sequence[str] = ()) -> int:
        """Delete dead letters (all, or the ones named) for good; how many."""
        where, params = self._which(event_ids)
        with immediate(self._conn) as conn:
            cursor = conn.execute(f"DELETE FROM dead{where}", params)  # noqa: S608
        return cursor.rowcount

    def resume(self) -> bool:
        """End a pause now (after fixing the key or the plan); whether one was set."""
        with immediate(self._conn) as conn:
            cursor = conn.execute("DELETE FROM pause")
        return cursor.rowcount > 0

    @staticmethod
    def _which(event_ids: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        if not event_ids:
            return "", ()
        return f" WHERE event_id IN ({','.join('?' * len(event_ids))})", tuple(event_ids)
