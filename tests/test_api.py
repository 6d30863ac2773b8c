"""Module-level functions: init() sets the default client, the rest delegate to it."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import pytest

from roasproof import _api
from roasproof._client import Client
from roasproof._delivery._base import RejectedSummary
from roasproof._payload import encode_payload

KEY = "rp_test_0123456789"
WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


class KeepingDelivery:
    """A Delivery that keeps bodies in memory and remembers being closed."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.closed = False
        self.flushed: list[float | None] = []

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        self.bodies[event_id] = body
        return True

    def record_rejected(self, summary: RejectedSummary) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        self.flushed.append(timeout)
        return True

    def close(self, timeout: float | None = None) -> None:
        self.closed = True

    def stats(self) -> Mapping[str, int]:
        return {}


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    """Every test starts and ends without a default client."""
    _api.close()
    yield
    _api.close()


def test_init_sets_the_default_client() -> None:
    client = _api.init(KEY, outbox=None, strict=True)
    assert isinstance(client, Client)
    assert _api.get_client() is client
    assert client.settings.strict is True


def test_init_again_closes_the_previous_client() -> None:
    first = KeepingDelivery()
    _api.init(KEY, delivery=first)
    second = _api.init(KEY, delivery=KeepingDelivery())
    assert first.closed is True
    assert _api.get_client() is second


def test_get_client_builds_one_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", KEY)
    monkeypatch.setenv("ROASPROOF_OUTBOX", ":memory:")
    found: list[Client] = []
    threads = [threading.Thread(target=lambda: found.append(_api.get_client())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in found}) == 1
    assert found[0].settings.api_key == KEY
    assert found[0].settings.outbox is None


def test_track_and_build_payload_use_the_default_client() -> None:
    delivery = KeepingDelivery()
    client = _api.init(KEY, delivery=delivery)
    event_id = _api.track("lead", event_id="lead_1", occurred_at=WHEN)
    assert event_id == "lead_1"
    expected = client.build_payload("lead", event_id="lead_1", occurred_at=WHEN)
    assert _api.build_payload("lead", event_id="lead_1", occurred_at=WHEN) == expected
    assert delivery.bodies["lead_1"] == encode_payload(expected)


def test_send_and_asend_use_the_default_client() -> None:
    _api.init(KEY, enabled=False, outbox=None)
    assert _api.send("lead", event_id="lead_2").event_id == "lead_2"


async def test_asend_uses_the_default_client() -> None:
    _api.init(KEY, enabled=False, outbox=None)
    result = await _api.asend("lead", event_id="lead_3")
    assert (result.event_id, result.status_code) == ("lead_3", 0)


def test_flush_without_a_default_client_is_true_and_creates_none() -> None:
    assert _api.flush() is True
    assert _api._default is None


def test_flush_goes_to_the_default_client() -> None:
    delivery = KeepingDelivery()
    _api.init(KEY, delivery=delivery)
    _api.track("lead")
    assert _api.flush(timeout=3.0) is True
    assert delivery.flushed == [3.0]


def test_close_closes_and_forgets_the_default_client() -> None:
    delivery = KeepingDelivery()
    client = _api.init(KEY, delivery=delivery)
    _api.close(timeout=1.0)
    assert delivery.closed is True
    assert _api._default is None
    _api.close()  # closing twice is harmless
    assert _api.get_client() is not client
