"""Chaos modes: injected failures, latency, dropped connections and outages, deterministic."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from roasproof._client import Client
from roasproof.emulator import Chaos, ChaosConfig, create_app
from roasproof.errors import ConfigurationError, TransientError

from .conftest import Running, StartEmulator


def _statuses(running: Running, count: int) -> list[int | str]:
    """The status of ``count`` sequential posts, or "dropped" when no answer came."""
    seen: list[int | str] = []
    for n in range(count):
        try:
            answer = running.post({"event": "lead", "event_id": f"lead_{n}"})
        except httpx.TransportError:
            seen.append("dropped")
        else:
            seen.append(answer.status_code)
    return seen


def test_the_first_requests_can_be_made_to_fail_with_retry_after(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(chaos=ChaosConfig(fail_first=2, fail_status=500, retry_after=1.5))
    first = running.post({"event": "lead"})
    assert first.status_code == 500
    assert first.headers["retry-after"] == "1.5"
    assert first.json()["error"] == "unavailable"
    assert _statuses(running, 2) == [500, 202]
    assert len(running.events()) == 1


def test_a_seeded_failure_rate_gives_the_same_sequence_on_every_run(
    start_emulator: StartEmulator,
) -> None:
    config = ChaosConfig(fail_rate=0.4, fail_status=503)
    first = _statuses(start_emulator(chaos=config, seed=7), 20)
    second = _statuses(start_emulator(chaos=config, seed=7), 20)
    assert first == second
    assert set(first) == {202, 503}
    assert 3 <= first.count(503) <= 14


def test_failures_only_touch_ingestion_not_inspection(start_emulator: StartEmulator) -> None:
    running = start_emulator(chaos=ChaosConfig(fail_rate=1.0))
    assert running.post({"event": "lead"}).status_code == 503
    assert running.http.get("/api/v1/events").status_code == 200
    assert running.http.post("/api/v1/collect", json={}).status_code == 200


def test_latency_delays_each_ingestion(start_emulator: StartEmulator) -> None:
    running = start_emulator(chaos=ChaosConfig(latency=0.3))
    started = time.monotonic()
    assert running.post({"event": "lead"}).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_a_dropped_connection_gives_the_client_a_connection_error(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(chaos=ChaosConfig(drop_rate=1.0))
    with pytest.raises(httpx.RemoteProtocolError):
        running.post({"event": "lead"})
    assert running.events() == []
    assert running.app.state.chaos.counts["dropped"] == 1


def test_the_sdk_reports_a_dropped_connection_as_transient(start_emulator: StartEmulator) -> None:
    running = start_emulator(chaos=ChaosConfig(drop_rate=1.0))
    client = Client("rp_test_emulator", endpoint=running.url, outbox=None)
    with client, pytest.raises(TransientError) as caught:
        client.send("lead", event_id="lead_1")
    assert caught.value.status_code is None


def test_a_drop_after_processing_stores_the_event_and_the_retry_is_a_duplicate(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(chaos=ChaosConfig(drop_rate=1.0, drop_after_processing=True))
    with pytest.raises(httpx.TransportError):
        running.post({"event": "purchase", "event_id": "purchase_9"})
    running.app.state.chaos.configure(drop_rate=0.0)
    retry = running.post({"event": "purchase", "event_id": "purchase_9"})
    assert retry.json()["duplicate"] is True
    assert running.usage()["tracked_conversions"] == 1


def test_a_seeded_mix_of_drops_and_failures_is_reproducible(
    start_emulator: StartEmulator,
) -> None:
    config = ChaosConfig(drop_rate=0.3, fail_rate=0.3, seed=3)
    first = _statuses(start_emulator(chaos=config), 15)
    second = _statuses(start_emulator(chaos=config), 15)
    assert first == second
    assert {"dropped", 503, 202} <= set(first)


def test_an_outage_window_refuses_connections_then_ends(start_emulator: StartEmulator) -> None:
    running = start_emulator(chaos=ChaosConfig(down_after=0.0, down_for=0.6))
    with pytest.raises(httpx.TransportError):
        running.post({"event": "lead"})
    time.sleep(0.7)
    assert running.post({"event": "lead"}).status_code == 202
    assert running.app.state.chaos.counts["refused_down"] == 1


def test_an_outage_can_answer_503_instead(start_emulator: StartEmulator) -> None:
    config = ChaosConfig(down_for=30, down_mode="503", retry_after=2)
    running = start_emulator(chaos=config)
    answer = running.post({"event": "lead"})
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "2")


def test_an_outage_that_starts_later(start_emulator: StartEmulator) -> None:
    running = start_emulator(chaos=ChaosConfig(down_after=30, down_for=30))
    assert running.post({"event": "lead"}).status_code == 202


def test_an_outage_can_be_switched_on_and_off_at_run_time(emulator: Running) -> None:
    chaos: Chaos = emulator.app.state.chaos
    chaos.go_down()
    assert chaos.is_down()
    with pytest.raises(httpx.TransportError):
        emulator.post({"event": "lead"})
    chaos.come_up()
    assert emulator.post({"event": "lead"}).status_code == 202
    chaos.go_down(0.2)
    time.sleep(0.3)
    assert not chaos.is_down()


async def test_outside_uvicorn_a_drop_raises_in_the_server() -> None:
    app = create_app(chaos=ChaosConfig(drop_rate=1.0))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as http:
        with pytest.raises(ConnectionAbortedError):
            await http.post("/api/v1/events", json={"event": "lead"})


@pytest.mark.parametrize(
    "changes",
    [
        {"fail_rate": 1.5},
        {"drop_rate": -0.1},
        {"fail_rate": 0.6, "drop_rate": 0.6},
        {"fail_status": 404},
        {"latency": -1},
        {"retry_after": -1},
        {"down_mode": "explode"},
    ],
)
def test_impossible_chaos_is_a_configuration_error(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ChaosConfig(**changes)
