"""Surviving ``fork()``, and noticing process models where a thread cannot run.

Pre-fork servers (gunicorn ``--preload``, uwsgi, Celery prefork) fork after
the application imported, and maybe used, roasproof. A child inherits the
parent's memory but none of its threads, and any lock another thread held
at that instant stays locked forever in the child. So:

* before a fork, each live engine takes its locks (waiting for any SQLite
  call in progress to finish), so nothing is half done;
* after it, the parent releases them and carries on; the child gets fresh
  locks, abandons (never uses, never closes) inherited connections, HTTP
  clients and the sender, and starts its own sender lazily on its first
  ``track()``;
* every entry point also compares ``os.getpid()``, for forks that bypass
  Python's hooks (uwsgi without ``py-call-uwsgi-fork-hooks``).

Threads are also useless under some servers; :func:`environment_problems`
finds those so the engine can say, once and loudly, what to do.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "abandon", "environment_problems", "register", "sender_may_stall"]


class ForkAware(Protocol):
    """What the fork hooks call on each live engine."""

    def prepare_fork(self) -> None:
        """Take the locks (called in the forking thread, before the fork)."""
        ...

    def after_fork(self, child: bool) -> None:
        """Release the locks (parent) or rebuild state (child)."""
        ...


_live: weakref.WeakSet[ForkAware] = weakref.WeakSet()
#: What a child inherited and must neither use nor close (nor let the GC finalize):
#: SQLite connections, HTTP clients, the parent's sender. Kept for the process's life.
_graveyard: list[object] = []
_prepared: list[ForkAware] = []
_hooks_lock = threading.Lock()
_hooks_installed = False


def register(engine: ForkAware) -> None:
    """Have ``engine`` prepared for and repaired after every fork of this process."""
    global _hooks_installed
    with _hooks_lock:
        _live.add(engine)
        if not _hooks_installed:
            os.register_at_fork(
                before=_before, after_in_parent=_after_parent, after_in_child=_after_child
            )
            _hooks_installed = True


def abandon(*inherited: object) -> None:
    """Keep ``inherited`` alive, unused, for the rest of the process (a forked child)."""
    _graveyard.extend(inherited)


def _before() -> None:
    _prepared[:] = list(_live)
    for engine in _prepared:
        engine.prepare_fork()


def _after_parent() -> None:
    for engine in reversed(_prepared):
        engine.after_fork(child=False)
    _prepared.clear()


def _after_child() -> None:
    global _hooks_lock
    _hooks_lock = threading.Lock()
    for engine in reversed(_prepared):
        engine.after_fork(child=True)
    _prepared.clear()


def environment_problems() -> list[str]:
    """Why a background thread may not work in this process, with what to do instead."""
    problems: list[str] = []
    if _gevent_patched():
        problems.append(
            "gevent monkey-patching is active: the roasproof sender runs as a greenlet "
            "sharing your workers' hub. Events stay durable, but for reliable delivery run "
            "`roasproof worker` as a sidecar on the same outbox (ROASPROOF_OUTBOX)"
        )
    if _eventlet_patched():
        problems.append(
            "eventlet monkey-patching is active: the roasproof sender runs as a green thread "
            "sharing your workers' hub. Events stay durable, but for reliable delivery run "
            "`roasproof worker` as a sidecar on the same outbox (ROASPROOF_OUTBOX)"
        )
    problems.extend(_uwsgi_problems())
    return problems


def sender_may_stall() -> bool:
    """Whether the sender thread may not run on its own here (green threads, uWSGI).

    The engine then keeps ``track()`` committing to the outbox itself rather
    than to a journal only this process's sender would move.
    """
    return _gevent_patched() or _eventlet_patched() or _uwsgi_without_threads()


def _uwsgi_without_threads() -> bool:
    options = getattr(sys.modules.get("uwsgi"), "opt", None)
    if not isinstance(options, dict):
        return False
    return not (options.get("enable-threads") or _as_int(options.get("threads")) > 1)


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    return bool(monkey.is_module_patched("threading") or monkey.is_module_patched("socket"))


def _eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None:
        return False
    return bool(patcher.is_monkey_patched("thread") or patcher.is_monkey_patched("socket"))


def _uwsgi_problems() -> list[str]:
    uwsgi = sys.modules.get("uwsgi")
    options = getattr(uwsgi, "opt", None)
    if not isinstance(options, dict):
        return []
    problems = []
    if _uwsgi_without_threads():
        problems.append(
            "uWSGI runs without threads, so the roasproof sender thread never gets to run: "
            "events are stored in the outbox but not delivered. Fix: add `enable-threads = "
            "true` to the uWSGI config, or run `roasproof worker` as an attach-daemon on the "
            "same outbox (ROASPROOF_OUTBOX)"
        )
    if not options.get("lazy-apps") and not options.get("py-call-uwsgi-fork-hooks"):
        problems.append(
            "uWSGI forks workers without running Python's fork hooks: roasproof detects the "
            "fork by pid and recovers, but add `py-call-uwsgi-fork-hooks = true` (or "
            "`lazy-apps = true`) to the uWSGI config to be safe"
        )
    return problems


def _as_int(value: object) -> int:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return int(str(value))
    except ValueError:
        return 0
