"""The ingest API's HTTP contract, without any I/O.

One place knows what a request to ``POST {endpoint}/api/v1/events`` carries
and what each answer means, so :meth:`Client.send`, :meth:`Client.asend` and
the background sender (httpx or aiohttp) all agree: a 422 is always an
:class:`~roasproof.EventRejected` naming the server's field, a 429 always a
:class:`~roasproof.QuotaExceeded` with the parsed Retry-After, and so on.

The classifiers *return* their error instead of raising it: the sender turns
an outcome into a row update, ``send()`` raises it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from roasproof._version import __version__
from roasproof.errors import (
    AuthenticationFailed,
    DeliveryError,
    EventRejected,
    QuotaExceeded,
    TransientError,
)

__all__ = [
    "EVENTS_PATH",
    "KEEPALIVE_EXPIRY",
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "DeliveryResult",
    "Destination",
    "Outcome",
    "classify_exception",
    "classify_response",
    "events_url",
    "parse_retry_after",
    "request_headers",
]

EVENTS_PATH = "/api/v1/events"
USER_AGENT = f"roasproof-python/{__version__}"
#: A Retry-After further away than this is treated as this: an hour-long pause is
#: already drastic, and a broken header must not stop delivery for days.
MAX_RETRY_AFTER = 3600.0
#: Idle keep-alive connections are dropped before typical server/LB idle timeouts (60 s).
KEEPALIVE_EXPIRY = 30.0
#: How much of a server's message is kept in an error: enough to read, never a page.
_MAX_REASON = 300


@dataclass(frozen=True, slots=True)
class Destination:
    """One ad platform the event was queued for, as listed in the 202 body."""

    destination: str
    status: str


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The ingest API accepted the event (202).

    ``destinations`` lists the per-destination entries of the response body;
    the delivery to each platform then happens asynchronously on the server.
    """

    event_id: str
    status_code: int
    destinations: tuple[Destination, ...] = ()


#: What one POST comes to: the 202's result, or the typed error of any other answer.
Outcome = DeliveryResult | DeliveryError


def events_url(endpoint: str) -> str:
    """The URL events are POSTed to, for an endpoint like ``https://app.roasproof.com``."""
    return endpoint.rstrip("/") + EVENTS_PATH


def request_headers(api_key: str, event_id: str, user_agent: str = USER_AGENT) -> dict[str, str]:
    """The headers of one POST; every attempt of an event carries the same Idempotency-Key."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        "User-Agent": user_agent,
        "Idempotency-Key": event_id,
    }


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date).

    ``None`` when absent or unreadable. The result is clamped to
    ``[0, MAX_RETRY_AFTER]``: a date in the past means "now", and a header far in
    the future must not freeze delivery. ``now`` (epoch seconds) is for tests.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    seconds: float | None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text, time.time() if now is None else now)
    if seconds is None or seconds != seconds:  # unreadable, or NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _seconds_until(http_date: str, now: float) -> float | None:
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as GMT too
        return None
    return moment.timestamp() - now


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup that works on plain dicts as well as httpx/aiohttp headers."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, item in headers.items():
        if key.lower() == lowered:
            return item
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _destinations(data: Any) -> tuple[Destination, ...]:
    """The per-destination entries of a 202 body; anything unexpected is skipped, not fatal."""
    items = data.get("destinations") if isinstance(data, dict) else data
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if isinstance(item, str):
            found.append(Destination(destination=item, status="queued"))
        elif isinstance(item, dict):
            name = item.get("destination") or item.get("platform") or item.get("name")
            if isinstance(name, str) and name:
                found.append(
                    Destination(destination=name, status=str(item.get("status", "queued")))
                )
    return tuple(found)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


def _rejection(body: bytes) -> tuple[str | None, str | None]:
    """(field, reason) from the server's ``{"error", "field", "message"}`` body."""
    data = _json(body)
    if not isinstance(data, dict):
        text = body.decode("utf-8", "replace").strip()
        return None, (_short(text) if text else None)
    field = data.get("field")
    reason = data.get("message") or data.get("error")
    return (
        field if isinstance(field, str) and field else None,
        _short(str(reason)) if reason else None,
    )


def classify_response(
    status: int, headers: Mapping[str, str], body: bytes, event_id: str
) -> DeliveryResult | DeliveryError:
    """What an answer of the ingest API means for the event: a result or the error to raise."""
    if 200 <= status < 300:
        return DeliveryResult(event_id, status, _destinations(_json(body)))
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if status in (401, 403):
        return _authentication_failed(status, event_id)
    if status == 429:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return QuotaExceeded(
            f"the ingest API refused event {event_id!r}: the workspace reached its "
            f"tracked-conversion ceiling (429){wait}. Check the plan and billing on the "
            "roasproof dashboard; events tracked with track() are kept and sent later",
            retry_after=retry_after,
            event_id=event_id,
            status_code=status,
        )
    if status == 408 or status >= 500 or status < 200 or 300 <= status < 400:
        return _transient_status(status, retry_after, event_id)
    field, reason = _rejection(body)
    where = f" field {field!r}:" if field else ""
    why = f" {reason}" if reason else " no reason given"
    return EventRejected(
        f"the ingest API rejected event {event_id!r} ({status}):{where}{why}. "
        "Fix the event; sending it again unchanged fails the same way",
        field=field,
        reason=reason,
        event_id=event_id,
        status_code=status,
    )


def _authentication_failed(status: int, event_id: str) -> AuthenticationFailed:
    problem = (
        "the API key is missing or unknown (401)"
        if status == 401
        else "the API key is revoked or not allowed for this workspace (403)"
    )
    return AuthenticationFailed(
        f"the ingest API refused event {event_id!r}: {problem}. Create a key on the "
        "Setup & API keys page and pass it as api_key= or ROASPROOF_API_KEY",
        event_id=event_id,
        status_code=status,
    )


def _transient_status(status: int, retry_after: float | None, event_id: str) -> TransientError:
    if 300 <= status < 400:
        cause = (
            f"answered with a redirect ({status}); set endpoint= / ROASPROOF_ENDPOINT "
            "to the final URL (https, no path)"
        )
    else:
        cause = f"answered {status}, a temporary failure"
    wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
    return TransientError(
        f"event {event_id!r} was not accepted: the ingest API {cause}{wait}. "
        "Sending it again with the same event_id is safe",
        retry_after=retry_after,
        event_id=event_id,
        status_code=status,
    )


def _network_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeouts, connection errors) of httpx and, when it is in use, aiohttp."""
    timeouts: list[type[BaseException]] = [httpx.TimeoutException, TimeoutError]
    connection: list[type[BaseException]] = [httpx.TransportError, ConnectionError, OSError]
    aiohttp = sys.modules.get("aiohttp")  # only loaded when the fast transport is used
    if aiohttp is not None:
        timeouts.insert(0, aiohttp.ServerTimeoutError)
        connection.insert(0, aiohttp.ClientError)
    return tuple(timeouts), tuple(connection)


def classify_exception(exc: BaseException, event_id: str) -> TransientError:
    """The error for a request that got no answer: a timeout, a refused or dropped connection.

    Anything else is reported as transient too: the event stays safe and is
    retried, and the message names the exception type so a bug stays visible.
    """
    timeouts, connection = _network_errors()
    detail = _short(str(exc))
    kind = type(exc).__name__ + (f": {detail}" if detail else "")
    if isinstance(exc, timeouts):
        cause = f"timed out waiting for the ingest API ({kind})"
    elif isinstance(exc, connection):
        cause = f"could not reach the ingest API ({kind})"
    else:
        cause = f"failed unexpectedly ({kind})"
    return TransientError(
        f"event {event_id!r} was not confirmed: the request {cause}. Check the endpoint and "
        "the network; sending it again with the same event_id is safe",
        event_id=event_id,
    )
