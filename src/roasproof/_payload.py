"""Event + request context -> the exact JSON body POSTed to the ingest API.

Pure and deterministic: the same event and context always give the same
bytes, so what ``roasproof.build_payload`` shows is what gets sent. This is
where email, phone and external_id are hashed (before anything is queued or
written), where the request context fills the gaps of ``user_data`` and
``url`` (explicit values always win), and where identifiers the server or
Meta would refuse are dropped with a warning on the ``roasproof`` logger
instead of costing the whole event a 422.

It runs inside every ``track()`` call, so the body is assembled by hand,
without ``model_dump``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from roasproof._event_checks import normalize_ip, url_problem
from roasproof._normalize import (
    PIIError,
    hash_email,
    hash_external_id,
    hash_phone,
    phone_problem,
    valid_fbc,
    valid_fbp,
)
from roasproof.context import RequestContext
from roasproof.events import Event, UserData

__all__ = ["build_payload", "encode_payload", "format_time"]

_log = logging.getLogger("roasproof")

# user_data keys the request context can fill, in the order they are sent: every field of
# RequestContext but the page URL, which fills the event's own ``url``.
_CONTEXT_KEYS = tuple(f.name for f in fields(RequestContext) if f.name != "url")
_FB_SHAPE = "not in Meta's fb.<version>.<creation ms>.<value> shape"
_FB_CHECKS: dict[str, Callable[[str], bool]] = {"fbc": valid_fbc, "fbp": valid_fbp}


def build_payload(
    event: Event, *, context: RequestContext | None = None, default_phone_region: str | None = None
) -> dict[str, Any]:
    """The JSON body for ``event`` as a dict; ``value`` stays a :class:`~decimal.Decimal`.

    ``context`` fills ``url`` and the ``user_data`` keys the event leaves
    empty. ``default_phone_region`` (ISO 3166-1 alpha-2) is used for phone
    numbers written without a country code. Empty fields are omitted.
    """
    body: dict[str, Any] = {"event": event.event, "event_id": event.event_id}
    if event.value is not None:
        body["value"] = event.value
        body["currency"] = event.currency
    body["occurred_at"] = format_time(event.occurred_at)
    url = event.url or (_context_url(context.url) if context is not None else None)
    if url:
        body["url"] = url
    body["action_source"] = event.action_source.value
    if event.site_key:
        body["site_key"] = event.site_key
    user_data = _user_data(event.user_data, context, default_phone_region)
    if user_data:
        body["user_data"] = user_data
    if event.custom_data:
        body["custom_data"] = dict(event.custom_data)
    return body


def format_time(when: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; milliseconds only when there are any (truncated)."""
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    # isoformat() is fixed-width ("YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00") and faster
    # than isoformat(timespec=...): cut it instead.
    text = when.isoformat()
    return (text[:23] if when.microsecond >= 1000 else text[:19]) + "Z"


def _context_url(url: str | None) -> str | None:
    if not url:
        return None
    problem = url_problem(url)
    if problem is None:
        return url
    _log.warning("url from the request context dropped: it %s", problem)
    return None


def _user_data(
    user: UserData, context: RequestContext | None, region: str | None
) -> dict[str, str]:
    out: dict[str, str] = {}
    if user.email:
        _put_hash(out, "email", hash_email, user.email)
    if user.phone:
        _put_phone(out, user.phone, region)
    if user.external_id:
        _put_hash(out, "external_id", hash_external_id, user.external_id)
    given = user.__dict__  # the validated field values: no attribute lookups per key
    for key in _CONTEXT_KEYS:
        value = given[key]
        if value and (key not in _FB_CHECKS or _fb_ok(key, value, "")):
            out[key] = value
        elif context is not None:
            value = _from_context(key, getattr(context, key))
            if value:
                out[key] = value
    return out


def _fb_ok(key: str, value: str, source: str) -> bool:
    if _FB_CHECKS[key](value):
        return True
    _log.warning("user_data.%s%s dropped: %s", key, source, _FB_SHAPE)
    return False


def _from_context(key: str, value: str | None) -> str | None:
    """A context value the server and Meta will take for ``key``, else None (warned)."""
    if not value:
        return None
    if key in _FB_CHECKS:
        return value if _fb_ok(key, value, " from the request context") else None
    if key == "client_ip_address":
        address = normalize_ip(value)
        if address is None:
            _log.warning("user_data.%s from the request context dropped: not an IP address", key)
        return address
    return value


def _put_hash(
    out: dict[str, str], key: str, hasher: Callable[[str], str | None], value: str
) -> None:
    try:
        digest = hasher(value)
    except PIIError as exc:  # only for events built without validation (model_construct)
        _log.warning("user_data.%s dropped: it %s", key, exc)
        return
    if digest:
        out[key] = digest


def _put_phone(out: dict[str, str], phone: str, region: str | None) -> None:
    try:
        digest = hash_phone(phone, region)
    except PIIError as exc:  # only for events built without validation (model_construct)
        _log.warning("user_data.phone dropped: it %s", exc)
        return
    if digest:
        out["phone"] = digest
    else:
        _log.warning("user_data.phone dropped: it %s", phone_problem(phone, region))


# encode_payload writes Decimals as exact JSON numbers. The json module cannot, so
# each Decimal is first written as a marker string, then the quoted marker is
# replaced by the number. The marker holds a NUL (always escaped inside JSON
# strings) and a random per-process part; if the text holds more markers than
# Decimals were seen (a user string contained one), a fresh marker is drawn.
# The common case reuses one encoder; the Decimals of the call being encoded are
# collected in a thread-local list (encoding never yields, so this is safe).
def _new_marker() -> tuple[str, str, re.Pattern[str]]:
    marker = f"\x00roasproof-decimal-{os.urandom(8).hex()}:"
    written = json.dumps(marker)[1:-1]
    return marker, written, re.compile('"' + re.escape(written) + r'(\d+)"')


_MARKER = _new_marker()
_local = threading.local()


def _to_marker(value: object, numbers: list[str], marker: str) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not JSON-serializable")
    if not value.is_finite():
        raise ValueError("a NaN or infinite Decimal is not valid JSON")
    numbers.append(format(value, "f"))
    return f"{marker}{len(numbers) - 1}"


def _default(value: object) -> str:
    return _to_marker(value, _local.numbers, _MARKER[0])


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default
)
# _ENCODER.encode builds a C encoder on every call (~1 us): each thread builds its own
# once instead, with the same arguments. Not shared between threads: its markers dict
# (circular-reference detection) holds the state of the call in progress.
_make_c_encoder: Callable[..., Callable[[object, int], list[str]]] | None = getattr(
    json.encoder, "c_make_encoder", None
)


def _encode_text(payload: Mapping[str, Any]) -> str:
    """``_ENCODER.encode(payload)``, reusing this thread's C encoder."""
    try:
        markers, encode = _local.c_encoder
    except AttributeError:
        if _make_c_encoder is None:  # no C accelerator in this interpreter
            return _ENCODER.encode(payload)
        markers = {}
        encode = _make_c_encoder(
            markers, _default, json.encoder.encode_basestring, None, ":", ",", False, False, False
        )
        _local.c_encoder = markers, encode
    markers.clear()  # an exception in a previous call can leave entries behind
    return "".join(encode(payload, 0))


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as compact UTF-8 JSON; a Decimal is written exactly (``249.00``)."""
    numbers: list[str] = []
    _local.numbers = numbers
    text = _encode_text(payload)
    if not numbers:
        return text.encode()
    _, written, pattern = _MARKER
    while text.count(written) != len(numbers):
        marker, written, pattern = _new_marker()
        text, numbers = _dumps(payload, marker)
    if len(numbers) == 1:
        return text.replace(f'"{written}0"', numbers[0], 1).encode()
    return pattern.sub(lambda match: numbers[int(match[1])], text).encode()


def _dumps(payload: Mapping[str, Any], marker: str) -> tuple[str, list[str]]:
    """Compact JSON with each Decimal written as ``marker<index>``, and the numbers."""
    numbers: list[str] = []
    text = json.dumps(
        payload,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
        default=lambda value: _to_marker(value, numbers, marker),
    )
    return text, numbers
