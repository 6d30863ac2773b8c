"""The outbox file: how it is opened, and its versioned schema.

The file is created with mode 0600 (SQLite gives its ``-wal`` and ``-shm``
companions the same mode) in a directory created 0700: it holds hashed
identifiers, and nobody else on the host needs to read them.

``journal_mode=WAL`` lets every process of an application write while the
sender reads; ``synchronous=NORMAL`` makes each committed ``track()``
survive a crash or ``kill -9`` of the process (``durability="power"``
selects ``FULL``, which also survives power loss, at about 5x the commit
cost). On filesystems where WAL cannot work (NFS, some container mounts)
SQLite silently keeps its rollback journal; we say so loudly, since every
process must then be on one host and commits get slower.

The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` holds one
entry per version step and runs in an immediate transaction, so two
processes opening a fresh file at once migrate it exactly once.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from roasproof.errors import ConfigurationError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "connect",
    "immediate",
    "migrate",
    "moved_to",
    "open_existing",
]

_log = logging.getLogger("roasproof")

#: One tuple of statements per version step: MIGRATIONS[n] takes a file from n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE pending (
            event_id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            body BLOB NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            lease_owner TEXT,
            lease_until REAL,
            last_error TEXT
        )""",
        # Claims read rows in due order; a leased row is due again when its lease ends.
        "CREATE INDEX pending_due ON pending (next_attempt_at)",
        """CREATE TABLE dead (
            event_id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            body BLOB NOT NULL,
            created_at REAL NOT NULL,
            attempts INTEGER NOT NULL,
            dead_at REAL NOT NULL,
            status_code INTEGER,
            field TEXT,
            reason TEXT NOT NULL
        )""",
        """CREATE TABLE rejected (
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            event TEXT,
            event_id TEXT,
            fields TEXT NOT NULL,
            message TEXT NOT NULL
        )""",
        """CREATE TABLE sender_lease (
            name TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            pid INTEGER NOT NULL,
            hostname TEXT NOT NULL,
            until REAL NOT NULL
        )""",
        """CREATE TABLE pause (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            reason TEXT NOT NULL,
            until REAL NOT NULL,
            since REAL NOT NULL,
            probes INTEGER NOT NULL DEFAULT 0,
            message TEXT,
            key_fingerprint TEXT
        )""",
    ),
    (
        # How far each journal segment has been moved into ``pending`` (see _journal.py).
        """CREATE TABLE ingested (
            segment TEXT PRIMARY KEY,
            moved_to INTEGER NOT NULL,
            at REAL NOT NULL
        )""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
#: WAL pages after which any commit checkpoints (the sender normally does it first).
AUTOCHECKPOINT_PAGES = 20_000
#: How long a statement waits for another process's write lock before failing.
BUSY_TIMEOUT = 5.0
_WAL_WARNED: set[str] = set()


def _create_private(path: Path) -> None:
    """Create the file (and its directory) readable by this user only, if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)


def connect(path: Path, durability: str = "normal") -> sqlite3.Connection:
    """Open (creating and migrating if needed) the outbox at ``path``."""
    try:
        _create_private(path)
    except OSError as exc:
        raise ConfigurationError(
            f"invalid roasproof setting 'outbox' (argument outbox=, environment variable "
            f"ROASPROOF_OUTBOX): cannot create {str(path)!r} ({exc.strerror}). Fix: point it "
            "at a writable path on a local disk, or pass outbox=None for a non-durable queue"
        ) from exc
    conn = _open(path)
    mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
    if mode != "wal" and str(path) not in _WAL_WARNED:
        _WAL_WARNED.add(str(path))
        _log.error(
            "roasproof outbox %s cannot use WAL mode on this filesystem (journal mode %r): "
            "events stay durable but commits are slower; put the outbox on a local disk "
            "(ROASPROOF_OUTBOX), never on NFS or a network share",
            path,
            mode,
        )
    sync = "FULL" if durability == "power" else "NORMAL"
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute("PRAGMA journal_size_limit=67108864")
    # The sender checkpoints on its own connection (see SQLiteStore.checkpoint), so a
    # track() commit never pays for copying the WAL and fsyncing the database; this
    # high threshold is only the safety net for when no process runs a sender.
    conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    migrate(conn, path)
    return conn


def open_existing(path: Path) -> sqlite3.Connection:
    """Open an outbox for inspection (the CLI); never creates a file."""
    if not path.is_file():
        raise FileNotFoundError(f"no roasproof outbox at {str(path)!r}")
    conn = _open(path)
    migrate(conn, path)
    return conn


def _open(path: Path) -> sqlite3.Connection:
    # Autocommit (isolation_level=None): one INSERT is one transaction, and
    # multi-statement writes say BEGIN IMMEDIATE themselves.
    return sqlite3.connect(
        path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
    )


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema to :data:`SCHEMA_VERSION`; refuse a file from a newer release."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        conn.close()
        raise ConfigurationError(
            f"the roasproof outbox {str(path)!r} has schema version {version}, newer than this "
            f"release understands ({SCHEMA_VERSION}). Fix: upgrade roasproof in every process "
            "sharing the outbox, or point ROASPROOF_OUTBOX at another file"
        )
    with immediate(conn):
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < SCHEMA_VERSION:  # another process may have migrated meanwhile
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def moved_to(conn: sqlite3.Connection, segment: str) -> int:
    """How far the journal ``segment`` has been moved into ``pending`` (0: not at all)."""
    row = conn.execute("SELECT moved_to FROM ingested WHERE segment = ?", (segment,)).fetchone()
    return 0 if row is None else int(row[0])


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` transaction: committed, or rolled back on any error.

    Immediate, because in WAL mode a transaction that starts as a reader and
    later writes can fail with SQLITE_BUSY without the busy handler waiting.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
