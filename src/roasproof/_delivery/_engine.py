"""The :class:`Delivery` the Client uses: a store plus a lazily started sender.

``enqueue`` is the whole cost of ``track()`` after validation: a pid check
and one memory copy into this process's journal (see ``_journal.py``), whose
records the sender thread moves into the outbox in batches. Without a
running sender (the first event of a process, no API key, after ``close``)
or a journal (``outbox=None``, Windows), it is one committed INSERT. The
sender thread starts on the first event enqueued in the current process
(never at import or construction, so a pre-fork master never owns one), and
never from the exit hook.

If the outbox cannot be written (disk full, read-only, permissions), events
are kept in a bounded in-memory spill, written back on the next successful
``track()`` or ``flush()``, and the problem is logged loudly: a request never
fails because of the SDK.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from roasproof._delivery import _fork
from roasproof._delivery._base import RejectedSummary
from roasproof._delivery._journal import Drained, Journal, RecordTooLarge
from roasproof._delivery._memory import QueueFull
from roasproof._delivery._outcomes import Counters, Hooks
from roasproof._delivery._retry import Tuning
from roasproof._delivery._sender import Sender
from roasproof._delivery._store import Pause, Store
from roasproof._delivery._transports import TransportFactory
from roasproof.errors import ConfigurationError

if TYPE_CHECKING:
    from roasproof._config import Settings

__all__ = ["DEFAULT_CLOSE_TIMEOUT", "DEFAULT_FLUSH_TIMEOUT", "Engine"]

_log = logging.getLogger("roasproof")
DEFAULT_FLUSH_TIMEOUT = 30.0
DEFAULT_CLOSE_TIMEOUT = 10.0
_STORAGE_ERRORS = (sqlite3.Error, OSError, ConfigurationError)
_FLUSH_POLL = 0.02
_RESTART_AFTER = 30.0
_live: weakref.WeakSet[Engine] = weakref.WeakSet()


class Engine:
    """Queue (outbox or memory) + background sender; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        transport_factory: TransportFactory | None,
        *,
        tuning: Tuning | None = None,
        elect: bool | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.journal = journal
        #: the journal track() writes to: only while this process's sender thread can run
        self._journal: Journal | None = None
        self._factory = transport_factory
        self.tuning = tuning or Tuning()
        self._elect = settings.senders == "one" if elect is None else elect
        timeouts = settings.connect_timeout + settings.read_timeout
        self._lease = 2 * timeouts + self.tuning.lease_margin
        key = settings.api_key
        self._fingerprint = hashlib.sha256(key.encode()).hexdigest()[:12] if key else None
        self._counters = Counters()
        self._hooks = Hooks(settings.on_delivered, settings.on_error)
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self.sender: Sender | None = None
        self._spill: deque[tuple[str, str, bytes]] = deque(maxlen=self.tuning.memory_queue_size)
        self._closed = False
        self._exiting = False
        self._said: set[str] = set()
        self._started_at = float("-inf")
        _fork.register(self)
        _live.add(self)

    # -- the Delivery protocol -------------------------------------------------------

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        """Make the event durable; ``False`` if its event_id is already in the outbox."""
        if self._pid != os.getpid():
            self.after_fork(child=True)
        now = time.time()
        sender, journal = self.sender, self._journal
        if (
            journal is not None
            and sender is not None
            and sender.running
            and not self._spill
            and journal.pending < self.tuning.memory_queue_size  # else: back-pressure
        ):
            try:
                if journal.append(event_id, event, body, now):
                    sender.nudge()  # the first record of a batch: have it moved soon
                sender.app_seen = time.monotonic()
                return True
            except RecordTooLarge:  # an unusually large event: commit it to SQLite
                pass
            except OSError as exc:  # the journal is unwritable: commit to SQLite instead
                self._say("journal", "roasproof cannot write its journal: %s", exc)
        try:
            added = self.store.enqueue(event_id, event, body, now)
        except QueueFull as exc:
            self._counters.add("dropped")
            _log.error("roasproof event %r dropped: %s; call flush() more often", event_id, exc)
            return False
        except _STORAGE_ERRORS as exc:
            self._spill_event(event_id, event, body, exc)
            return True
        if not added:
            self._counters.add("duplicates")
            return False
        self._counters.add("enqueued")
        if self._spill:
            self._unspill()
        sender = self.sender
        if sender is None or not sender.alive:
            self.start()
        else:
            sender.app_seen = time.monotonic()
        return True

    def record_rejected(self, summary: RejectedSummary) -> None:
        """Count the invalid event and keep its summary for ``roasproof outbox rejected``."""
        self._counters.add("rejected")
        try:
            self.store.record_rejected(summary)
        except _STORAGE_ERRORS as exc:
            self._say("rejected", "roasproof could not record a rejected event: %s", exc)

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what is queued now, retries included; ``True`` if nothing is left.

        Waits at most ``timeout`` seconds (None: 30 s) and returns ``False``
        early when delivery is paused past the deadline.
        """
        limit = DEFAULT_FLUSH_TIMEOUT if timeout is None else timeout
        return self._wait(time.monotonic() + limit, hurry=True)

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` (None: 10 s), stop the sender, close connections.

        What is not delivered stays in the outbox for the next process.
        """
        self._finish(DEFAULT_CLOSE_TIMEOUT if timeout is None else timeout, hurry=True)

    def stats(self) -> Mapping[str, int]:
        """Counters of this process, plus ``pending`` (the whole queue) and live gauges."""
        try:
            self.drain_journal()
        except _STORAGE_ERRORS:
            pass
        snapshot = self._counters.snapshot()
        try:
            snapshot["pending"] = self.pending()
        except _STORAGE_ERRORS:
            snapshot["pending"] = -1
        sender = self.sender
        snapshot["in_flight"] = sender.in_flight if sender is not None else 0
        snapshot["leader"] = int(sender is not None and sender.leader)
        snapshot["paused"] = int(self.pause is not None)
        snapshot["spill"] = len(self._spill)
        return snapshot

    # -- beyond the protocol: the CLI and the tests use these -------------------------------

    @property
    def pause(self) -> Pause | None:
        """The pause this process's sender observes, if any."""
        judge = self.sender.judge if self.sender is not None else None
        return judge.pause if judge is not None else None

    def start(self) -> bool:
        """Start the sender in this process if it can run; whether one is running."""
        with self._lock:
            if self.sender is not None and (self.sender.alive or not self._may_restart()):
                return True
            if self._closed or self._exiting:
                return False
            if self._factory is None:
                self._say(
                    "key",
                    "roasproof has no API key: events are kept in the outbox but not sent. "
                    "Fix: pass api_key= or set ROASPROOF_API_KEY",
                )
                return False
            for problem in _fork.environment_problems():
                self._say(problem, "%s", problem)
            # Where the thread may not run (uWSGI without threads, gevent), track()
            # commits to the outbox itself, for `roasproof worker` to deliver.
            self._journal = None if _fork.sender_may_stall() else self.journal
            self.sender = Sender(
                self.store,
                self._factory,
                tuning=self.tuning,
                counters=self._counters,
                hooks=self._hooks,
                max_in_flight=self.settings.max_in_flight,
                max_event_age=self.settings.max_event_age,
                lease=self._lease,
                elect=self._elect,
                key_fingerprint=self._fingerprint,
                ingest=self.drain_journal if self.journal is not None else None,
                adopt=self.adopt_journals if self.journal is not None else None,
            )
            self.sender.start()
            self._started_at = time.monotonic()
            return True

    def _may_restart(self) -> bool:
        """A sender thread died (a bug, logged): start a new one, at most every 30 s."""
        return time.monotonic() - self._started_at >= _RESTART_AFTER

    def pending(self) -> int:
        """How many events wait in the store (all processes) and in this process's journal."""
        return self.store.count() + (self.journal.pending if self.journal is not None else 0)

    # -- the journal ---------------------------------------------------------------------------

    def drain_journal(self) -> int:
        """Move this process's journal into the outbox; how many events were new."""
        journal = self.journal
        if journal is None or not journal.pending:
            return 0
        added = self._moved(journal.drain())
        sender = self.sender
        if journal.pending and sender is not None:
            # Events tracked during the move: track() nudged only for the first record
            # of the batch just moved, so ask for the next batch here.
            sender.nudge()
        return added

    def adopt_journals(self) -> int:
        """Move the journals of processes that exited into the outbox; how many were new."""
        if self.journal is None:
            return 0
        return self._moved(self.journal.adopt())

    def _moved(self, drained: Drained) -> int:
        if drained.added:
            self._counters.add("enqueued", drained.added)
        if drained.duplicates:
            self._counters.add("duplicates", drained.duplicates)
        return drained.added

    # -- flushing and stopping ---------------------------------------------------------------

    def _wait(self, deadline: float, *, hurry: bool) -> bool:
        if self._pid != os.getpid():
            self.after_fork(child=True)
        try:
            self.drain_journal()
            if hurry:
                self.adopt_journals()
            self._unspill()
            mark = self.store.mark()
            if not self.store.pending_through(mark):
                return not self._spill
            if not self.start():
                return False
            if hurry:
                self.store.hurry(mark, time.time())
            return self._wait_for(mark, deadline, hurry=hurry)
        except _STORAGE_ERRORS as exc:
            self._say("flush", "roasproof could not flush the outbox: %s", exc)
            return False

    def _wait_for(self, mark: int, deadline: float, *, hurry: bool) -> bool:
        sender = self.sender
        assert sender is not None  # start() returned True
        sender.wake()
        while self.store.pending_through(mark):
            remaining = deadline - time.monotonic()
            pause = self.pause
            if remaining <= 0 or not sender.alive:
                return False
            if pause is not None and pause.until - time.time() > remaining:
                return False
            if not hurry and not sender.busy and not self._anything_due():
                return False  # exit hook: what waits for a retry stays for the next process
            time.sleep(min(_FLUSH_POLL, remaining))
        return not self._spill

    def _anything_due(self) -> bool:
        due = self.store.next_due()
        return due is not None and due <= time.time()

    def _finish(self, timeout: float, *, hurry: bool) -> None:
        deadline = time.monotonic() + max(timeout, 0.0)
        if self._pid != os.getpid():
            self.after_fork(child=True)
        sender = self.sender
        if sender is not None:
            self._wait(deadline, hurry=hurry)
            sender.stop(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            self._closed = True
            self.sender = None
        if self.journal is not None:
            try:
                self._moved(self.journal.close())
            except _STORAGE_ERRORS as exc:  # the records stay in the journal file
                self._say("journal", "roasproof could not move its journal to the outbox: %s", exc)
        if self._spill:
            _log.error(
                "roasproof is closing with %d events it could not write to the outbox; "
                "they are lost",
                len(self._spill),
            )
        try:
            self.store.close()
        except _STORAGE_ERRORS:  # pragma: no cover - closing never fails in practice
            pass

    def at_exit(self) -> None:
        """The interpreter is exiting: deliver briefly, never start a thread."""
        if self._pid != os.getpid() or self._closed:
            return
        self._exiting = True
        sender = self.sender
        if sender is not None:  # no request will track again: no reason to yield the GIL
            sender.app_seen = float("-inf")
        self._finish(self.tuning.atexit_timeout, hurry=False)

    # -- spill ---------------------------------------------------------------------------------

    def _spill_event(self, event_id: str, event: str, body: bytes, exc: Exception) -> None:
        if len(self._spill) == self._spill.maxlen:
            self._counters.add("dropped")
        self._spill.append((event_id, event, body))
        self._counters.add("spilled")
        self._say(
            "spill",
            "roasproof cannot write to the outbox %s (%s): events are kept in memory, NOT "
            "durable, until it works again. Fix the disk or permissions, or set "
            "ROASPROOF_OUTBOX to a writable local path",
            getattr(self.store, "path", "?"),
            exc,
        )

    def _unspill(self) -> None:
        while self._spill:
            event_id, event, body = self._spill[0]
            try:
                self.store.enqueue(event_id, event, body, time.time())
            except _STORAGE_ERRORS:
                return
            self._spill.popleft()
        self._said.discard("spill")

    def _say(self, key: str, message: str, *args: object) -> None:
        """Log an ERROR once per process and cause, not once per event."""
        if key not in self._said:
            self._said.add(key)
            _log.error(message, *args)

    # -- fork ------------------------------------------------------------------------------------

    def prepare_fork(self) -> None:
        """Hold the engine's and the store's locks through the fork."""
        self._lock.acquire()
        if self.journal is not None:
            self.journal.prepare_fork()
        self.store.prepare_fork()

    def after_fork(self, child: bool) -> None:
        """Parent: release. Child: abandon the parent's sender and connections, start over."""
        if not child:
            self.store.after_fork(child=False)
            if self.journal is not None:
                self.journal.after_fork(child=False)
            self._lock.release()
            return
        _fork.abandon(self.sender, self._lock, self._counters)
        self.store.after_fork(child=True)
        if self.journal is not None:
            self.journal.after_fork(child=True)
        self._lock = threading.RLock()
        self._counters = Counters()
        self.sender = None
        self._spill.clear()
        self._pid = os.getpid()


def _at_exit() -> None:
    for engine in list(_live):
        try:
            engine.at_exit()
        except Exception:  # pragma: no cover - never let our hook break the exit
            _log.exception("roasproof exit hook failed; undelivered events stay in the outbox")


atexit.register(_at_exit)
