"""Delivery engine: the outbox, the background sender, transports and retry policy.

The Client calls :func:`create_delivery` once (lazily, on its first
``track()``) and then only the :class:`~roasproof._delivery._base.Delivery`
protocol: ``enqueue``, ``record_rejected``, ``flush``, ``close``, ``stats``.

Module map (one job each)::

    _base.py        the Delivery protocol and RejectedSummary
    _schema.py      the outbox file: creation (0600), pragmas, versioned schema
    _outbox.py      SQLite store: enqueue, claims under leases, fenced grouped acks
    _journal.py     per-process append-only files track() writes; moved into the outbox
    _memory.py      bounded in-memory store for outbox=None (not durable)
    _store.py       the Store protocol both implement, and its row types
    _election.py    one elected sender per outbox file (a renewable lease row)
    _retry.py       backoff with full jitter, pause lengths, adaptive concurrency
    _outcomes.py    what each answer does to an event; counters and hooks
    _transports.py  the transport protocol and the httpx transport
    _aiohttp.py     the fast transport (aiohttp), used when installed
    _sender.py      the sender thread and its asyncio loop
    _engine.py      the Delivery implementation: lazy start, flush, close, exit hook
    _fork.py        fork safety and process-model checks (gevent, uWSGI)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from roasproof._delivery import _journal
from roasproof._delivery._base import Delivery, RejectedSummary
from roasproof._delivery._engine import Engine
from roasproof._delivery._memory import MemoryStore
from roasproof._delivery._outbox import SQLiteStore
from roasproof._delivery._retry import Tuning
from roasproof._delivery._store import Store
from roasproof._delivery._transports import TransportFactory, choose_transport

if TYPE_CHECKING:
    from roasproof._config import Settings

__all__ = ["Delivery", "Engine", "RejectedSummary", "Tuning", "create_delivery"]


def create_delivery(
    settings: Settings,
    *,
    tuning: Tuning | None = None,
    transport_factory: TransportFactory | None = None,
    elect: bool | None = None,
) -> Engine:
    """The delivery engine for ``settings``: the SQLite outbox, or memory when ``outbox=None``.

    Nothing is opened or started here: the outbox is opened on the first
    event and the sender thread starts then, in the process that tracks.
    ``tuning``, ``transport_factory`` and ``elect`` exist for tests and the
    ``roasproof`` CLI.
    """
    tuning = tuning or Tuning()
    store: Store
    journal = None
    if settings.outbox is None:
        store = MemoryStore(tuning.memory_queue_size)
    else:
        store = outbox = SQLiteStore(settings.outbox, settings.durability)
        if _journal.AVAILABLE:
            journal = _journal.Journal(outbox)
    if transport_factory is None and settings.api_key:
        transport_factory = choose_transport(
            settings.transport,
            settings.endpoint,
            settings.api_key,
            settings.max_in_flight,
            settings.connect_timeout,
            settings.read_timeout,
        )
    return Engine(settings, store, transport_factory, tuning=tuning, elect=elect, journal=journal)
