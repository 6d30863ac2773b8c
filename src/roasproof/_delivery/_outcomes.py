"""What each answer does to an event, the pause it may start, and who is told.

The sender feeds every (row, verdict) pair to :class:`Judge`, which turns it
into a row update gathered in :class:`~roasproof._delivery._store.Results`,
adjusts the in-flight limit, starts or ends a global pause, counts it and
calls the user's hooks:

=====================  =============================================================
202 (any 2xx)          delete the row (acks grouped); ``on_delivered(result)``
422, 400, other 4xx    dead letter with the server's field and reason; ``on_error``
401 / 403              row kept untouched; **all** delivery pauses, probing with a
                       long, doubling backoff; logged loudly once per pause
429                    row kept untouched, no attempt consumed; all delivery pauses
                       until Retry-After (else 60 s doubling to 1 h)
408, 5xx, no answer    this row retried: attempts + 1, exponential backoff with
                       full jitter (Retry-After as a floor), stored in the row
older than max age     dead letter ``expired``; ``on_error``
=====================  =============================================================

Logs go to the ``roasproof`` logger and name event ids and statuses only:
payloads (hashed identifiers) and the API key never appear.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from roasproof._delivery._retry import Concurrency, Tuning, pause_delay, retry_delay
from roasproof._delivery._store import DeadLetter, Pause, Results, Row, Store
from roasproof._http import DeliveryResult, Outcome
from roasproof.errors import AuthenticationFailed, DeliveryError, EventRejected, QuotaExceeded

__all__ = ["COUNTERS", "Counters", "Hooks", "Judge", "call_hook", "expired_error"]

_log = logging.getLogger("roasproof")
_T = TypeVar("_T")
COUNTERS = (
    "enqueued",
    "delivered",
    "retried",
    "dead",
    "rejected",
    "duplicates",
    "dropped",
    "pauses",
    "spilled",
)


class Counters:
    """Thread-safe counters behind ``client.stats()`` (this process only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, count: int = 1) -> None:
        """Add ``count`` to the counter ``name``."""
        with self._lock:
            self._values[name] += count

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        """Start from zero (a forked child counts its own events)."""
        with self._lock:
            self._values = dict.fromkeys(COUNTERS, 0)


@dataclass(frozen=True, slots=True)
class Hooks:
    """The user's callbacks; they run on the sender thread and must be quick."""

    on_delivered: Callable[[DeliveryResult], object] | None = None
    on_error: Callable[[Exception], object] | None = None


def call_hook(name: str, hook: Callable[[_T], object] | None, argument: _T) -> None:
    """Call a user hook; its exceptions are logged, never allowed to stop delivery."""
    if hook is None:
        return
    try:
        hook(argument)
    except Exception:
        _log.exception("roasproof %s hook raised; delivery continues", name)


def expired_error(event_id: str, max_age: float) -> EventRejected:
    """The error reported for an event that outlived ``max_event_age``."""
    return EventRejected(
        f"event {event_id!r} expired: it was not delivered within max_event_age "
        f"({max_age / 3600:g} h), so it is kept as a dead letter instead. See "
        "`roasproof outbox dead`; fix the cause (key, endpoint, network) and run "
        "`roasproof outbox retry` to send it again",
        reason="expired",
        event_id=event_id,
    )


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Judge:
    """Applies the outcome table above; owned by one sender, used on its thread only."""

    def __init__(
        self,
        store: Store,
        tuning: Tuning,
        concurrency: Concurrency,
        counters: Counters,
        hooks: Hooks,
        key_fingerprint: str | None,
    ) -> None:
        self._store = store
        self._tuning = tuning
        self.concurrency = concurrency
        self._counters = counters
        self._hooks = hooks
        self._fingerprint = key_fingerprint
        self.results = Results()
        self.pause: Pause | None = None
        #: the event_id of the one request sent to test whether a pause is over
        self.probe: str | None = None
        self.buffer: deque[Row] = deque()

    def judge(self, row: Row, outcome: Outcome, now: float) -> None:
        """Turn one verdict into a row update, a pause change and hook calls."""
        probe = row.event_id == self.probe
        if probe:
            self.probe = None
        if isinstance(outcome, DeliveryResult):
            self.results.acks.append((row.event_id, row.token))
            self._counters.add("delivered")
            self.concurrency.succeeded()
            if probe and self.pause is not None:  # only a request sent after the pause began
                self.resume(now)
            call_hook("on_delivered", self._hooks.on_delivered, outcome)
        elif isinstance(outcome, EventRejected):
            self.concurrency.succeeded()
            if probe and self.pause is not None:
                self.resume(now)
            self.bury(
                row, outcome.reason or "rejected", outcome, outcome.status_code, outcome.field
            )
        elif isinstance(outcome, AuthenticationFailed | QuotaExceeded):
            self.results.releases.append((now, row.event_id, row.token))
            reason = "auth" if isinstance(outcome, AuthenticationFailed) else "quota"
            retry_after = outcome.retry_after if isinstance(outcome, QuotaExceeded) else None
            self.start_pause(reason, outcome, retry_after, probe, now)
        else:
            self._retry(row, outcome, probe, now)

    def _retry(self, row: Row, outcome: DeliveryError, probe: bool, now: float) -> None:
        attempts = row.attempts + 1
        retry_after = getattr(outcome, "retry_after", None)
        delay = retry_delay(attempts, retry_after, self._tuning)
        error = _short(str(outcome))
        self.results.retries.append((attempts, now + delay, error, row.event_id, row.token))
        self._counters.add("retried")
        self.concurrency.failed()
        _log.debug(
            "event %r not delivered (attempt %d), next try in %.1f s", row.event_id, attempts, delay
        )
        if probe and self.pause is not None:  # the API is not healthy yet: keep pausing
            self.start_pause(self.pause.reason, outcome, None, True, now)

    def bury(
        self,
        row: Row,
        reason: str,
        error: Exception,
        status_code: int | None = None,
        field: str | None = None,
    ) -> None:
        """Dead-letter the row and tell the user (log at WARNING, ``on_error``)."""
        self.results.deads.append(DeadLetter(row.event_id, row.token, reason, status_code, field))
        self._counters.add("dead")
        where = f" field {field!r}" if field else ""
        _log.warning(
            "event %r dead-lettered (%s)%s: %s; see `roasproof outbox dead`",
            row.event_id,
            status_code if status_code is not None else reason,
            where,
            reason,
        )
        call_hook("on_error", self._hooks.on_error, error)

    def start_pause(
        self,
        reason: str,
        error: Exception,
        retry_after: float | None,
        probe: bool,
        now: float,
    ) -> None:
        """Pause all delivery (or extend the pause after a failed probe)."""
        current = self.pause
        if current is not None and not probe:
            return  # sent before the pause began: its row is kept, the pause stands
        probes = current.probes + 1 if current is not None else 0
        delay = pause_delay(reason, probes, retry_after, self._tuning)
        self.pause = Pause(
            reason=reason,
            until=now + delay,
            since=current.since if current is not None else now,
            probes=probes,
            message=_short(str(error)),
            key_fingerprint=self._fingerprint if reason == "auth" else None,
        )
        self._store.set_pause(self.pause)
        self.release_buffer(now)
        if current is not None:
            _log.info("roasproof delivery still paused (%s); next check in %.0f s", reason, delay)
            return
        self._counters.add("pauses")
        _log.error(
            "roasproof delivery PAUSED (%s): %s. No event is lost: every event stays queued "
            "and delivery resumes by itself; next check in %.0f s",
            reason,
            error,
            delay,
        )
        call_hook("on_error", self._hooks.on_error, error)

    def resume(self, now: float) -> None:
        """End the pause: a probe (or any request) got through."""
        was = self.pause
        self.pause = None
        self.probe = None
        self._store.set_pause(None)
        self.concurrency.reset()
        if was is not None:
            _log.warning(
                "roasproof delivery resumed after %.0f s paused (%s)", now - was.since, was.reason
            )

    def adopt(self, stored: Pause | None, now: float) -> None:
        """Follow the pause another process (or sender) wrote to the shared outbox.

        An auth pause recorded for a different API key is ignored and cleared:
        this process's key deserves its own try.
        """
        if (
            stored is not None
            and stored.reason == "auth"
            and stored.key_fingerprint != self._fingerprint
        ):
            self._store.set_pause(None)
            stored = None
        if stored is not None and self.pause is None:
            self.release_buffer(now)
            _log.info(
                "roasproof delivery paused (%s) by another sender of this outbox", stored.reason
            )
        if self.probe is None:
            self.pause = stored

    def release_buffer(self, now: float) -> None:
        """Hand back claimed rows not yet sent, untouched (due now, no attempt used)."""
        for row in self.buffer:
            self.results.releases.append((now, row.event_id, row.token))
        self.buffer.clear()
