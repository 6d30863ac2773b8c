"""The Delivery the Client uses: lazy start, flush, close, stats, spill, memory queue, leases."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine, RejectedSummary
from roasproof._delivery._engine import _at_exit
from roasproof._delivery._journal import read_segments, unmoved
from roasproof._delivery._store import Pause

from .sink import Reply, Sink
from .support import FAST, body_for

MakeEngine = Callable[..., Engine]


def test_nothing_is_opened_or_started_before_the_first_event(
    make_engine: MakeEngine, outbox_path: Path
) -> None:
    engine = make_engine()
    assert engine.sender is None
    assert not outbox_path.exists()
    engine.enqueue("purchase_1", "purchase", body_for("purchase_1"))
    assert engine.sender is not None
    assert engine.sender.alive


def test_the_outbox_file_and_its_wal_are_private_to_the_user(
    make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    engine = make_engine(make_settings(api_key=None))
    engine.enqueue("purchase_1", "purchase", body_for("purchase_1"))
    for path in (outbox_path, outbox_path.with_name(outbox_path.name + "-wal")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox_path.parent.stat().st_mode) == 0o700


def test_flush_returns_true_at_once_when_nothing_is_queued(make_engine: MakeEngine) -> None:
    engine = make_engine()
    assert engine.flush(0.5) is True
    assert engine.sender is None


def test_flush_cancels_the_backoff_of_events_waiting_for_a_retry(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.queue(Reply(503, headers={"Retry-After": "3600"}))
    engine = make_engine()
    engine.enqueue("purchase_r", "purchase", body_for("purchase_r"))
    assert sink.wait_for(lambda: len(sink.requests) == 1)
    time.sleep(0.1)
    assert engine.flush(5) is True
    assert sink.accepted == {"purchase_r": 1}


def test_flush_gives_up_early_when_delivery_is_paused_past_its_deadline(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.queue(Reply(429, headers={"Retry-After": "3600"}))
    engine = make_engine()
    engine.enqueue("purchase_q", "purchase", body_for("purchase_q"))
    assert sink.wait_for(lambda: engine.pause is not None)
    started = time.monotonic()
    assert engine.flush(10) is False
    assert time.monotonic() - started < 2


def test_flush_times_out_while_the_api_is_down(sink: Sink, make_engine: MakeEngine) -> None:
    sink.down()
    engine = make_engine()
    engine.enqueue("purchase_d", "purchase", body_for("purchase_d"))
    assert engine.flush(0.5) is False
    assert engine.stats()["pending"] == 1


def test_close_keeps_undelivered_events_for_the_next_process(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    sink.down()
    first = make_engine()
    first.enqueue("purchase_k", "purchase", body_for("purchase_k"))
    first.close(timeout=0.3)
    assert first.sender is None
    sink.up()
    second = make_engine(make_settings())
    assert second.flush(10) is True
    assert sink.accepted == {"purchase_k": 1}


def test_an_event_tracked_after_close_is_stored_but_not_sent_by_this_process(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    engine.close(timeout=0.1)
    assert engine.enqueue("late_1", "lead", body_for("late_1")) is True
    assert engine.sender is None
    assert engine.stats()["pending"] == 1
    assert engine.flush(0.2) is False


def test_stats_count_this_process_and_report_gauges(sink: Sink, make_engine: MakeEngine) -> None:
    engine = make_engine()
    sink.down()  # the first "a" stays queued while the second arrives: a duplicate
    engine.enqueue("a", "lead", body_for("a"))
    engine.enqueue("a", "lead", body_for("a"))
    engine.record_rejected(RejectedSummary("purchase", "b", ("currency",), "bad currency", 1.0))
    sink.up()
    assert engine.flush(5)
    stats = engine.stats()
    assert stats["enqueued"] == 1
    assert stats["duplicates"] == 1
    assert stats["delivered"] == 1
    assert stats["rejected"] == 1
    assert stats["pending"] == 0
    assert stats["leader"] == 1
    assert stats["paused"] == 0
    assert stats["in_flight"] == 0


def test_without_an_api_key_events_are_kept_and_the_problem_logged_once(
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(make_settings(api_key=None))
    engine.enqueue("a", "lead", body_for("a"))
    engine.enqueue("b", "lead", body_for("b"))
    assert engine.flush(0.2) is False
    assert engine.stats()["pending"] == 2
    assert caplog.text.count("no API key") == 1


def test_an_unwritable_outbox_keeps_events_in_memory_and_writes_them_back_later(
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the outbox directory should be")
    engine = make_engine(make_settings(outbox=blocked / "outbox.sqlite3"))
    assert engine.enqueue("purchase_s", "purchase", body_for("purchase_s")) is True
    assert engine.stats()["spill"] == 1
    assert "NOT durable" in caplog.text
    assert engine.flush(0.2) is False
    blocked.unlink()
    assert engine.enqueue("purchase_t", "purchase", body_for("purchase_t")) is True
    assert engine.stats()["spill"] == 0
    assert engine.flush(10) is True
    assert set(sink.accepted) == {"purchase_s", "purchase_t"}


def test_closing_with_events_still_in_the_spill_says_they_are_lost(
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    engine = make_engine(make_settings(outbox=blocked / "o.sqlite3"))
    engine.enqueue("purchase_s", "purchase", body_for("purchase_s"))
    engine.close(timeout=0.1)
    assert "they are lost" in caplog.text


def test_the_in_memory_queue_delivers_and_refuses_loudly_when_full(
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import replace

    sink.down()
    engine = make_engine(make_settings(outbox=None), tuning=replace(FAST, memory_queue_size=3))
    assert engine.store.durable is False
    for n in range(3):
        assert engine.enqueue(f"m{n}", "lead", body_for(f"m{n}")) is True
    assert engine.enqueue("m0", "lead", body_for("m0")) is False
    assert engine.enqueue("m3", "lead", body_for("m3")) is False
    assert engine.stats()["dropped"] == 1
    assert "dropped" in caplog.text
    sink.up()
    assert engine.flush(10) is True
    assert set(sink.accepted) == {"m0", "m1", "m2"}


def test_stopping_lets_a_request_in_flight_finish(sink: Sink, make_engine: MakeEngine) -> None:
    # The exit hook and close() stop the sender with requests possibly on the wire: they
    # finish (and are acked) within the stop's timeout, and stopping ends with them.
    sink.latency = 0.3
    engine = make_engine()
    engine.enqueue("slow", "lead", body_for("slow"))
    assert sink.wait_for(lambda: len(sink.requests) == 1)  # sent, not yet answered
    sender = engine.sender
    assert sender is not None
    started = time.monotonic()
    sender.stop(5.0)
    assert time.monotonic() - started < 2.0
    assert sink.accepted["slow"] == 1
    assert engine.pending() == 0  # acked: the next process does not send it again


def test_the_exit_hook_delivers_briefly_and_never_starts_a_thread(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    from dataclasses import replace

    idle = make_engine(make_settings())
    idle.store.enqueue("x", "lead", body_for("x"), time.time())
    threads = threading.active_count()
    busy = make_engine(make_settings(), tuning=replace(FAST, atexit_timeout=5.0))
    busy.enqueue("w", "lead", body_for("w"))
    assert sink.wait_for(lambda: "w" in sink.accepted)
    busy.enqueue("y", "lead", body_for("y"))
    _at_exit()
    assert idle.sender is None
    assert threading.active_count() <= threads + 2  # busy's sender, stopping
    assert "y" in sink.accepted
    busy.enqueue("z", "lead", body_for("z"))
    assert busy.sender is None


def test_the_exit_hook_leaves_events_waiting_for_a_retry_to_the_next_process(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.queue(Reply(503, headers={"Retry-After": "3600"}))
    engine = make_engine()
    engine.enqueue("r", "lead", body_for("r"))
    assert sink.wait_for(lambda: len(sink.requests) == 1)
    started = time.monotonic()
    engine.at_exit()
    assert time.monotonic() - started < FAST.atexit_timeout
    assert engine.stats()["pending"] == 1


def test_only_the_elected_sender_delivers_and_another_takes_over_when_it_closes(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    first = make_engine()
    first.enqueue("a", "lead", body_for("a"))
    assert first.flush(5)
    second = make_engine(make_settings())
    second.enqueue("b", "lead", body_for("b"))
    assert second.flush(5)  # delivered by the first process's sender
    assert first.stats()["delivered"] == 2
    assert second.sender is not None
    assert not second.sender.leader
    first.close(timeout=1)
    second.enqueue("c", "lead", body_for("c"))
    assert second.flush(5)
    assert second.stats()["delivered"] == 1
    assert sink.accepted == {"a": 1, "b": 1, "c": 1}


def test_senders_all_lets_every_process_deliver_without_duplicates(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    sink.latency = 0.002
    engines = [make_engine(make_settings(senders="all")) for _ in range(3)]
    for n in range(300):
        engines[n % 3].enqueue(f"e{n}", "lead", body_for(f"e{n}"))
    assert all(engine.flush(20) for engine in engines)
    assert sink.accepted == {f"e{n}": 1 for n in range(300)}
    assert sum(engine.stats()["delivered"] for engine in engines) == 300


def test_an_auth_pause_recorded_for_another_key_is_ignored(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    engine.store.set_pause(
        Pause("auth", time.time() + 3600, time.time(), 3, "old key refused", "0123456789ab")
    )
    engine.enqueue("a", "lead", body_for("a"))
    assert engine.flush(5) is True
    assert engine.store.get_pause() is None


def test_a_quota_pause_written_by_another_process_is_honoured(
    sink: Sink, make_engine: MakeEngine, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    assert engine.flush(5)
    with caplog.at_level(logging.INFO, logger="roasproof"):
        engine.store.set_pause(Pause("quota", time.time() + 0.6, time.time(), 0, "plan cap"))
        time.sleep(FAST.lease_renew + 0.1)
        engine.enqueue("b", "lead", body_for("b"))
        time.sleep(0.2)
        assert "b" not in sink.accepted
        assert engine.flush(5) is True
    assert "by another sender" in caplog.text


def test_a_forked_pid_is_detected_even_without_fork_hooks(
    sink: Sink, make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    parent_sender = engine.sender
    monkeypatch.setattr(engine, "_pid", os.getpid() + 1)  # as if this were a child
    engine.enqueue("b", "lead", body_for("b"))
    assert engine.sender is not parent_sender
    assert engine.flush(5) is True
    assert set(sink.accepted) == {"a", "b"}
    assert parent_sender is not None
    parent_sender.stop(1)


def test_a_locked_outbox_is_reported_and_delivery_resumes_when_it_is_free(
    sink: Sink,
    make_engine: MakeEngine,
    outbox_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import sqlite3

    from roasproof._delivery import _schema

    monkeypatch.setattr(_schema, "BUSY_TIMEOUT", 0.05)
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    assert engine.flush(5)
    blocker = sqlite3.connect(outbox_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # e.g. a backup tool holding the file
    try:
        assert engine.enqueue("b", "lead", body_for("b")) is True
        time.sleep(0.3)
        stats = engine.stats()  # durable in this process's journal meanwhile, not in memory
        assert (stats["spill"], stats["pending"]) == (0, 1)
        on_disk = [
            record[0]
            for name, data in read_segments(outbox_path).items()
            for record in unmoved(name, data, 0)
        ]
        assert on_disk == ["b"]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert "the outbox failed" in caplog.text
    engine.enqueue("c", "lead", body_for("c"))
    assert engine.flush(5) is True
    assert set(sink.accepted) == {"a", "b", "c"}


def test_a_sender_that_loses_its_lease_stops_sending(
    sink: Sink, make_engine: MakeEngine, outbox_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    assert engine.flush(5)
    with sqlite3.connect(outbox_path) as raw:  # another process won an election meanwhile
        raw.execute("UPDATE sender_lease SET owner = 'other', until = ?", (time.time() + 60,))
    sink.wait_for(lambda: "took over" in caplog.text, 3)
    assert engine.sender is not None
    assert not engine.sender.leader
    engine.enqueue("b", "lead", body_for("b"))
    time.sleep(0.3)
    assert "b" not in sink.accepted


def test_close_releases_requests_still_in_flight_for_the_next_process(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    sink.latency = 1.5
    engine = make_engine()
    engine.enqueue("slow", "lead", body_for("slow"))
    assert sink.wait_for(lambda: len(sink.requests) == 1)
    engine.close(timeout=0.2)
    sink.latency = 0.0
    successor = make_engine(make_settings())
    started = time.monotonic()
    assert successor.flush(5) is True
    assert time.monotonic() - started < 1.5  # no wait for the old lease to run out
    assert sink.accepted["slow"] >= 1


def test_a_sender_thread_that_died_is_replaced_on_the_next_event(
    sink: Sink, make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roasproof._delivery import _engine

    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    first = engine.sender
    assert first is not None
    first.stop(1)  # as if it had died
    assert not first.alive
    engine.enqueue("b", "lead", body_for("b"))
    assert engine.sender is first  # too soon: no restart loop
    monkeypatch.setattr(_engine, "_RESTART_AFTER", 0.0)
    engine.enqueue("c", "lead", body_for("c"))
    assert engine.sender is not first
    assert engine.flush(5) is True
    assert set(sink.accepted) == {"a", "b", "c"}


def test_the_exit_hook_keeps_delivering_between_one_request_and_the_next(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    # One request at a time, and after each answer the sender hands the GIL to the
    # application (it tracked a moment ago): for that moment nothing is in flight while
    # claimed rows wait their turn. The exit hook must not take that for "done".
    from dataclasses import replace

    sink.latency = 0.002
    tuning = replace(FAST, atexit_timeout=20.0, yield_every=1e-9, yield_for=0.01)
    engine = make_engine(make_settings(max_in_flight=1), tuning=tuning)
    engine.enqueue("first", "lead", body_for("first"))
    assert sink.wait_for(lambda: "first" in sink.accepted)
    names = [f"e{n}" for n in range(10)]
    for name in names:
        engine.enqueue(name, "lead", body_for(name))
    engine.at_exit()
    assert sink.accepted == {"first": 1, **dict.fromkeys(names, 1)}
