"""The seam between the Client and whatever delivers its events.

The Client validates an event, builds and hashes its payload, encodes it to
JSON bytes and hands those bytes to a :class:`Delivery`. The default is the
durable SQLite outbox with its background sender; ``roasproof.testing`` plugs
in a delivery that captures payloads in memory instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RejectedSummary:
    """What is kept of an event that failed validation: never any PII.

    ``fields`` are the dotted paths of the offending fields, ``message`` the
    validation message (which by construction holds no raw PII).
    """

    event: str | None
    event_id: str | None
    fields: tuple[str, ...]
    message: str
    at: float = field(default=0.0)


class Delivery(Protocol):
    """What the Client needs from a delivery backend."""

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        """Make the event durable (or queued); ``False`` if the event_id is already held."""
        ...

    def record_rejected(self, summary: RejectedSummary) -> None:
        """Keep the non-PII summary of an invalid event for inspection."""
        ...

    def flush(self, timeout: float | None = None) -> bool:
        """Deliver what is pending; ``True`` if nothing is left within ``timeout``."""
        ...

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` and stop background work; undelivered events stay queued."""
        ...

    def stats(self) -> Mapping[str, int]:
        """Counters: enqueued, delivered, retried, dead, rejected, duplicates, pending."""
        ...
