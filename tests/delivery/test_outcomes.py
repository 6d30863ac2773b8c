"""Every answer of the ingest API does the right thing to the event, end to end on loopback."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine
from roasproof._http import DeliveryResult
from roasproof.errors import AuthenticationFailed, EventRejected, QuotaExceeded

from .sink import DROP, Reply, Sink
from .support import API_KEY, body_for

MakeEngine = Callable[..., Engine]


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def test_events_are_delivered_once_each_with_the_event_id_as_idempotency_key(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    ids = [f"purchase_{n}" for n in range(50)]
    for event_id in ids:
        assert engine.enqueue(event_id, "purchase", body_for(event_id)) is True
    assert engine.flush(10) is True
    assert sink.accepted == dict.fromkeys(ids, 1)
    request = sink.requests[0]
    assert request.headers["idempotency-key"] == request.event_id
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert engine.stats()["delivered"] == 50
    assert engine.stats()["pending"] == 0


def test_a_second_enqueue_of_a_queued_event_id_is_refused(
    make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    engine = make_engine(make_settings(api_key=None))  # no key: nothing is sent
    assert engine.enqueue("lead_1", "lead", body_for("lead_1")) is True
    assert engine.enqueue("lead_1", "lead", body_for("lead_1")) is False
    assert engine.stats()["duplicates"] == 1
    assert engine.stats()["pending"] == 1


def test_422_dead_letters_the_event_with_the_servers_field_and_reason(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    errors: list[Exception] = []
    sink.queue(Reply(422, body=b'{"field":"currency","message":"unknown currency"}'))
    engine = make_engine(make_settings(on_error=errors.append))
    engine.enqueue("purchase_bad", "purchase", body_for("purchase_bad"))
    engine.enqueue("purchase_ok", "purchase", body_for("purchase_ok"))
    assert engine.flush(10) is True
    dead = _rows(outbox_path, "SELECT event_id, status_code, field, reason FROM dead")
    assert dead == [("purchase_bad", 422, "currency", "unknown currency")]
    assert sink.accepted == {"purchase_ok": 1}
    assert isinstance(errors[0], EventRejected)
    assert errors[0].field == "currency"
    assert engine.stats()["dead"] == 1


def test_a_5xx_is_retried_with_backoff_in_the_row_until_accepted(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.queue(Reply(503), Reply(500))
    engine = make_engine()
    engine.enqueue("signup_1", "signup", body_for("signup_1", "signup"))
    assert sink.wait_for(lambda: sink.accepted["signup_1"] == 1, 10)
    assert [r.event_id for r in sink.requests] == ["signup_1"] * 3
    assert engine.stats()["retried"] == 2


def test_a_dropped_connection_is_retried(sink: Sink, make_engine: MakeEngine) -> None:
    sink.queue(DROP)
    engine = make_engine()
    engine.enqueue("lead_7", "lead", body_for("lead_7", "lead"))
    assert engine.flush(10) is True
    assert sink.accepted == {"lead_7": 1}


def test_retry_after_on_a_503_is_a_floor_for_the_next_attempt(
    sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    sink.queue(Reply(503, headers={"Retry-After": "30"}))
    engine = make_engine()
    before = time.time()
    engine.enqueue("purchase_9", "purchase", body_for("purchase_9"))
    assert sink.wait_for(lambda: len(sink.requests) == 1)
    time.sleep(0.2)
    [(attempts, next_at, error)] = _rows(
        outbox_path, "SELECT attempts, next_attempt_at, last_error FROM pending"
    )
    assert attempts == 1
    assert next_at >= before + 30
    assert "503" in str(error)


def test_401_pauses_all_delivery_keeps_every_event_and_resumes_when_the_key_works(
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[Exception] = []
    sink.queue(Reply(401), Reply(401))
    engine = make_engine(make_settings(on_error=errors.append, max_in_flight=1))
    with caplog.at_level(logging.INFO, logger="roasproof"):
        for n in range(5):
            engine.enqueue(f"lead_{n}", "lead", body_for(f"lead_{n}", "lead"))
        assert sink.wait_for(lambda: len(sink.requests) >= 1)
        assert sink.wait_for(lambda: engine.pause is not None)
        assert engine.pause is not None
        assert engine.pause.reason == "auth"
        assert engine.stats()["paused"] == 1
        assert engine.flush(20) is True
    assert sink.accepted == {f"lead_{n}": 1 for n in range(5)}
    loud = [r for r in caplog.records if "PAUSED" in r.getMessage()]
    assert len(loud) == 1
    assert loud[0].levelno == logging.ERROR
    assert API_KEY not in caplog.text
    assert any("resumed" in r.getMessage() for r in caplog.records)
    assert [type(e) for e in errors] == [AuthenticationFailed]
    assert engine.pause is None
    assert engine.stats()["retried"] == 0


def test_429_pauses_until_retry_after_without_consuming_an_attempt(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    errors: list[Exception] = []
    sink.queue(Reply(429, headers={"Retry-After": "1"}))
    engine = make_engine(make_settings(on_error=errors.append, max_in_flight=1))
    start = time.monotonic()
    engine.enqueue("purchase_q", "purchase", body_for("purchase_q"))
    assert sink.wait_for(lambda: engine.pause is not None)
    [(attempts,)] = _rows(outbox_path, "SELECT attempts FROM pending")
    assert attempts == 0
    [(reason, until, since)] = _rows(outbox_path, "SELECT reason, until, since FROM pause")
    assert reason == "quota"
    assert until - since == pytest.approx(1.0, abs=0.05)
    assert sink.wait_for(lambda: sink.accepted["purchase_q"] == 1, 10)
    assert time.monotonic() - start >= 0.95
    assert isinstance(errors[0], QuotaExceeded)
    assert errors[0].retry_after == 1.0


def test_429_without_retry_after_backs_off_exponentially(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.queue(Reply(429), Reply(429))
    engine = make_engine()
    engine.enqueue("purchase_q", "purchase", body_for("purchase_q"))
    assert sink.wait_for(lambda: engine.pause is not None)
    first = engine.pause
    assert first is not None
    assert sink.wait_for(lambda: engine.pause is not None and engine.pause.probes == 1, 5)
    second = engine.pause
    assert second is not None
    assert second.until - second.since > first.until - first.since
    assert engine.flush(10) is True
    assert sink.accepted == {"purchase_q": 1}


def test_an_outage_then_recovery_drains_the_whole_backlog(
    sink: Sink, make_engine: MakeEngine
) -> None:
    sink.down()
    engine = make_engine()
    ids = [f"order_{n}" for n in range(300)]
    for event_id in ids:
        engine.enqueue(event_id, "purchase", body_for(event_id))
    time.sleep(3.0)  # the outage (30 s in the contract; backoffs shortened here)
    assert engine.stats()["delivered"] == 0
    assert engine.stats()["pending"] == 300
    sink.up()
    assert engine.flush(20) is True
    assert sink.accepted == dict.fromkeys(ids, 1)


def test_events_older_than_max_event_age_are_dead_lettered_as_expired(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    errors: list[Exception] = []
    sink.down()
    engine = make_engine(make_settings(max_event_age=0.5, on_error=errors.append))
    engine.enqueue("lead_old", "lead", body_for("lead_old", "lead"))
    deadline = time.monotonic() + 10
    while not _rows(outbox_path, "SELECT 1 FROM dead") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(outbox_path, "SELECT event_id, reason FROM dead") == [("lead_old", "expired")]
    assert any(isinstance(e, EventRejected) and e.reason == "expired" for e in errors)


def test_an_expired_event_claimed_for_sending_is_dead_lettered_not_sent(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    engine = make_engine(make_settings(max_event_age=60.0))
    engine.store.enqueue("lead_stale", "lead", body_for("lead_stale"), time.time() - 120)
    engine.enqueue("lead_fresh", "lead", body_for("lead_fresh"))
    assert engine.flush(10) is True
    assert sink.accepted == {"lead_fresh": 1}
    assert _rows(outbox_path, "SELECT event_id, reason FROM dead") == [("lead_stale", "expired")]


def test_on_delivered_gets_the_result_and_a_failing_hook_does_not_stop_delivery(
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[DeliveryResult] = []

    def hook(result: DeliveryResult) -> None:
        seen.append(result)
        raise RuntimeError("hook bug")

    engine = make_engine(make_settings(on_delivered=hook))
    engine.enqueue("purchase_h1", "purchase", body_for("purchase_h1"))
    engine.enqueue("purchase_h2", "purchase", body_for("purchase_h2"))
    assert engine.flush(10) is True
    assert sorted(r.event_id for r in seen) == ["purchase_h1", "purchase_h2"]
    assert seen[0].destinations[0].destination == "meta"
    assert "on_delivered hook raised" in caplog.text
