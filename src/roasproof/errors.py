"""The exceptions roasproof raises, in one tree.

Every exception roasproof raises on purpose is a :class:`RoasproofError`, so one
``except roasproof.RoasproofError`` catches them all. Each also inherits the
built-in a caller would expect (bad input is a :class:`ValueError`)::

    RoasproofError
    ├── ConfigurationError (ValueError)   bad settings, raised at construction
    ├── InvalidEvent (ValueError)         an event that fails validation
    └── DeliveryError                     the ingest API did not accept an event
        ├── EventRejected                 422 / other permanent 4xx: fix the event
        ├── AuthenticationFailed          401 / 403: fix the API key
        ├── QuotaExceeded                 429: the plan's ceiling; retry later
        └── TransientError                5xx, timeouts, connection errors

Messages say what happened, name the offending field and say how to fix it.
They never contain a raw email, phone number, external id or the API key.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "DeliveryError",
    "EventRejected",
    "FieldError",
    "InvalidEvent",
    "QuotaExceeded",
    "RoasproofError",
    "TransientError",
]


class RoasproofError(Exception):
    """Base class of every error roasproof raises on purpose."""


class ConfigurationError(RoasproofError, ValueError):
    """A setting is missing or malformed; raised when the client is built."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of an event.

    ``path`` is dotted (``user_data.client_ip_address``); ``problem`` says what
    is wrong and ``fix`` how to make it right. Neither ever holds raw PII.
    """

    path: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem} ({self.fix})"


class InvalidEvent(RoasproofError, ValueError):
    """An event failed validation; :attr:`errors` lists every offending field."""

    def __init__(self, errors: list[FieldError], event: str | None = None) -> None:
        self.errors = list(errors)
        self.event = event
        what = f"{event!r} event" if event else "event"
        lines = "\n".join(f"  - {error}" for error in self.errors)
        count = len(self.errors)
        noun = "field" if count == 1 else "fields"
        super().__init__(f"invalid {what}: {count} {noun} to fix\n{lines}")

    @property
    def fields(self) -> list[str]:
        """The dotted paths of the offending fields, in order."""
        return [error.path for error in self.errors]


class DeliveryError(RoasproofError):
    """The ingest API did not accept an event.

    ``event_id`` identifies the event; ``status_code`` is the HTTP status, or
    ``None`` when no response arrived.
    """

    def __init__(
        self, message: str, *, event_id: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.status_code = status_code


class EventRejected(DeliveryError):
    """The server refused the event for good (422 or another permanent 4xx).

    ``field`` is the field the server named, ``reason`` its message. Sending
    the same event again will fail the same way: fix the field.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        reason: str | None = None,
        event_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, event_id=event_id, status_code=status_code)
        self.field = field
        self.reason = reason


class AuthenticationFailed(DeliveryError):
    """The API key was missing, unknown or revoked (401/403)."""


class QuotaExceeded(DeliveryError):
    """The workspace reached its tracked-conversion ceiling (429).

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        event_id: str | None = None,
        status_code: int | None = 429,
    ) -> None:
        super().__init__(message, event_id=event_id, status_code=status_code)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """A failure that may pass: 5xx, 408, a timeout or a connection error.

    ``retry_after`` is the server's Retry-After in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        event_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, event_id=event_id, status_code=status_code)
        self.retry_after = retry_after
