"""The in-memory queue behind ``outbox=None``: same rules, no durability.

For serverless functions without a writable disk, and for tests. Events live
in this process only: a crash, ``kill -9`` or the end of the process loses
whatever is still queued, which is why it is bounded (a full queue refuses
new events loudly rather than growing until the process is killed) and why
the docs tell serverless users to ``flush()`` before returning.

It implements the same :class:`~roasproof._delivery._store.Store` protocol as
the SQLite outbox (leases, fencing tokens, a due-time heap), so the sender's
retry, pause and backoff behaviour is identical. After a fork the child
starts empty: the parent still holds, and delivers, what was queued.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections import deque
from dataclasses import dataclass

from roasproof._delivery._base import RejectedSummary
from roasproof._delivery._store import Pause, Results, Row

__all__ = ["MemoryStore", "QueueFull"]

_KEEP_REJECTED = 100


class QueueFull(Exception):
    """The in-memory queue holds ``max_events`` events; the new one was refused."""


@dataclass(slots=True)
class _Item:
    event: str
    body: bytes
    created_at: float
    seq: int
    attempts: int = 0
    next_at: float = 0.0
    owner: str | None = None


class MemoryStore:
    """A bounded, thread-safe queue of events in this process."""

    durable = False

    def __init__(self, max_events: int = 10_000) -> None:
        self.max_events = max_events
        self._lock = threading.RLock()
        self._items: dict[str, _Item] = {}
        self._due: list[tuple[float, int, str]] = []  # (next_at, seq, event_id), lazily pruned
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._changed = False
        self._pause: Pause | None = None
        self.rejected: deque[RejectedSummary] = deque(maxlen=_KEEP_REJECTED)
        self.dead: list[tuple[str, str, str, int | None, str | None]] = []

    def enqueue(self, event_id: str, event: str, body: bytes, now: float) -> bool:
        """Queue the event; ``False`` for a known event_id; :class:`QueueFull` when full."""
        with self._lock:
            if event_id in self._items:
                return False
            if len(self._items) >= self.max_events:
                raise QueueFull(f"the in-memory queue is full ({self.max_events} events)")
            seq = next(self._seq)
            self._last_seq = seq
            self._items[event_id] = _Item(event, body, now, seq, next_at=now)
            heapq.heappush(self._due, (now, seq, event_id))
            self._changed = True
        return True

    def record_rejected(self, summary: RejectedSummary) -> None:
        """Keep the latest summaries (no PII by construction)."""
        self.rejected.append(summary)

    def claim(self, token: str, limit: int, now: float, lease: float) -> list[Row]:
        """Pop due events off the heap and lease them; a leased event is due again at lease end."""
        rows: list[Row] = []
        with self._lock:
            while self._due and len(rows) < limit and self._due[0][0] <= now:
                next_at, seq, event_id = heapq.heappop(self._due)
                item = self._items.get(event_id)
                if item is None or item.next_at != next_at or item.seq != seq:
                    continue  # delivered, or rescheduled since this entry was pushed
                self._reschedule(event_id, item, now + lease, token)
                rows.append(Row(event_id, item.body, item.created_at, item.attempts, token))
        return rows

    def _reschedule(self, event_id: str, item: _Item, next_at: float, owner: str | None) -> None:
        item.next_at = next_at
        item.owner = owner
        heapq.heappush(self._due, (next_at, item.seq, event_id))

    def apply(self, results: Results, now: float) -> None:
        """Write outcomes where the event still carries the claiming token."""
        with self._lock:
            for event_id, token in results.acks:
                if self._owned(event_id, token):
                    del self._items[event_id]
            for attempts, next_at, _error, event_id, token in results.retries:
                if self._owned(event_id, token):
                    item = self._items[event_id]
                    item.attempts = attempts
                    self._reschedule(event_id, item, next_at, None)
            for next_at, event_id, token in results.releases:
                if self._owned(event_id, token):
                    self._reschedule(event_id, self._items[event_id], next_at, None)
            for dead in results.deads:
                if self._owned(dead.event_id, dead.token):
                    item = self._items.pop(dead.event_id)
                    self.dead.append(
                        (dead.event_id, item.event, dead.reason, dead.status_code, dead.field)
                    )

    def _owned(self, event_id: str, token: str) -> bool:
        item = self._items.get(event_id)
        return item is not None and item.owner == token

    def expire(self, cutoff: float, now: float) -> list[str]:
        """Drop unleased events created before ``cutoff`` (kept as ``expired`` dead letters)."""
        with self._lock:
            gone = [
                event_id
                for event_id, item in self._items.items()
                if item.created_at < cutoff and (item.owner is None or item.next_at <= now)
            ]
            for event_id in gone:
                item = self._items.pop(event_id)
                self.dead.append((event_id, item.event, "expired", None, None))
        return gone

    def checkpoint(self) -> None:
        """Nothing to checkpoint in memory."""

    def next_due(self) -> float | None:
        """The earliest due time among queued events."""
        with self._lock:
            return min((item.next_at for item in self._items.values()), default=None)

    def changed(self) -> bool:
        """Whether an event was queued since the last call."""
        with self._lock:
            changed, self._changed = self._changed, False
        return changed

    def mark(self) -> int:
        """The sequence number of the latest queued event."""
        return self._last_seq

    def pending_through(self, mark: int) -> bool:
        """Whether an event queued at or before ``mark`` is still here."""
        with self._lock:
            return any(item.seq <= mark for item in self._items.values())

    def hurry(self, mark: int, now: float) -> int:
        """Make unleased events up to ``mark`` due now."""
        hurried = 0
        with self._lock:
            for event_id, item in self._items.items():
                if item.seq <= mark and item.owner is None and item.next_at > now:
                    self._reschedule(event_id, item, now, None)
                    hurried += 1
            self._changed = self._changed or hurried > 0
        return hurried

    def count(self) -> int:
        """How many events are queued."""
        return len(self._items)

    def get_pause(self) -> Pause | None:
        """The current pause."""
        return self._pause

    def set_pause(self, pause: Pause | None) -> None:
        """Start, extend or end the pause."""
        self._pause = pause

    def acquire_lease(self, owner: str, ttl: float, now: float) -> bool:
        """Always granted: nobody else can see this queue."""
        return True

    def release_lease(self, owner: str) -> None:
        """Nothing to release."""

    def prepare_fork(self) -> None:
        """Hold the lock through the fork, so the queue is not half updated in the child."""
        self._lock.acquire()

    def after_fork(self, child: bool) -> None:
        """Parent: release. Child: start empty; the parent delivers what it queued."""
        if not child:
            self._lock.release()
            return
        self._lock = threading.RLock()
        self._items = {}
        self._due = []
        self._changed = False

    def close(self) -> None:
        """Nothing to close: the queue lives as long as the process."""
