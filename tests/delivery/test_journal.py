"""The journal: track()'s one write(), moved into the outbox exactly once, even after kill -9.

Real files, real SQLite, real processes: a "process that died" is a
subprocess killed with SIGKILL, and a "live process" holds a real flock.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine, _journal
from roasproof._delivery._journal import MAGIC, Journal, read_segment, read_segments, unmoved
from roasproof._delivery._outbox import SQLiteStore
from roasproof._delivery._schema import connect
from roasproof.cli import main as cli

from .sink import Sink
from .support import FAST, body_for, run_python

MakeEngine = Callable[..., Engine]

#: A process that appends ``RP_COUNT`` events to the journal of ``RP_OUTBOX``, moves the
#: first ``RP_MOVED`` of them into the outbox, says so, and dies with SIGKILL.
APPEND_THEN_DIE = """
import os, signal, sys, time
from pathlib import Path
from roasproof._delivery._journal import Journal
from roasproof._delivery._outbox import SQLiteStore

journal = Journal(SQLiteStore(Path(os.environ["RP_OUTBOX"])))
count, moved = int(os.environ["RP_COUNT"]), int(os.environ["RP_MOVED"])
for n in range(count):
    journal.append(f"order_{n}", "purchase", b'{"n": %d}' % n, time.time())
    if n + 1 == moved:
        print("moved", journal.drain().added, flush=True)
print("appended", count, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def store(outbox_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(outbox_path)
    yield opened
    opened.close()


def _pending(outbox: Path) -> dict[str, bytes]:
    with sqlite3.connect(outbox) as conn:
        rows = conn.execute("SELECT event_id, body FROM pending ORDER BY rowid").fetchall()
    return {str(event_id): bytes(body) for event_id, body in rows}


def _die_after_appending(outbox: Path, count: int, moved: int = 0) -> str:
    result = run_python(
        APPEND_THEN_DIE,
        env={"RP_OUTBOX": str(outbox), "RP_COUNT": str(count), "RP_MOVED": str(moved)},
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    return result.stdout


def test_drain_moves_every_record_into_the_outbox_once(store: SQLiteStore) -> None:
    journal = Journal(store)
    now = time.time()
    assert journal.append("a", "purchase", body_for("a"), now) is True  # starts a batch
    assert journal.append("b", "lead", body_for("b", "lead"), now) is False
    assert journal.append("a", "purchase", body_for("a"), now) is False
    assert journal.pending == 3
    assert journal.drain() == _journal.Drained(added=2, duplicates=1)
    assert journal.pending == 0
    assert _pending(store.path) == {"a": body_for("a"), "b": body_for("b", "lead")}
    assert journal.drain() == _journal.Drained()  # nothing twice
    with sqlite3.connect(store.path) as conn:
        event, created = conn.execute(
            "SELECT event, created_at FROM pending WHERE event_id = 'b'"
        ).fetchone()
    assert (event, created) == ("lead", now)


def test_segments_are_private_and_hold_exactly_what_was_appended(store: SQLiteStore) -> None:
    journal = Journal(store)
    journal.append("order_1", "purchase", body_for("order_1"), 1_700_000_000.5)
    segments = read_segments(store.path)
    assert len(segments) == 1
    ((name, data),) = segments.items()
    assert data.startswith(MAGIC)
    assert unmoved(name, data, 0) == [("order_1", "purchase", body_for("order_1"), 1_700_000_000.5)]
    directory = store.path.with_name(store.path.name + ".journal")
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(directory / name).st_mode) == 0o600
    journal.close()


def test_a_full_segment_is_replaced_and_deleted_once_moved(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_journal, "SEGMENT_BYTES", 2_000)
    journal = Journal(store)
    for n in range(40):
        journal.append(f"e{n}", "lead", body_for(f"e{n}"), time.time())
        if n % 10 == 9:
            journal.drain()
    assert len(_pending(store.path)) == 40
    current = journal._current
    assert current is not None
    # left: the segment in use and the next one, prepared ahead by the drain
    assert len(read_segments(store.path)) == 2
    journal.drain()  # the next move forgets where the deleted segments had got to
    with sqlite3.connect(store.path) as conn:
        noted = [row[0] for row in conn.execute("SELECT segment FROM ingested")]
    assert noted == [current.path.name]


def test_a_killed_process_s_journal_is_adopted_and_delivered_once(
    sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    assert "appended 50" in _die_after_appending(outbox_path, 50)
    assert len(read_segments(outbox_path)) == 1
    engine = make_engine()
    assert engine.flush(10) is True  # flush adopts what dead processes left
    assert sorted(sink.accepted) == sorted(f"order_{n}" for n in range(50))
    assert set(sink.accepted.values()) == {1}
    assert read_segments(outbox_path) == {}


def test_records_moved_before_the_kill_are_not_moved_again(
    store: SQLiteStore, outbox_path: Path
) -> None:
    out = _die_after_appending(outbox_path, 30, moved=20)
    assert "moved 20" in out
    assert "appended 30" in out
    with sqlite3.connect(outbox_path) as conn:  # as if the sender had delivered them
        conn.execute("DELETE FROM pending")
    assert Journal(store).adopt() == _journal.Drained(added=10)
    assert list(_pending(outbox_path)) == [f"order_{n}" for n in range(20, 30)]


def test_the_sender_adopts_a_dead_process_s_journal_without_a_flush(
    sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    _die_after_appending(outbox_path, 5)
    engine = make_engine()
    engine.enqueue("live_1", "lead", body_for("live_1"))  # starts the sender
    deadline = time.monotonic() + 10
    while len(sink.accepted) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert set(sink.accepted) == {"live_1", *(f"order_{n}" for n in range(5))}


def test_a_live_process_s_segments_are_never_adopted(store: SQLiteStore) -> None:
    owner = Journal(store)
    owner.append("mine", "lead", body_for("mine"), time.time())
    store.count()  # creates the outbox
    other = Journal(store)  # another open file description: flock tells them apart
    assert other.adopt() == _journal.Drained()
    assert _pending(store.path) == {}
    assert owner.drain().added == 1
    owner.close()
    assert read_segments(store.path) == {}


def test_a_torn_tail_is_ignored_with_a_warning(
    store: SQLiteStore, outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _die_after_appending(outbox_path, 3)
    ((name, data),) = read_segments(outbox_path).items()
    *_, (_, end) = read_segment(data)
    path = outbox_path.with_name(outbox_path.name + ".journal") / name
    with path.open("r+b") as segment:  # the first half of a fourth record
        segment.seek(end)
        segment.write(data[len(MAGIC) : len(MAGIC) + 20])
    with caplog.at_level(logging.WARNING, "roasproof"):
        assert Journal(store).adopt().added == 3
    assert "torn record" in caplog.text


def test_the_zero_filled_rest_of_a_segment_is_not_a_torn_record(
    store: SQLiteStore, outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _die_after_appending(outbox_path, 2)
    ((_, data),) = read_segments(outbox_path).items()
    assert len(data) == _journal.SEGMENT_BYTES  # reserved at full size
    with caplog.at_level(logging.WARNING, "roasproof"):
        assert Journal(store).adopt().added == 2
    assert "torn" not in caplog.text


def test_a_corrupt_record_stops_the_reader_there() -> None:
    good = [
        ("a", "lead", b"{}", 1.0),
        ("b", "lead", b"{}", 2.0),
    ]
    frames = []
    for event_id, event, body, at in good:
        payload = (
            _journal._FIELDS.pack(len(body), at, len(event_id), len(event))
            + event_id.encode()
            + event.encode()
            + body
        )
        frames.append(_journal._FRAME.pack(len(payload), _journal.zlib.crc32(payload)) + payload)
    data = MAGIC + frames[0] + frames[1]
    assert [record for record, _ in read_segment(data)] == good
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    assert [record for record, _ in read_segment(bytes(flipped))] == good[:1]


def test_leftovers_that_are_not_segments_are_set_aside_or_cleaned(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    directory = store.path.with_name(store.path.name + ".journal")
    directory.mkdir(mode=0o700, parents=True)
    (directory / "stranger.log").write_bytes(b"not ours")
    old_temp = directory / ".1-dead-000001.tmp"
    old_temp.write_bytes(MAGIC)
    os.utime(old_temp, (time.time() - 3600, time.time() - 3600))
    young_temp = directory / ".2-busy-000001.tmp"
    young_temp.write_bytes(b"")
    assert Journal(store).adopt() == _journal.Drained()
    assert sorted(p.name for p in directory.iterdir()) == [
        ".2-busy-000001.tmp",
        "stranger.log.unreadable",
    ]
    assert "not a roasproof journal segment" in caplog.text


def test_power_durability_fsyncs_and_still_moves_records(outbox_path: Path) -> None:
    store = SQLiteStore(outbox_path, durability="power")
    try:
        journal = Journal(store)
        journal.append("p", "purchase", body_for("p"), time.time())
        assert journal.close().added == 1
        assert list(_pending(outbox_path)) == ["p"]
    finally:
        store.close()


def test_a_failed_move_keeps_the_records_for_the_next_drain(
    store: SQLiteStore, outbox_path: Path
) -> None:
    journal = Journal(store)
    journal.append("x", "lead", body_for("x"), time.time())
    blocker = connect(outbox_path)
    blocker.execute("PRAGMA busy_timeout=0")
    blocker.execute("BEGIN EXCLUSIVE")
    store.close()
    try:
        conn = store._conn()
        conn.execute("PRAGMA busy_timeout=50")
        with pytest.raises(sqlite3.OperationalError):
            journal.drain()
        assert journal.pending == 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert journal.drain().added == 1
    assert list(_pending(outbox_path)) == ["x"]


def test_an_unwritable_journal_falls_back_to_committing_in_sqlite(
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine()
    engine.enqueue("first", "lead", body_for("first"))  # committed directly; starts the sender
    outbox_path.with_name(outbox_path.name + ".journal").write_text("a file, not a directory")
    assert engine.enqueue("second", "lead", body_for("second")) is True
    assert "cannot write its journal" in caplog.text
    assert engine.flush(10) is True
    assert set(sink.accepted) == {"first", "second"}


def test_events_tracked_from_many_threads_are_each_moved_once(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    engine.enqueue("warm", "lead", body_for("warm"))

    def track(worker: int) -> None:
        for n in range(200):
            engine.enqueue(f"t{worker}_{n}", "lead", body_for(f"t{worker}_{n}"))

    threads = [threading.Thread(target=track, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engine.flush(30) is True
    assert len(sink.accepted) == 801
    assert set(sink.accepted.values()) == {1}
    assert engine.stats()["enqueued"] == 801


def test_outbox_status_counts_events_still_in_a_journal(outbox_path: Path) -> None:
    _die_after_appending(outbox_path, 4, moved=1)
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["outbox", "--outbox", str(outbox_path), "status"])
    assert result.exit_code == 0, result.output
    assert "pending   4 (due now 1" in result.output
    assert "in journals 3" in result.output


def test_an_event_too_large_for_a_segment_is_committed_to_the_outbox_instead(
    sink: Sink, make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_journal, "SEGMENT_BYTES", 4096)
    engine = make_engine()
    engine.enqueue("small_1", "lead", body_for("small_1"))  # starts the sender
    large = body_for("large") + b" " * 5000
    assert engine.enqueue("large", "lead", large) is True
    assert engine.journal is not None
    assert engine.journal.pending == 0  # not journaled, and not lost
    assert engine.enqueue("small_2", "lead", body_for("small_2")) is True
    assert engine.journal.pending == 1
    assert engine.flush(10) is True
    assert set(sink.accepted) == {"small_1", "large", "small_2"}


def test_records_span_segments_and_full_ones_are_deleted_once_moved(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_journal, "SEGMENT_BYTES", 4096)
    journal = Journal(store)
    for n in range(120):  # about 80 bytes each: several segments, no drain in between
        journal.append(f"e{n}", "lead", body_for(f"e{n}"), time.time())
    assert len(read_segments(store.path)) > 1
    assert journal.pending == 120
    assert journal.drain().added == 120
    assert list(_pending(store.path)) == [f"e{n}" for n in range(120)]
    assert len(read_segments(store.path)) <= 2  # the one in use, maybe its spare


def test_a_journal_that_cannot_keep_up_hands_events_to_the_outbox_directly(
    sink: Sink, make_engine: MakeEngine
) -> None:
    # The sender moves the journal rarely here; past memory_queue_size waiting records,
    # track() commits to the outbox itself: memory stays bounded, nothing is refused.
    tuning = dataclasses.replace(FAST, memory_queue_size=5, journal_linger=30.0)
    engine = make_engine(tuning=tuning)
    sink.down()  # nothing delivered while counting where the events are
    for n in range(20):
        assert engine.enqueue(f"e{n}", "lead", body_for(f"e{n}")) is True
    assert engine.journal is not None
    assert engine.journal.pending <= 5
    assert engine.journal.pending + engine.store.count() == 20
    sink.up()
    assert engine.flush(10) is True
    assert len(sink.accepted) == 20


def test_events_tracked_while_the_journal_is_moved_follow_within_the_linger(
    sink: Sink, make_engine: MakeEngine
) -> None:
    # A worker that is not the elected sender sleeps lease_renew between lease attempts;
    # only the journal's batches wake it. Events tracked while a batch is being moved
    # must still reach the outbox one linger later, not one lease_renew later.
    tuning = dataclasses.replace(FAST, lease_renew=30.0, lease_ttl=60.0)
    engine = make_engine(tuning=tuning)
    engine.store.count()  # creates the outbox
    with connect(engine.store.path) as conn:  # another worker is the elected sender
        conn.execute(
            "INSERT OR REPLACE INTO sender_lease VALUES ('sender', 'other-worker', 1, 'h', ?)",
            (time.time() + 3600,),
        )
    engine.enqueue("warm", "lead", body_for("warm"))  # starts this worker's sender
    time.sleep(0.1)  # it finds the lease taken and sleeps
    assert engine.sender is not None
    assert not engine.sender.leader
    assert engine.journal is not None
    deadline = time.monotonic() + 0.5
    n = 0
    while time.monotonic() < deadline:  # a busy worker: events arrive during every move
        engine.enqueue(f"e{n}", "lead", body_for(f"e{n}"))
        n += 1
    waited = time.monotonic() + 2.0
    while engine.journal.pending and time.monotonic() < waited:
        time.sleep(0.01)
    assert engine.journal.pending == 0
    assert engine.store.count() == n + 1
    assert sink.accepted == {}
