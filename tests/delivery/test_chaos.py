"""10,000 events through 30% 503s, 5% dropped connections and latency: all delivered, once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine

from .support import API_KEY, FAST

MakeEngine = Callable[..., Engine]
#: Retries still back off exponentially with full jitter, on a shorter scale, so the
#: long tail of an event failing many times in a row stays within the test's budget.
CHAOS_TUNING = replace(FAST, backoff_base=0.05, backoff_cap=1.0, breaker_threshold=25)


def _lead(event_id: str) -> bytes:
    now = datetime.now(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
    body = {"event": "lead", "event_id": event_id, "occurred_at": now, "action_source": "website"}
    return json.dumps(body).encode()


@pytest.fixture
def chaotic_emulator() -> Iterator[tuple[Any, str]]:
    emu = pytest.importorskip("roasproof.emulator")
    chaos = emu.ChaosConfig(fail_rate=0.30, fail_status=503, drop_rate=0.05, latency=0.002, seed=7)
    app = emu.create_app(api_keys=[API_KEY], plan_cap=1_000_000, subscription="active", chaos=chaos)
    server = emu.run_in_thread(app)
    try:
        yield app, server.url
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_ten_thousand_events_through_chaos_are_all_delivered_exactly_once(
    chaotic_emulator: tuple[Any, str],
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
) -> None:
    app, url = chaotic_emulator
    engine = make_engine(make_settings(endpoint=url, max_in_flight=32), tuning=CHAOS_TUNING)
    ids = [f"lead_{n}" for n in range(10_000)]
    started = time.monotonic()
    for event_id in ids:
        assert engine.enqueue(event_id, "lead", _lead(event_id))
    assert engine.flush(90) is True
    elapsed = time.monotonic() - started
    received = Counter(record["event_id"] for record in app.state.emulator.store.events())
    assert received == dict.fromkeys(ids, 1)
    counts = app.state.chaos.counts
    assert counts["failed"] > 2_000
    assert counts["dropped"] > 300
    stats = engine.stats()
    assert stats["delivered"] == 10_000
    assert stats["retried"] == counts["failed"] + counts["dropped"]
    assert elapsed < 75  # about 40 s on 2 shared cores; a collapse of concurrency takes minutes


@pytest.mark.slow
def test_answers_lost_after_processing_are_resent_and_counted_once_by_the_api(
    make_engine: MakeEngine, make_settings: Callable[..., Settings]
) -> None:
    emu = pytest.importorskip("roasproof.emulator")
    chaos = emu.ChaosConfig(drop_rate=0.2, drop_after_processing=True, seed=3)
    app = emu.create_app(api_keys=[API_KEY], plan_cap=1_000_000, chaos=chaos)
    server = emu.run_in_thread(app)
    try:
        engine = make_engine(make_settings(endpoint=server.url), tuning=CHAOS_TUNING)
        ids = [f"lead_{n}" for n in range(500)]
        for event_id in ids:
            engine.enqueue(event_id, "lead", _lead(event_id))
        assert engine.flush(30) is True
    finally:
        server.stop()
    store = app.state.emulator.store
    counted = Counter(record["event_id"] for record in store.events(duplicates=False))
    assert counted == dict.fromkeys(ids, 1)
    assert len(store.events()) - len(ids) == app.state.chaos.counts["dropped"]
