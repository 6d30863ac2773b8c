"""Shared helpers of the test modules."""

from __future__ import annotations

import pytest
from roasproof.testing import CapturedEvents


class EventsMixin:
    """Gives Django TestCase classes the capture fixture as ``self.events``."""

    events: CapturedEvents

    @pytest.fixture(autouse=True)
    def _bind_events(self, events: CapturedEvents) -> None:
        self.events = events


class ListDelivery:
    """A minimal Delivery (the core's protocol) for tests that need a lenient client."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        self.bodies.append(body)
        return True

    def record_rejected(self, summary: object) -> None:
        return None

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {"enqueued": len(self.bodies)}
