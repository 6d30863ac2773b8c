"""The in-memory store (outbox=None) keeps the SQLite store's rules: leases, fencing, bounds."""

from __future__ import annotations

import pytest

from roasproof._delivery import RejectedSummary
from roasproof._delivery._memory import MemoryStore, QueueFull
from roasproof._delivery._store import DeadLetter, Pause, Results

NOW = 1_780_000_000.0


def test_a_full_queue_refuses_new_events_but_not_known_ones() -> None:
    store = MemoryStore(max_events=2)
    assert store.enqueue("a", "lead", b"a", NOW)
    assert store.enqueue("b", "lead", b"b", NOW)
    assert store.enqueue("a", "lead", b"a", NOW) is False
    with pytest.raises(QueueFull, match="full"):
        store.enqueue("c", "lead", b"c", NOW)
    assert store.count() == 2


def test_claims_lease_due_events_in_due_order_until_the_lease_ends() -> None:
    store = MemoryStore()
    store.enqueue("a", "lead", b"a", NOW)
    store.enqueue("b", "lead", b"b", NOW + 1)
    assert store.claim("t", 10, NOW, 30.0)[0].event_id == "a"
    assert [r.event_id for r in store.claim("t", 10, NOW + 1, 30.0)] == ["b"]
    assert store.claim("t", 10, NOW + 2, 30.0) == []
    assert store.next_due() == NOW + 30
    assert {r.event_id for r in store.claim("u", 10, NOW + 40, 30.0)} == {"a", "b"}


def test_outcomes_are_fenced_by_the_claim_token() -> None:
    store = MemoryStore()
    for event_id in ("ack", "retry", "release", "dead"):
        store.enqueue(event_id, "lead", b"{}", NOW)
    store.claim("mine", 10, NOW, 1.0)
    store.claim("theirs", 10, NOW + 2, 30.0)
    stale = Results(
        acks=[("ack", "mine")],
        retries=[(1, NOW + 9, "e", "retry", "mine")],
        releases=[(NOW, "release", "mine")],
        deads=[DeadLetter("dead", "mine", "bad")],
    )
    store.apply(stale, NOW + 3)
    assert store.count() == 4
    store.apply(
        Results(
            acks=[("ack", "theirs"), ("gone", "theirs")],
            retries=[(1, NOW + 9, "e", "retry", "theirs")],
            releases=[(NOW + 3, "release", "theirs")],
            deads=[DeadLetter("dead", "theirs", "unknown currency", 422, "currency")],
        ),
        NOW + 3,
    )
    assert store.count() == 2
    assert store.dead == [("dead", "lead", "unknown currency", 422, "currency")]
    assert [r.event_id for r in store.claim("x", 10, NOW + 3, 30.0)] == ["release"]
    assert [r.event_id for r in store.claim("x", 10, NOW + 9, 30.0)] == ["retry"]


def test_expire_hurry_mark_and_changed() -> None:
    store = MemoryStore()
    assert store.changed() is False
    store.enqueue("old", "lead", b"{}", NOW - 100)
    store.enqueue("new", "lead", b"{}", NOW)
    assert store.changed() is True
    assert store.changed() is False
    mark = store.mark()
    store.claim("t", 10, NOW, 30.0)
    store.apply(Results(retries=[(1, NOW + 500, "e", "new", "t")]), NOW)
    assert store.expire(NOW - 50, NOW) == []  # "old" is leased
    assert store.expire(NOW - 50, NOW + 40) == ["old"]
    assert store.dead == [("old", "lead", "expired", None, None)]
    assert store.pending_through(mark) is True
    assert store.hurry(mark, NOW + 1) == 1
    assert store.changed() is True
    assert store.next_due() == NOW + 1
    assert store.hurry(mark, NOW + 1) == 0


def test_pause_lease_rejected_summaries_and_fork() -> None:
    store = MemoryStore()
    pause = Pause("auth", NOW + 60, NOW)
    store.set_pause(pause)
    assert store.get_pause() is pause
    assert store.acquire_lease("anyone", 15, NOW) is True
    store.release_lease("anyone")
    store.record_rejected(RejectedSummary("purchase", None, ("value",), "bad"))
    assert len(store.rejected) == 1
    store.enqueue("a", "lead", b"{}", NOW)
    store.prepare_fork()
    store.after_fork(child=False)
    store.prepare_fork()
    store.after_fork(child=True)  # the child starts empty: the parent delivers "a"
    assert store.count() == 0
    assert store.claim("t", 10, NOW, 30.0) == []
    store.close()
