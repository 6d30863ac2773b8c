"""Where the emulator keeps what it received: SQLite, in memory by default.

One implementation serves both modes: ``":memory:"`` (the default, gone when
the process ends) and a file path (``--db PATH``, kept across restarts). Rows
hold the already-validated records, so by construction they carry hashes, never
a plaintext email, phone or external_id; the raw request body is never stored.

The store is shared between the server thread and whoever inspects it (a test,
the CLI), so every operation takes one lock; the connection allows use from
several threads for the same reason.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from roasproof._payload import encode_payload

__all__ = ["Store"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    duplicate INTEGER NOT NULL,
    billable INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_id ON events (event_id, duplicate);
CREATE TABLE IF NOT EXISTS visitors (
    visitor_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class Store:
    """Events, visitors and counters of one emulated workspace.

    ``path`` is a SQLite file, or ``":memory:"`` (default) for a store that
    lives as long as the object.
    """

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the lock and one SQLite transaction: check-then-insert stays atomic."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the database; the object must not be used afterwards."""
        with self._lock:
            self._db.close()

    # events -----------------------------------------------------------------

    def add_event(self, record: dict[str, Any]) -> int:
        """Store one received event; returns its sequence number."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO events (event_id, event, duplicate, billable, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    record["event_id"],
                    record["event"],
                    int(record["duplicate"]),
                    int(record["billable"]),
                    _dump(record),
                ),
            )
        return int(cursor.lastrowid or 0)

    def original(self, event_id: str) -> dict[str, Any] | None:
        """The first (non-duplicate) record with this event_id, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT seq, record FROM events WHERE event_id = ? AND duplicate = 0", (event_id,)
            ).fetchone()
        return None if row is None else _event(row)

    def events(
        self,
        *,
        event_id: str | None = None,
        event: str | None = None,
        duplicates: bool = True,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Received events, oldest first, optionally filtered; ``limit`` keeps the newest."""
        clauses, params = [], []
        for column, wanted in (("event_id", event_id), ("event", event)):
            if wanted is not None:
                clauses.append(f"{column} = ?")
                params.append(wanted)
        if not duplicates:
            clauses.append("duplicate = 0")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        query = f"SELECT seq, record FROM events{where} ORDER BY seq DESC"  # noqa: S608 - fixed columns
        if limit is not None:
            query += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(query, params).fetchall()
        return [_event(row) for row in reversed(rows)]

    def billable_count(self) -> int:
        """Billable conversions counted so far: duplicates never count."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM events WHERE billable = 1 AND duplicate = 0"
            ).fetchone()
        return int(row[0])

    # visitors ---------------------------------------------------------------

    def visitor(self, visitor_id: str) -> dict[str, Any] | None:
        """What the tracking script recorded for this visitor, if anything."""
        with self._lock:
            row = self._db.execute(
                "SELECT record FROM visitors WHERE visitor_id = ?", (visitor_id,)
            ).fetchone()
        return None if row is None else _load(row[0])

    def save_visitor(self, visitor_id: str, record: dict[str, Any]) -> None:
        """Insert or replace the visitor's record."""
        with self._lock:
            self._db.execute(
                "INSERT INTO visitors (visitor_id, record) VALUES (?, ?) "
                "ON CONFLICT (visitor_id) DO UPDATE SET record = excluded.record",
                (visitor_id, _dump(record)),
            )

    def visitors(self) -> list[dict[str, Any]]:
        """Every visitor record, in no particular order."""
        with self._lock:
            rows = self._db.execute("SELECT record FROM visitors").fetchall()
        return [_load(row[0]) for row in rows]

    # counters ---------------------------------------------------------------

    def increment(self, name: str, by: int = 1) -> None:
        """Add ``by`` to a named counter (created at zero)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (name, by),
            )

    def counters(self) -> dict[str, int]:
        """Every named counter."""
        with self._lock:
            rows = self._db.execute("SELECT name, value FROM counters").fetchall()
        return {str(name): int(value) for name, value in rows}

    def clear(self) -> None:
        """Forget everything: events, visitors and counters."""
        with self.transaction():
            for table in ("events", "visitors", "counters"):
                self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self._db.execute("DELETE FROM sqlite_sequence")  # numbering starts again at 1


def _dump(record: dict[str, Any]) -> str:
    """Compact JSON; a Decimal value is written exactly (249.00 stays 249.00)."""
    return encode_payload(record).decode()


def _load(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return value


def _event(row: tuple[int, str]) -> dict[str, Any]:
    """An event record with its sequence number first."""
    return {"seq": row[0]} | _load(row[1])
