"""The SQLite store: schema, enqueue, leases and fenced outcomes, expiry, pause, election."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from roasproof._delivery import RejectedSummary, _election
from roasproof._delivery._outbox import SQLiteStore
from roasproof._delivery._schema import SCHEMA_VERSION, connect, immediate, open_existing
from roasproof._delivery._store import DeadLetter, Pause, Results
from roasproof.errors import ConfigurationError

from .support import body_for

NOW = 1_780_000_000.0


@pytest.fixture
def store(outbox_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(outbox_path)
    yield opened
    opened.close()


def _fill(store: SQLiteStore, *ids: str, at: float = NOW) -> None:
    for event_id in ids:
        assert store.enqueue(event_id, "lead", body_for(event_id), at)


def test_a_new_outbox_gets_the_current_schema_in_wal_mode(outbox_path: Path) -> None:
    conn = connect(outbox_path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        conn.close()


def test_power_durability_syncs_every_commit(outbox_path: Path) -> None:
    conn = connect(outbox_path, "power")
    try:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        conn.close()


def test_an_outbox_from_a_newer_release_is_refused_with_the_fix(outbox_path: Path) -> None:
    connect(outbox_path).close()
    with sqlite3.connect(outbox_path) as raw:
        raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(ConfigurationError, match="upgrade roasproof"):
        connect(outbox_path)


def test_open_existing_never_creates_a_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_existing(tmp_path / "missing.sqlite3")
    assert not (tmp_path / "missing.sqlite3").exists()


def test_an_unusable_path_is_a_configuration_error_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="ROASPROOF_OUTBOX"):
        connect(tmp_path / "file" / "outbox.sqlite3")


def test_a_failed_transaction_is_rolled_back(outbox_path: Path) -> None:
    conn = connect(outbox_path)
    try:

        def fail_midway() -> None:
            with immediate(conn):
                conn.execute("INSERT INTO rejected (at, fields, message) VALUES (1, '[]', 'x')")
                raise ZeroDivisionError

        with pytest.raises(ZeroDivisionError):
            fail_midway()
        assert conn.execute("SELECT count(*) FROM rejected").fetchone()[0] == 0
        assert not conn.in_transaction
    finally:
        conn.close()


def test_enqueue_refuses_an_event_id_already_queued(store: SQLiteStore) -> None:
    assert store.enqueue("a", "lead", b"{}", NOW) is True
    assert store.enqueue("a", "lead", b"{}", NOW) is False
    assert store.count() == 1


def test_claims_lease_due_rows_oldest_first_and_hide_them_until_the_lease_ends(
    store: SQLiteStore,
) -> None:
    _fill(store, "a", "b", "c")
    rows = store.claim("t1", 2, NOW, 30.0)
    assert [row.event_id for row in rows] == ["a", "b"]
    assert rows[0].body == body_for("a")
    assert rows[0].token == "t1"
    assert [row.event_id for row in store.claim("t2", 10, NOW, 30.0)] == ["c"]
    assert store.claim("t3", 10, NOW + 29, 30.0) == []
    assert store.next_due() == NOW + 30
    reclaimed = store.claim("t3", 10, NOW + 31, 30.0)  # the leases ran out: a dead sender
    assert {row.event_id for row in reclaimed} == {"a", "b", "c"}


def test_claims_work_without_returning_on_old_sqlite(store: SQLiteStore) -> None:
    store.returning = False
    _fill(store, "a", "b")
    assert [row.event_id for row in store.claim("t", 5, NOW, 30.0)] == ["a", "b"]
    assert store.claim("u", 5, NOW, 30.0) == []


def test_outcomes_apply_only_where_the_claim_token_still_matches(store: SQLiteStore) -> None:
    _fill(store, "ack", "retry", "release", "dead", "stolen")
    store.claim("mine", 5, NOW, 1.0)
    store.claim("theirs", 5, NOW + 2, 30.0)  # my lease expired; another sender took the rows
    late = Results(
        acks=[("ack", "mine")],
        retries=[(1, NOW + 60, "503", "retry", "mine")],
        releases=[(NOW, "release", "mine")],
        deads=[DeadLetter("dead", "mine", "bad", 422, "value")],
    )
    store.apply(late, NOW + 3)
    assert store.count() == 5  # fenced: nothing happened
    results = Results(
        acks=[("ack", "theirs")],
        retries=[(1, NOW + 60, "503 from the API", "retry", "theirs")],
        releases=[(NOW + 3, "release", "theirs")],
        deads=[DeadLetter("dead", "theirs", "unknown currency", 422, "currency")],
    )
    assert len(results) == 4
    store.apply(results, NOW + 3)
    with sqlite3.connect(store.path) as raw:
        left = raw.execute(
            "SELECT event_id, attempts, next_attempt_at, lease_owner, last_error FROM pending "
            "ORDER BY event_id"
        ).fetchall()
        dead = raw.execute("SELECT event_id, status_code, field, reason FROM dead").fetchall()
    assert left == [
        ("release", 0, NOW + 3, None, None),
        ("retry", 1, NOW + 60, None, "503 from the API"),
        ("stolen", 0, NOW + 32, "theirs", None),
    ]
    assert dead == [("dead", 422, "currency", "unknown currency")]
    results.clear()
    assert len(results) == 0


def test_expire_moves_old_unleased_rows_to_the_dead_letters(store: SQLiteStore) -> None:
    _fill(store, "old", at=NOW - 100)
    _fill(store, "old_leased", at=NOW - 100)
    _fill(store, "new", at=NOW)
    store.claim("t", 1, NOW - 100, 1000.0)  # leases "old"
    assert store.expire(NOW - 50, NOW) == ["old_leased"]
    assert store.expire(NOW - 50, NOW + 2000) == ["old"]  # its lease is over
    assert store.count() == 1


def test_changed_notices_commits_from_other_connections_only(store: SQLiteStore) -> None:
    store.changed()
    assert store.changed() is False
    other = SQLiteStore(store.path)
    try:
        other.enqueue("x", "lead", b"{}", NOW)
    finally:
        other.close()
    assert store.changed() is True
    assert store.changed() is False


def test_mark_pending_through_and_hurry(store: SQLiteStore) -> None:
    assert store.mark() == 0
    _fill(store, "a", "b")
    mark = store.mark()
    store.claim("t", 1, NOW, 30.0)  # "a" is leased, "b" waits
    store.apply(Results(retries=[(1, NOW + 500, "503", "a", "t")]), NOW)
    _fill(store, "c")
    assert store.pending_through(mark) is True
    assert store.hurry(mark, NOW + 1) == 1  # "a" only: "b" is already due
    assert store.next_due() == NOW
    claimed = {row.event_id for row in store.claim("u", 10, NOW + 1, 30.0)}
    assert claimed == {"a", "b", "c"}
    store.apply(Results(acks=[("a", "u"), ("b", "u")]), NOW + 1)
    assert store.pending_through(mark) is False


def test_the_pause_row_round_trips_and_clears(store: SQLiteStore) -> None:
    assert store.get_pause() is None
    pause = Pause("quota", NOW + 60, NOW, 2, "plan ceiling", None)
    store.set_pause(pause)
    assert store.get_pause() == pause
    store.set_pause(None)
    assert store.get_pause() is None


def test_the_sender_lease_goes_to_one_owner_until_it_expires_or_is_released(
    store: SQLiteStore,
) -> None:
    assert store.acquire_lease("A", 15.0, NOW) is True
    assert store.acquire_lease("B", 15.0, NOW + 1) is False
    assert store.acquire_lease("A", 15.0, NOW + 5) is True  # renewal
    assert store.acquire_lease("B", 15.0, NOW + 19) is False
    assert store.acquire_lease("B", 15.0, NOW + 21) is True  # A stopped renewing
    store.release_lease("A")  # not the holder: no effect
    conn = open_existing(store.path)
    try:
        holder = _election.holder(conn)
        assert holder is not None
        assert holder.owner == "B"
        store.release_lease("B")
        assert _election.holder(conn) is None
    finally:
        conn.close()
    assert store.acquire_lease("A", 15.0, NOW + 22) is True


def test_owners_are_unique_per_sender_incarnation() -> None:
    assert _election.new_owner() != _election.new_owner()


def test_only_the_latest_thousand_rejected_summaries_are_kept(store: SQLiteStore) -> None:
    for n in range(1005):
        store.record_rejected(RejectedSummary("purchase", f"p{n}", ("value",), "bad", NOW))
    with sqlite3.connect(store.path) as raw:
        count, first = raw.execute("SELECT count(*), min(event_id) FROM rejected").fetchone()
    assert count == 1000
    assert first == "p10"  # p0..p4 dropped; min() is textual


def test_a_store_reopens_after_close_and_forgets_inherited_connections_after_fork(
    store: SQLiteStore,
) -> None:
    _fill(store, "a")
    store.close()
    assert store.count() == 1  # reopened
    store.prepare_fork()
    store.after_fork(child=False)
    store.prepare_fork()
    store.after_fork(child=True)  # as in a child: fresh lock and connections
    assert store.count() == 1


def test_a_busy_outbox_raises_after_the_busy_timeout(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roasproof._delivery import _schema

    _fill(store, "a")
    monkeypatch.setattr(_schema, "BUSY_TIMEOUT", 0.05)
    store.close()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            store.claim("t", 1, NOW, 30.0)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert time.monotonic() - started < 2
