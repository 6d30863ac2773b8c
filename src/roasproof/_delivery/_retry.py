"""When to try again: per-event backoff, global pauses and adaptive concurrency.

Everything here is pure arithmetic over numbers the sender hands in, so the
timing rules can be read (and tested) in one place:

* a transient failure (408, 5xx, timeout, connection error) reschedules that
  one event with exponential backoff and *full jitter*, the server's
  Retry-After acting as a floor; the schedule is a timestamp in the event's
  row, never a sleeping thread, so one bad event cannot hold up the others;
* 401/403 and 429 pause *all* delivery (an invalid key or a plan ceiling
  affects every event alike); the pause grows while probes keep failing;
* the number of requests in flight grows by one per window of successes and
  shrinks multiplicatively on failures (AIMD), within ``max_in_flight``;
  a run of consecutive failures opens a circuit breaker, so an API that is
  down gets one probe per step instead of every backlogged event.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Concurrency", "Tuning", "backoff", "pause_delay", "retry_delay"]


@dataclass(frozen=True, slots=True)
class Tuning:
    """The engine's timing constants; tests shorten them, users never need to.

    The defaults follow the delivery contract: retries start at 1 s and are
    capped at 5 min; an auth pause probes after 1 min, doubling to 30 min; a
    quota pause without Retry-After waits 1 min, doubling to 1 h.
    """

    backoff_base: float = 1.0
    backoff_cap: float = 300.0
    auth_probe_base: float = 60.0
    auth_probe_cap: float = 1800.0
    quota_base: float = 60.0
    quota_cap: float = 3600.0
    #: how long the elected sender's lease lasts, and how often it is renewed
    lease_ttl: float = 15.0
    lease_renew: float = 5.0
    #: a claimed row's lease: twice the request timeouts plus this margin, so a
    #: request always ends before its row can be claimed again by another sender
    lease_margin: float = 5.0
    #: how often an idle sender looks for work written by other processes
    poll_interval: float = 0.05
    #: how long tracked events may wait in this process's journal before the sender
    #: moves them into the outbox, in one transaction (flush moves them at once)
    journal_linger: float = 0.05
    #: outcomes are written in groups: at least this often, or this many at once
    ack_interval: float = 0.02
    ack_batch: int = 256
    #: how often the busy sender checkpoints the outbox's WAL (off the track() path)
    checkpoint_every: float = 0.5
    #: how often the sender moves events older than max_event_age to the dead letters
    expire_every: float = 30.0
    initial_in_flight: int = 4
    #: consecutive failures that open the circuit breaker, and its probe steps
    breaker_threshold: int = 10
    breaker_base: float = 1.0
    breaker_cap: float = 30.0
    #: while this process also tracks events, the busy sender sleeps ``yield_for`` s
    #: after each ``yield_every`` s of its own CPU, so the application's threads get
    #: the GIL (and the outbox) promptly; 0 turns pacing off
    yield_every: float = 0.001
    yield_for: float = 0.0005
    #: bound of the in-memory queue (outbox=None) and of the spill buffer
    memory_queue_size: int = 10_000
    #: how long the exit hook may spend delivering before the process exits
    atexit_timeout: float = 2.0


def backoff(
    attempts: int, base: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**(attempts-1))]``.

    Jitter spreads the retries of events that failed together (an outage)
    instead of sending them back in one wave.
    """
    exponent = min(max(attempts - 1, 0), 62)  # 2**62 s is far past any cap
    return rand() * min(cap, base * float(2**exponent))


def retry_delay(
    attempts: int,
    retry_after: float | None,
    tuning: Tuning,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds until the next attempt of an event that failed ``attempts`` times.

    The server's Retry-After (already clamped by the HTTP layer) is a floor:
    it knows better when it will recover, but jitter still applies above it.
    """
    delay = backoff(attempts, tuning.backoff_base, tuning.backoff_cap, rand)
    return max(delay, retry_after or 0.0)


def pause_delay(reason: str, probes: int, retry_after: float | None, tuning: Tuning) -> float:
    """How long all delivery pauses for ``reason`` ("auth" or "quota").

    ``probes`` counts the failed probes of this pause.
    A quota pause honours Retry-After exactly; without it, and for a bad key,
    the pause doubles with each failed probe up to its cap (no jitter: only
    one probe is sent per step anyway).
    """
    if reason == "quota" and retry_after is not None:
        return retry_after
    base, cap = (
        (tuning.quota_base, tuning.quota_cap)
        if reason == "quota"
        else (tuning.auth_probe_base, tuning.auth_probe_cap)
    )
    return min(cap, base * float(2 ** min(probes, 62)))


class Concurrency:
    """Adaptive in-flight limit (AIMD, judged per window) with a circuit breaker.

    Outcomes are judged in windows of ``limit`` answers (about one round
    trip): a window where most requests failed halves the limit; any other
    adds one. Judging failure *ratios* rather than single failures keeps the
    limit up through scattered 503s (a flaky proxy, one bad node) while
    backing off fast when the API is overloaded. After ``breaker_threshold``
    consecutive failures the breaker opens: :meth:`allowed` returns 0 until
    its step ends, then 1 (a probe); a success closes it, a failed probe
    doubles the step.
    """

    #: a window with more failures than this share shrinks the limit
    FAILURE_RATIO = 0.5

    def __init__(
        self, maximum: int, tuning: Tuning, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.maximum = max(1, maximum)
        self._tuning = tuning
        self._clock = clock
        self.limit = self._initial()
        self._answers = 0
        self._failed = 0
        self.failures = 0
        self._open_until: float | None = None
        self._opened = 0

    def _initial(self) -> int:
        return min(self.maximum, max(1, self._tuning.initial_in_flight))

    @property
    def breaker_open(self) -> bool:
        """Whether the breaker is open (delivery is waiting for the API to come back)."""
        return self._open_until is not None

    def allowed(self) -> int:
        """How many requests may be in flight right now (0 while the breaker waits)."""
        if self._open_until is None:
            return self.limit
        return 1 if self._clock() >= self._open_until else 0

    def wait_time(self) -> float:
        """Seconds until the breaker lets a probe through (0 when closed or due)."""
        if self._open_until is None:
            return 0.0
        return max(0.0, self._open_until - self._clock())

    def succeeded(self) -> None:
        """A request was answered (any verdict but a transient failure)."""
        self.failures = 0
        if self._open_until is not None:
            self.reset()
            return
        self._judge(failed=False)

    def failed(self) -> None:
        """A request failed transiently (408, 5xx, timeout, connection error)."""
        self.failures += 1
        self._judge(failed=True)
        now = self._clock()
        if self._open_until is not None and now < self._open_until:
            return  # a request sent before the breaker opened: not a failed probe
        if self._open_until is not None or self.failures >= self._tuning.breaker_threshold:
            step = self._tuning.breaker_base * float(2 ** min(self._opened, 30))
            self._open_until = now + min(self._tuning.breaker_cap, step)
            self._opened += 1

    def _judge(self, *, failed: bool) -> None:
        self._answers += 1
        self._failed += failed
        if self._answers < self.limit:
            return
        if self._failed > self._answers * self.FAILURE_RATIO:
            self.limit = max(1, self.limit // 2)
        elif self.limit < self.maximum:
            self.limit += 1
        self._answers = self._failed = 0

    def reset(self) -> None:
        """Start again from the initial limit (after a pause or an outage ends)."""
        self.limit = self._initial()
        self._answers = self._failed = 0
        self.failures = 0
        self._open_until = None
        self._opened = 0
