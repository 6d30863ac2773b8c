"""Which process sends: one elected sender per outbox file, through a renewable lease.

Every gunicorn/uvicorn/uwsgi worker writes to the same outbox, but by default
only one of them delivers. That keeps one warm keep-alive pool and one
in-flight limit per host instead of workers x max_in_flight connections,
and gives the API a single, well-behaved client.

The lease is one row (``sender_lease``) holding the owner's identity and an
expiry. The holder renews it every few seconds; any other sender takes it
over once it has expired, so a ``kill -9``-ed leader is replaced within one
lease period, and the rows it had claimed come back when their own leases
end. Reads and writes of the row happen in ``BEGIN IMMEDIATE`` transactions,
so two candidates can never both win.

Expiry (not a pid check) decides: containers sharing a volume can see the
same hostname with different pid namespaces, where "is that pid alive?"
would give wrong answers.
"""

from __future__ import annotations

import os
import socket
import sqlite3

from roasproof._delivery._schema import immediate
from roasproof._delivery._store import LeaseHolder

__all__ = ["LEASE_NAME", "acquire", "holder", "new_owner", "release"]

LEASE_NAME = "sender"


def new_owner() -> str:
    """A unique identity for one sender incarnation: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def acquire(conn: sqlite3.Connection, owner: str, ttl: float, now: float) -> bool:
    """Take the lease if it is free or expired, or renew it if ``owner`` holds it."""
    with immediate(conn):
        row = conn.execute(
            "SELECT owner, until FROM sender_lease WHERE name = ?", (LEASE_NAME,)
        ).fetchone()
        won = row is None or row[0] == owner or float(row[1]) <= now
        if won:
            conn.execute(
                "INSERT OR REPLACE INTO sender_lease (name, owner, pid, hostname, until) "
                "VALUES (?, ?, ?, ?, ?)",
                (LEASE_NAME, owner, os.getpid(), socket.gethostname(), now + ttl),
            )
    return won


def release(conn: sqlite3.Connection, owner: str) -> None:
    """Give the lease up (on close), so the next sender need not wait for it to expire."""
    conn.execute("DELETE FROM sender_lease WHERE name = ? AND owner = ?", (LEASE_NAME, owner))


def holder(conn: sqlite3.Connection) -> LeaseHolder | None:
    """The current lease row, expired or not."""
    row = conn.execute(
        "SELECT owner, pid, hostname, until FROM sender_lease WHERE name = ?", (LEASE_NAME,)
    ).fetchone()
    if row is None:
        return None
    return LeaseHolder(owner=row[0], pid=int(row[1]), hostname=row[2], until=float(row[3]))
