"""The background sender: one daemon thread running its own asyncio loop.

Never on the application's event loop: delivery must not compete with
request handling, nor stop when an application's loop is closed. The loop
here does five things, in order, each turn:

0. move the events this process tracked from its journal into the outbox,
   at most every ``journal_linger`` seconds so that they go in batches and
   the thread takes the GIL from the application rarely (``track()`` only
   shortens the sleep of a sender that would sleep longer), and, while
   elected, now and then those that exited processes left in theirs;
1. write the outcomes gathered so far (grouped: every ``ack_interval`` or
   ``ack_batch`` outcomes, or at once when nothing is in flight);
2. hold the sender lease (one elected sender per outbox, unless
   ``senders="all"``) and follow the shared pause flag;
3. claim due rows in batches into a small buffer and start up to the
   adaptive in-flight limit of requests (one probe while paused or while
   the circuit breaker waits);
4. sleep until a request finishes, someone calls :meth:`Sender.wake`, or the
   poll interval passes (an idle sender notices events written by other
   processes through ``PRAGMA data_version``, which costs no lock).

Storage errors (a locked or full disk) are logged and retried: the thread
never dies while the process wants delivery.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable

from roasproof._delivery._election import new_owner
from roasproof._delivery._outcomes import Counters, Hooks, Judge, call_hook, expired_error
from roasproof._delivery._retry import Concurrency, Tuning
from roasproof._delivery._store import Results, Row, Store
from roasproof._delivery._transports import Transport, TransportFactory
from roasproof._http import Outcome, classify_exception

__all__ = ["Sender"]

_log = logging.getLogger("roasproof")
_MAX_BATCH = 512
_ERROR_LOG_EVERY = 60.0


class Sender:
    """Delivers the events of ``store`` until :meth:`stop` is called."""

    def __init__(
        self,
        store: Store,
        transport_factory: TransportFactory,
        *,
        tuning: Tuning,
        counters: Counters,
        hooks: Hooks,
        max_in_flight: int,
        max_event_age: float,
        lease: float,
        elect: bool,
        key_fingerprint: str | None,
        ingest: Callable[[], int] | None = None,
        adopt: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._factory = transport_factory
        self._tuning = tuning
        self._counters = counters
        self._hooks = hooks
        self._max_in_flight = max_in_flight
        self._max_age = max_event_age
        self._lease = lease
        self._elect = elect
        self._fingerprint = key_fingerprint
        self._ingest = ingest
        self._adopt = adopt
        self._adopted_at = float("-inf")
        self._ingested_at = float("-inf")
        self._wakes_at = float("-inf")  # monotonic time the current sleep ends
        self._journal_waiting = False
        self.owner = new_owner()
        self._claims = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._woken = False
        self._stopping = False
        self._stop_deadline = 0.0
        self.leader = False
        self._renewed_at = float("-inf")
        self._checked_pause_at = float("-inf")
        self._expired_at = float("-inf")
        self._applied_at = 0.0
        self._checkpointed_at = 0.0
        self._more = True
        self._next_due: float | None = None
        self._inflight: dict[asyncio.Task[None], Row] = {}
        self._done: list[tuple[Row, Outcome]] = []
        self._last_error_log = float("-inf")
        self._cpu_mark = 0.0
        #: like ``alive``, as a plain attribute (track() reads it): started, not yet ended
        self.running = False
        #: when this process last tracked an event (set by the engine, read for pacing)
        self.app_seen = float("-inf")
        self.judge: Judge | None = None
        self._claiming = False

    # -- control, from any thread ------------------------------------------------

    def start(self) -> None:
        """Start the daemon thread (it dies with the process; the outbox keeps the rest)."""
        self._thread = threading.Thread(target=self._run, name="roasproof-sender", daemon=True)
        self.running = True
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def in_flight(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._inflight)

    @property
    def busy(self) -> bool:
        """Whether this sender holds rows the outbox shows as leased, not due: being
        claimed, claimed and waiting their turn, in flight, or answered and not yet written."""
        if self._inflight or self._done or self._claiming:
            return True
        judge = self.judge
        return judge is not None and bool(judge.buffer or judge.results)

    def wake(self) -> None:
        """Make the loop look for work now (after a flush hurried rows, or to stop)."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._notify)
        except RuntimeError:  # the loop has just closed
            pass

    def nudge(self) -> None:
        """Events wait in the journal: make sure the loop wakes within ``journal_linger``.

        Costs nothing while the loop is due to wake soon anyway (the elected
        sender polls that often); otherwise one cross-thread call per batch.
        """
        self._journal_waiting = True  # read by the loop before it next sleeps
        linger = self._tuning.journal_linger
        soon = time.monotonic() + linger
        if self._wakes_at <= soon:
            return
        self._wakes_at = soon
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._rearm, linger)
        except RuntimeError:  # the loop has just closed
            pass

    def _rearm(self, delay: float) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            asyncio.get_running_loop().call_later(delay, _settle, waiter)

    def stop(self, timeout: float) -> None:
        """Stop within ``timeout`` s: in-flight requests may finish, the rest stays queued."""
        self._stop_deadline = time.time() + max(timeout, 0.0)
        self._stopping = True
        self.wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(timeout, 0.0) + 1.0)

    # -- the loop ------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:  # pragma: no cover - _main guards its own steps
            _log.exception("roasproof sender stopped unexpectedly; events stay queued")
        finally:
            self.running = False

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        transport = self._factory()
        concurrency = Concurrency(min(self._max_in_flight, transport.max_in_flight), self._tuning)
        self.judge = Judge(
            self._store, self._tuning, concurrency, self._counters, self._hooks, self._fingerprint
        )
        try:
            while not self._stopping:
                try:
                    await self._step(transport, self.judge)
                except Exception as exc:  # storage trouble: say so, wait, try again
                    self._report(exc)
                    await self._sleep(1.0)
        finally:
            await self._shutdown(transport, self.judge)
            self._loop = None

    async def _step(self, transport: Transport, judge: Judge) -> None:
        if self._ingest is not None:
            clock = time.monotonic()
            if clock - self._ingested_at >= self._tuning.journal_linger:
                self._ingested_at = clock
                self._journal_waiting = False  # before the move: later events nudge again
                if self._ingest():
                    self._more = True  # our own commits do not move data_version
        now = time.time()
        self._collect(judge, now)
        self._apply(judge, now)
        if not self._hold_lease(judge, now):
            await self._sleep(self._tuning.lease_renew)
            return
        if now - self._checked_pause_at >= self._tuning.lease_renew:
            self._checked_pause_at = now
            judge.adopt(self._store.get_pause(), now)
        if self._adopt is not None and now - self._adopted_at >= self._tuning.lease_renew:
            self._adopted_at = now
            if self._adopt():
                self._more = True
        if now - self._expired_at >= self._tuning.expire_every:
            self._expire(judge, now)
        self._launch(transport, judge, now)
        await self._sleep(self._timeout(judge, now))

    def _pace(self) -> None:
        """Hand the GIL to the application's threads now and then while busy.

        The sender releases the GIL at every socket and SQLite call, but takes
        it straight back (CPython's convoy effect), so a request thread can
        wait up to the 5 ms switch interval at each of its own SQLite calls.
        While the application tracks events (``app_seen`` is recent), a short
        real sleep after each ``yield_every`` s of sender CPU bounds that wait.
        A ``roasproof worker`` or ``drain`` process never tracks: no pacing.
        """
        every = self._tuning.yield_every
        if every <= 0 or time.monotonic() - self.app_seen > 1.0:
            return
        used = time.thread_time()
        if used - self._cpu_mark >= every:
            time.sleep(self._tuning.yield_for)
            self._cpu_mark = time.thread_time()

    def _hold_lease(self, judge: Judge, now: float) -> bool:
        if not self._elect:
            self.leader = True
            return True
        if self.leader and now - self._renewed_at < self._tuning.lease_renew:
            return True
        won = self._store.acquire_lease(self.owner, self._tuning.lease_ttl, now)
        if won:
            self._renewed_at = now
            if not self.leader:
                _log.info("roasproof: this process (%s) now delivers the outbox", self.owner)
                self._checked_pause_at = float("-inf")
                self._more = True
        elif self.leader:
            _log.warning("roasproof: another process took over delivery of the outbox")
            judge.release_buffer(now)
        self.leader = won
        return won

    def _expire(self, judge: Judge, now: float) -> None:
        self._expired_at = now
        expired = self._store.expire(now - self._max_age, now)
        if expired:
            self._counters.add("dead", len(expired))
            _log.warning(
                "%d roasproof events expired (older than max_event_age) and were moved to "
                "the dead letters; see `roasproof outbox dead`",
                len(expired),
            )
        for event_id in expired:
            call_hook("on_error", self._hooks.on_error, expired_error(event_id, self._max_age))

    def _launch(self, transport: Transport, judge: Judge, now: float) -> None:
        if judge.pause is not None:
            if now < judge.pause.until or judge.probe is not None:
                return
            allowed = 1
        else:
            allowed = judge.concurrency.allowed()
            if allowed == 0 and judge.buffer:  # the API is down: do not sit on leased rows
                judge.release_buffer(now)
        loop = asyncio.get_running_loop()
        while len(self._inflight) < allowed:
            row = self._next_row(judge, now)
            if row is None:
                return
            if judge.pause is not None:
                judge.probe = row.event_id
            task = loop.create_task(self._deliver(transport, row))
            self._inflight[task] = row
            task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._inflight.pop(task, None)

    def _next_row(self, judge: Judge, now: float) -> Row | None:
        while not judge.buffer:
            if not (
                self._more
                or (self._next_due is not None and now >= self._next_due)
                or self._store.changed()
            ):
                return None
            batch = min(_MAX_BATCH, max(16, 2 * judge.concurrency.limit))
            token = f"{self.owner}:{next(self._claims)}"
            self._claiming = True  # the claim commits before its rows reach the buffer
            try:
                rows = self._store.claim(token, batch, now, self._lease)
            finally:
                self._claiming = False
            self._more = len(rows) == batch
            if not self._more:
                self._next_due = self._store.next_due()
            if not rows:
                return None
            cutoff = now - self._max_age
            for row in rows:
                if row.created_at < cutoff:
                    judge.bury(row, "expired", expired_error(row.event_id, self._max_age))
                else:
                    judge.buffer.append(row)
        return judge.buffer.popleft()

    async def _deliver(self, transport: Transport, row: Row) -> None:
        try:
            outcome = await transport.send(row.event_id, row.body)
        except Exception as exc:  # a transport bug must not lose the row: retry it
            outcome = classify_exception(exc, row.event_id)
        # Free the slot now (not in a done-callback, which runs a turn later) so the
        # loop this wakes can start the next request at once.
        task = asyncio.current_task()
        if task is not None:
            self._inflight.pop(task, None)
        self._done.append((row, outcome))
        self._notify()
        self._pace()

    def _collect(self, judge: Judge, now: float) -> None:
        done, self._done = self._done, []
        for row, outcome in done:
            judge.judge(row, outcome, now)

    def _apply(self, judge: Judge, now: float, force: bool = False) -> None:
        results = judge.results
        if not results:
            return
        if (
            force
            or not self._inflight
            or len(results) >= self._tuning.ack_batch
            or now - self._applied_at >= self._tuning.ack_interval
        ):
            self._store.apply(results, now)
            self._note_due(results)
            results.clear()
            self._applied_at = now
            if now - self._checkpointed_at >= self._tuning.checkpoint_every:
                self._checkpointed_at = now
                self._store.checkpoint()

    def _note_due(self, results: Results) -> None:
        """Our own writes do not move ``data_version``: remember when retried rows are due."""
        times = [r[1] for r in results.retries] + [r[0] for r in results.releases]
        if times:
            earliest = min(times)
            if self._next_due is None or earliest < self._next_due:
                self._next_due = earliest

    def _timeout(self, judge: Judge, now: float) -> float:
        timeout = self._tuning.poll_interval
        if judge.results:
            timeout = min(timeout, self._tuning.ack_interval)
        if judge.concurrency.breaker_open:
            timeout = max(timeout, judge.concurrency.wait_time())
        elif judge.pause is not None and judge.probe is None:
            timeout = max(timeout, min(judge.pause.until - now, self._tuning.lease_renew))
        return timeout

    # -- waiting -----------------------------------------------------------------------

    def _notify(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        else:
            self._woken = True

    async def _sleep(self, timeout: float) -> None:
        if self._woken or self._stopping:
            self._woken = False
            return
        if self._journal_waiting:
            timeout = min(timeout, self._tuning.journal_linger)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        self._wakes_at = time.monotonic() + timeout
        handle = loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            handle.cancel()
            self._waiter = None
            self._wakes_at = float("-inf")  # awake: track() need not nudge

    # -- stopping ------------------------------------------------------------------------

    async def _shutdown(self, transport: Transport, judge: Judge) -> None:
        remaining = self._stop_deadline - time.time()
        if self._inflight and remaining > 0:
            # Wait on the requests themselves: _sleep returns at once while stopping, and a
            # loop around it would never let them run.
            await asyncio.wait(list(self._inflight), timeout=remaining)
        now = time.time()
        self._collect(judge, now)
        pending = [task for task in self._inflight if not task.done()]
        for task in pending:
            row = self._inflight[task]
            task.cancel()
            judge.results.releases.append((now, row.event_id, row.token))
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        self._collect(judge, now)
        judge.release_buffer(now)
        try:
            self._apply(judge, now, force=True)
            if self._elect and self.leader:
                self._store.release_lease(self.owner)
        except Exception as exc:  # the rows' leases expire by themselves
            self._report(exc)
        self.leader = False
        await transport.aclose()

    def _report(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= _ERROR_LOG_EVERY:
            self._last_error_log = now
            _log.error(
                "roasproof sender: the outbox failed (%s: %s); events stay queued, retrying",
                type(exc).__name__,
                exc,
            )


def _settle(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
