"""What the sender needs from a queue of events, durable or not.

Two stores implement :class:`Store`: the SQLite outbox (durable, shared by
every process on the host) and the bounded in-memory queue used with
``outbox=None``. The sender only speaks this protocol, so both get the same
retry, pause, lease and fencing behaviour.

Fencing: every claim stamps its rows with a *token* (the claiming sender's
identity plus a claim counter). An outcome is written only where the row
still carries that token, so a sender whose lease expired (it hung, or was
presumed dead) can never delete or reschedule a row another sender now owns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from roasproof._delivery._base import RejectedSummary

__all__ = ["DeadLetter", "LeaseHolder", "Pause", "Results", "Row", "Store"]


@dataclass(slots=True)
class Row:
    """A claimed event: what the sender needs to POST it and judge the outcome."""

    event_id: str
    body: bytes
    created_at: float
    attempts: int
    token: str


@dataclass(frozen=True, slots=True)
class Pause:
    """All delivery is paused: a bad API key (``auth``) or the plan ceiling (``quota``).

    ``key_fingerprint`` identifies the key that was refused (a short hash,
    never the key), so a process started with a new key does not inherit
    the old key's auth pause.
    """

    reason: str
    until: float
    since: float
    probes: int = 0
    message: str | None = None
    key_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the sender lease of an outbox (for ``roasproof outbox status``)."""

    owner: str
    pid: int
    hostname: str
    until: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A verdict that removes an event from the queue for good."""

    event_id: str
    token: str
    reason: str
    status_code: int | None = None
    field: str | None = None


@dataclass(slots=True)
class Results:
    """Outcomes gathered by the sender and written together in one transaction.

    ``acks``: (event_id, token) delivered; ``retries``: (attempts,
    next_attempt_at, last_error, event_id, token); ``releases``:
    (next_attempt_at, event_id, token) put back untouched (a pause, a stop);
    ``deads``: dead letters.
    """

    acks: list[tuple[str, str]] = field(default_factory=list)
    retries: list[tuple[int, float, str, str, str]] = field(default_factory=list)
    releases: list[tuple[float, str, str]] = field(default_factory=list)
    deads: list[DeadLetter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.acks) + len(self.retries) + len(self.releases) + len(self.deads)

    def clear(self) -> None:
        """Forget what was written."""
        self.acks.clear()
        self.retries.clear()
        self.releases.clear()
        self.deads.clear()


class Store(Protocol):
    """A queue of events with leases, fenced outcomes, a pause flag and a sender lease."""

    durable: bool

    def enqueue(self, event_id: str, event: str, body: bytes, now: float) -> bool:
        """Add an event; ``False`` if the event_id is already queued (or the queue is full)."""
        ...

    def record_rejected(self, summary: RejectedSummary) -> None:
        """Keep the non-PII summary of an event that failed validation."""
        ...

    def claim(self, token: str, limit: int, now: float, lease: float) -> list[Row]:
        """Lease up to ``limit`` due events to ``token`` for ``lease`` seconds."""
        ...

    def apply(self, results: Results, now: float) -> None:
        """Write outcomes, each only where the row still carries the claiming token."""
        ...

    def expire(self, cutoff: float, now: float) -> list[str]:
        """Dead-letter (reason ``expired``) unleased events created before ``cutoff``."""
        ...

    def checkpoint(self) -> None:
        """Fold written changes into the main file, off the ``track()`` path."""
        ...

    def next_due(self) -> float | None:
        """When the earliest event becomes due (or its lease ends); None when empty."""
        ...

    def changed(self) -> bool:
        """Whether another connection wrote since the last call (new work may exist)."""
        ...

    def mark(self) -> int:
        """A high-water mark of what is queued now, for :meth:`pending_through`."""
        ...

    def pending_through(self, mark: int) -> bool:
        """Whether any event queued at or before ``mark`` is still waiting."""
        ...

    def hurry(self, mark: int, now: float) -> int:
        """Make unleased events up to ``mark`` due now (flush/drain skip their backoff)."""
        ...

    def count(self) -> int:
        """How many events are waiting (leased or not)."""
        ...

    def get_pause(self) -> Pause | None:
        """The current pause, if any."""
        ...

    def set_pause(self, pause: Pause | None) -> None:
        """Start, extend or (with None) end the pause."""
        ...

    def acquire_lease(self, owner: str, ttl: float, now: float) -> bool:
        """Take or renew the sender lease; ``False`` while another owner holds it."""
        ...

    def release_lease(self, owner: str) -> None:
        """Give the sender lease up, if ``owner`` holds it."""
        ...

    def prepare_fork(self) -> None:
        """Hold the store's lock so no I/O is half done when the process forks."""
        ...

    def after_fork(self, child: bool) -> None:
        """Release the lock (parent) or drop every inherited resource unused (child)."""
        ...

    def close(self) -> None:
        """Close this process's connections; what is queued stays queued (if durable)."""
        ...
