"""A pytest plugin for your own tests: capture every conversion your code fires.

Installed with roasproof (entry point ``pytest11``), it adds one fixture,
``roasproof_events``. While it is active the default client is a strict
client whose delivery keeps the exact JSON bodies in memory: no network, no
outbox file, and an invalid event raises in the test instead of being logged::

    def test_checkout_tracks_the_purchase(client, roasproof_events):
        client.post("/checkout", data={"email": "ada@example.com"})
        roasproof_events.assert_tracked(
            "purchase",
            event_id="purchase_42",
            value=Decimal("249.00"),
            user_data={"email": "ada@example.com"},   # compared after hashing
        )

Payloads are what would be sent: email, phone and external_id hashed,
the request context merged in. Loading the plugin is cheap and has no side
effects; roasproof itself is only imported when the fixture is used.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from roasproof._client import Client
    from roasproof._delivery._base import RejectedSummary

__all__ = ["CapturedEvent", "CapturedEvents", "roasproof_events"]

_HASHED = ("email", "phone", "external_id")


@dataclass(frozen=True, slots=True)
class CapturedEvent:
    """One event as the delivery received it: the encoded ``body`` and its ``payload``."""

    event: str
    event_id: str
    body: bytes = field(repr=False)

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body decoded; numbers with a fraction come back as :class:`~decimal.Decimal`."""
        return dict(json.loads(self.body, parse_float=Decimal))


class _CapturingDelivery:
    """A :class:`roasproof._delivery._base.Delivery` that keeps bodies in memory.

    Like the outbox, it refuses a second event with an event_id it already holds.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[CapturedEvent] = []
        self.rejected: list[RejectedSummary] = []
        self.duplicates = 0

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        with self.lock:
            if any(held.event_id == event_id for held in self.events):
                self.duplicates += 1
                return False
            self.events.append(CapturedEvent(event, event_id, body))
            return True

    def record_rejected(self, summary: RejectedSummary) -> None:
        with self.lock:
            self.rejected.append(summary)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        return None

    def stats(self) -> Mapping[str, int]:
        with self.lock:
            held, rejected, duplicates = len(self.events), len(self.rejected), self.duplicates
        return {"enqueued": held, "rejected": rejected, "duplicates": duplicates, "pending": 0}


class CapturedEvents:
    """What the ``roasproof_events`` fixture yields: the captured events and assertions."""

    def __init__(self, client: Client, delivery: _CapturingDelivery) -> None:
        self._client = client
        self._delivery = delivery

    @property
    def client(self) -> Client:
        """The capturing client, to pass where code takes an explicit ``client=``."""
        return self._client

    @property
    def events(self) -> list[CapturedEvent]:
        """Every event accepted so far, oldest first (duplicates of an event_id excluded)."""
        with self._delivery.lock:
            return list(self._delivery.events)

    @property
    def payloads(self) -> list[dict[str, Any]]:
        """The decoded JSON bodies of :attr:`events`."""
        return [captured.payload for captured in self.events]

    def clear(self) -> None:
        """Forget everything captured so far."""
        with self._delivery.lock:
            self._delivery.events.clear()
            self._delivery.rejected.clear()
            self._delivery.duplicates = 0

    def find(
        self, event: str, *, event_id: str | None = None, **subset: Any
    ) -> list[CapturedEvent]:
        """The captured events named ``event`` whose payload contains ``subset``."""
        expected = self._expected(event_id, subset)
        return [
            captured
            for captured in self.events
            if captured.event == event and not _mismatches(expected, captured.payload)
        ]

    def assert_tracked(
        self, event: str, *, event_id: str | None = None, times: int | None = None, **subset: Any
    ) -> CapturedEvent:
        """Assert ``event`` was tracked with a payload containing ``subset``; return the last match.

        Nested mappings (``user_data``, ``custom_data``) match as subsets. An
        ``email``, ``phone`` or ``external_id`` given in plaintext is hashed the
        way the client hashes it before comparing. ``times`` asserts the exact
        number of matching events.
        """
        found = self.find(event, event_id=event_id, **subset)
        if times is not None and len(found) != times:
            raise AssertionError(
                f"expected {times} {event!r} event(s) matching, found {len(found)}\n"
                + self._report(event, event_id, subset)
            )
        if not found:
            raise AssertionError(
                f"no {event!r} event matched\n" + self._report(event, event_id, subset)
            )
        return found[-1]

    def assert_not_tracked(
        self, event: str | None = None, *, event_id: str | None = None, **subset: Any
    ) -> None:
        """Assert no ``event`` matching ``subset`` was tracked (no event at all if ``None``)."""
        if event is None:
            assert not self.events, f"expected no events, captured: {self._summary()}"
            return
        found = self.find(event, event_id=event_id, **subset)
        if found:
            ids = ", ".join(captured.event_id for captured in found)
            raise AssertionError(f"expected no matching {event!r} event, captured: {ids}")

    def _expected(self, event_id: str | None, subset: Mapping[str, Any]) -> dict[str, Any]:
        expected = dict(subset)
        if event_id is not None:
            expected["event_id"] = event_id
        user_data = expected.get("user_data")
        if isinstance(user_data, Mapping):
            expected["user_data"] = self._hash_pii(user_data)
        return expected

    def _hash_pii(self, user_data: Mapping[str, Any]) -> dict[str, Any]:
        from roasproof import _normalize

        region = self._client.settings.default_phone_region
        hashed = dict(user_data)
        for key in _HASHED:
            value = hashed.get(key)
            if isinstance(value, str) and not _normalize.is_sha256(value):
                if key == "email":
                    hashed[key] = _normalize.hash_email(value)
                elif key == "phone":
                    hashed[key] = _normalize.hash_phone(value, region)
                else:
                    hashed[key] = _normalize.hash_external_id(value)
        return hashed

    def _summary(self) -> str:
        return ", ".join(f"{c.event}({c.event_id})" for c in self.events) or "nothing"

    def _report(self, event: str, event_id: str | None, subset: Mapping[str, Any]) -> str:
        expected = self._expected(event_id, subset)
        lines = [f"captured: {self._summary()}"]
        for captured in self.events:
            if captured.event == event:
                problems = "; ".join(_mismatches(expected, captured.payload))
                lines.append(f"  {captured.event_id}: {problems or 'matches'}")
        return "\n".join(lines)


def _mismatches(
    expected: Mapping[str, Any], actual: Mapping[str, Any], prefix: str = ""
) -> list[str]:
    """Paths where ``actual`` does not contain ``expected``, with both values."""
    problems: list[str] = []
    for key, want in expected.items():
        path = f"{prefix}{key}"
        if key not in actual:
            problems.append(f"{path} missing (expected {want!r})")
        elif isinstance(want, Mapping) and isinstance(actual[key], Mapping):
            problems.extend(_mismatches(want, actual[key], prefix=f"{path}."))
        elif not _equal(want, actual[key]):
            problems.append(f"{path} is {actual[key]!r}, expected {want!r}")
    return problems


def _equal(want: object, got: object) -> bool:
    if (
        isinstance(got, Decimal)
        and isinstance(want, str | int | float)
        and not isinstance(want, bool)
    ):
        try:
            return Decimal(str(want)) == got
        except ArithmeticError:
            return False
    return want == got


@pytest.fixture
def roasproof_events() -> Iterator[CapturedEvents]:
    """Capture every event tracked through the default client during the test.

    The default client is replaced by a strict one delivering into memory (it
    keeps the previous default's phone region and custom events), and restored
    afterwards. Code given an explicit client should get ``roasproof_events.client``.
    """
    from roasproof import _api
    from roasproof._client import Client

    with _api._lock:
        previous = _api._default
    delivery = _CapturingDelivery()
    inherited: dict[str, Any] = {}
    if previous is not None:
        inherited["default_phone_region"] = previous.settings.default_phone_region
        inherited["custom_events"] = previous.settings.custom_events
    client = Client(strict=True, enabled=True, delivery=delivery, **inherited)
    with _api._lock:
        _api._default = client
    try:
        yield CapturedEvents(client, delivery)
    finally:
        with _api._lock:
            if _api._default is client:
                _api._default = previous
        client.close()
