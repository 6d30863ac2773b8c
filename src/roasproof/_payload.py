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
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from roasproof._custom_data import is_flat
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
from roasproof.events import ActionSource, Event

__all__ = [
    "build_payload",
    "context_value",
    "encode_body",
    "encode_payload",
    "format_epoch_ms",
    "format_time",
    "now_text",
    "serialize_flat_body",
]

_log = logging.getLogger("roasproof")

# user_data keys the request context can fill, in the order they are sent: every field of
# RequestContext but the page URL, which fills the event's own ``url``.
_CONTEXT_KEYS = tuple(f.name for f in fields(RequestContext) if f.name != "url")
_FB_SHAPE = "not in Meta's fb.<version>.<creation ms>.<value> shape"
_FB_CHECKS: dict[str, Callable[[str], bool]] = {"fbc": valid_fbc, "fbp": valid_fbp}
_CONTEXT_CHECKS = tuple((key, _FB_CHECKS.get(key)) for key in _CONTEXT_KEYS)
_SOURCE_TEXT: dict[object, str] = {source: source.value for source in ActionSource}


def build_payload(
    event: Event, *, context: RequestContext | None = None, default_phone_region: str | None = None
) -> dict[str, Any]:
    """The JSON body for ``event`` as a dict; ``value`` stays a :class:`~decimal.Decimal`.

    ``context`` fills ``url`` and the ``user_data`` keys the event leaves
    empty. ``default_phone_region`` (ISO 3166-1 alpha-2) is used for phone
    numbers written without a country code. Empty fields are omitted.
    """
    given = event.__dict__  # the validated field values: no attribute lookups per field
    user = given["user_data"].__dict__
    body: dict[str, Any] = {"event": given["event"], "event_id": given["event_id"]}
    if given["value"] is not None:
        body["value"] = given["value"]
        body["currency"] = given["currency"]
    body["occurred_at"] = format_time(given["occurred_at"])
    url = given["url"] or (_context_url(context.url) if context is not None else None)
    if url:
        body["url"] = url
    source = given["action_source"]  # a member's .value is a Python-level property: look it up
    body["action_source"] = _SOURCE_TEXT[source] if type(source) is ActionSource else source.value
    if given["site_key"]:
        body["site_key"] = given["site_key"]
    user_data = _hashes(user, default_phone_region)
    _add_identifiers(user_data, user, context)
    if user_data:
        body["user_data"] = user_data
    if given["custom_data"]:
        body["custom_data"] = dict(given["custom_data"])
    return body


def format_time(when: datetime) -> str:
    """ISO 8601 in UTC with ``Z``; milliseconds only when there are any (truncated)."""
    global _last_second
    if when.tzinfo is not UTC:
        when = when.astimezone(UTC)
    if type(when) is not datetime:  # a subclass may write itself differently: no cache
        text = when.isoformat()
        return (text[:23] if when.microsecond >= 1000 else text[:19]) + "Z"
    # Most events happen "now": the date and time to the second are those of the previous
    # event, formatted once (isoformat() costs about 1 us); only the milliseconds change.
    second = (when.year, when.month, when.day, when.hour, when.minute, when.second)
    cached, text = _last_second
    if second != cached:
        text = when.isoformat()[:19]  # fixed width: "YYYY-MM-DDTHH:MM:SS"
        _last_second = second, text
    return text + _MILLISECONDS[when.microsecond // 1000]


def now_text() -> str:
    """``format_time(datetime.now(UTC))``, read off the clock without making a datetime."""
    return format_epoch_ms(time.time_ns() // 1_000_000)


def format_epoch_ms(millis: int) -> str:
    """:func:`format_time` of the moment ``millis`` milliseconds after the Unix epoch."""
    global _last_epoch_second
    whole, part = divmod(millis, 1000)
    second, text = _last_epoch_second
    if whole != second:
        text = datetime.fromtimestamp(whole, UTC).isoformat()[:19]
        _last_epoch_second = whole, text
    return text + _MILLISECONDS[part]


#: The (epoch second, its text) format_epoch_ms wrote last; replaced whole.
_last_epoch_second: tuple[int | None, str] = (None, "")
#: The (date and time to the second, its text) format_time wrote last; replaced whole.
_last_second: tuple[tuple[int, ...], str] = ((), "")
#: How each millisecond ends the text: nothing under 1 ms, else ".001Z" to ".999Z".
_MILLISECONDS = ("Z", *(f".{millis:03d}Z" for millis in range(1, 1000)))


def _context_url(url: str | None) -> str | None:
    if not url:
        return None
    if context_value("url", url) is None:
        _log.warning("url from the request context dropped: it %s", url_problem(url))
        return None
    return url


def _add_identifiers(
    out: dict[str, str], given: Mapping[str, Any], context: RequestContext | None
) -> None:
    """Add the unhashed user_data keys to ``out``: the given value, else the context's.

    A given fbc/fbp in the wrong shape is dropped with a warning (the context's
    value, if any, is used instead).
    """
    for key, check in _CONTEXT_CHECKS:
        value = given[key]
        if value and (check is None or check(value) or _fb_dropped(key, "")):
            out[key] = value
        elif context is not None:
            value = _from_context(key, getattr(context, key))
            if value:
                out[key] = value


def _fb_dropped(key: str, source: str) -> bool:
    """Warn that an fbc/fbp value is dropped; always False."""
    _log.warning("user_data.%s%s dropped: %s", key, source, _FB_SHAPE)
    return False


def context_value(key: str, value: str) -> str | None:
    """The request context's non-empty ``value`` for ``key`` (its url or a user_data key)
    as sent, or None.

    None: the server or Meta would refuse it (a url that is no absolute http(s) URL, an
    fbc/fbp in the wrong shape, an IP address that is none); the body leaves it out.
    """
    check = _FB_CHECKS.get(key)
    if check is not None:
        return value if check(value) else None
    if key == "url":
        return value if url_problem(value) is None else None
    return normalize_ip(value) if key == "client_ip_address" else value


def _from_context(key: str, value: str | None) -> str | None:
    """A context value the server and Meta will take for ``key``, else None (warned)."""
    if not value:
        return None
    kept = context_value(key, value)
    if kept is None:
        if key == "client_ip_address":
            _log.warning("user_data.%s from the request context dropped: not an IP address", key)
        else:
            _fb_dropped(key, " from the request context")
    return kept


def _hashes(given: Mapping[str, Any], region: str | None) -> dict[str, str]:
    """The hashed email, phone and external_id; an unusable phone is dropped, warned."""
    email, phone, external_id = given["email"], given["phone"], given["external_id"]
    try:
        email_hash = email and hash_email(email)
        phone_hash = phone and hash_phone(phone, region)
        external_hash = external_id and hash_external_id(external_id)
    except PIIError:  # only for events built without validation (model_construct)
        return _hashes_one_by_one(given, region)
    out: dict[str, str] = {}
    if email_hash:
        out["email"] = email_hash
    if phone_hash:
        out["phone"] = phone_hash
    elif phone:
        _log.warning("user_data.phone dropped: it %s", phone_problem(phone, region))
    if external_hash:
        out["external_id"] = external_hash
    return out


def _hashes_one_by_one(given: Mapping[str, Any], region: str | None) -> dict[str, str]:
    """:func:`_hashes` that drops (with a warning) each value that cannot be hashed."""
    out: dict[str, str] = {}
    if given["email"]:
        _put_hash(out, "email", hash_email, given["email"])
    if given["phone"]:
        _put_phone(out, given["phone"], region)
    if given["external_id"]:
        _put_hash(out, "external_id", hash_external_id, given["external_id"])
    return out


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
# The common case reuses one encoder per thread; the Decimals of the call being encoded
# are collected in that thread's list (encoding never yields, so this is safe).
def _new_marker() -> tuple[str, str, re.Pattern[str]]:
    marker = f"\x00roasproof-decimal-{os.urandom(8).hex()}:"
    written = json.dumps(marker)[1:-1]
    return marker, written, re.compile('"' + re.escape(written) + r'(\d+)"')


_MARKER = _new_marker()
_local = threading.local()

#: What encodes a payload: ``(payload, 0) -> chunks``, filling ``numbers`` with its Decimals.
_Encode = Callable[[object, int], Iterable[str]]


def _to_marker(value: object, numbers: list[str], marker: str) -> str:
    if not isinstance(value, Decimal):
        raise TypeError(f"{type(value).__name__} is not JSON-serializable")
    if not value.is_finite():
        raise ValueError("a NaN or infinite Decimal is not valid JSON")
    numbers.append(format(value, "f"))
    return f"{marker}{len(numbers) - 1}"


# Building a C encoder costs about 1 us, more than a small payload takes to encode: each
# thread builds its own once, with the json module's arguments for ensure_ascii=False,
# compact separators and allow_nan=False, but without its circular-reference check (a
# cycle ends in RecursionError instead; encode_payload then encodes again with the check,
# which names the problem). Not shared between threads: its Decimal list holds the state
# of the call in progress.
_make_c_encoder: Callable[..., _Encode] | None = getattr(json.encoder, "c_make_encoder", None)


def _new_thread_encoder() -> tuple[_Encode, list[str]]:
    """An ``(encode, numbers)`` pair for one thread; ``numbers`` collects the Decimals."""
    numbers: list[str] = []
    marker = _MARKER[0]

    def default(value: object) -> str:
        if isinstance(value, Decimal) and value.is_finite():  # _to_marker, one call less
            numbers.append(format(value, "f"))
            return f"{marker}{len(numbers) - 1}"
        return _to_marker(value, numbers, marker)  # raises the matching error

    if _make_c_encoder is not None:
        escape = json.encoder.encode_basestring
        return _make_c_encoder(None, default, escape, None, ":", ",", False, False, False), numbers
    # No C accelerator in this interpreter: the json module's pure-Python encoder.
    encoder = json.JSONEncoder(
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
        default=default,
        check_circular=False,
    )

    def encode(payload: object, _indent: int) -> Iterable[str]:
        return encoder.iterencode(payload)

    return encode, numbers


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """``payload`` as compact UTF-8 JSON; a Decimal is written exactly (``249.00``)."""
    try:
        encode, numbers = _local.encoder
    except AttributeError:
        encode, numbers = _local.encoder = _new_thread_encoder()
    numbers.clear()  # an exception in a previous call can leave entries behind
    try:
        text = "".join(encode(payload, 0))
    except RecursionError:  # a cycle, or nesting past the recursion limit
        text, numbers = _dumps(payload, _MARKER[0])  # ValueError for a cycle
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


# encode_body: the bodies track() and send() build hold only str, a flat dict of str
# (user_data), the Decimal value and custom_data. Unless custom_data is nested (it may then
# hold Decimals), pydantic-core's serializer writes the body: measured 1.4 us against 5 us
# for the json module's C encoder on the usual 800-byte purchase. It would write the
# Decimal as a string, so the value is given as this marker and the marker replaced.
# (Its random part keeps a user string from holding it by chance; as for _MARKER.)
_VALUE_MARKER = f"\x00roasproof-value-{os.urandom(8).hex()}"
_VALUE_WRITTEN = to_json(_VALUE_MARKER)


def encode_body(body: dict[str, Any]) -> bytes:
    """:func:`encode_payload` for a body from :func:`build_payload`, serialized faster.

    The same JSON document as :func:`encode_payload`, byte for byte but for one
    detail: a float in custom_data below 1e-4 is written in another form of the
    same number (``0.00001`` where the json module writes ``1e-05``).
    """
    custom = body.get("custom_data")
    if custom is not None and not (type(custom) is dict and is_flat(custom)):
        return encode_payload(body)  # nested: may hold Decimals at any depth
    return serialize_flat_body(body)


def serialize_flat_body(body: dict[str, Any], amount: str | None = None) -> bytes:
    """:func:`encode_body` for a body whose custom_data, if any, is known to be flat.

    ``amount`` is the value as JSON writes it, when the caller has it (a canonical
    amount string, see ``_event_checks.CANONICAL_AMOUNT``); ``body["value"]`` is
    then that string, and no Decimal is made.
    """
    value = body.get("value")
    if value is None:
        try:
            return to_json(body)
        except PydanticSerializationError:  # e.g. a lone surrogate: the json module's error
            return encode_payload(body)
    if amount is None:
        if type(value) is not Decimal:
            return encode_payload(body)
        amount = format(value, "f")
    body["value"] = _VALUE_MARKER  # in place, put back below: no copy of the body
    try:
        text = to_json(body)
    except PydanticSerializationError:  # e.g. a lone surrogate: the json module's error
        return encode_payload({**body, "value": Decimal(amount)})
    finally:
        body["value"] = value
    # The first marker is the value's: only the event name and id come before it, and
    # validated ones cannot hold the NUL the marker starts with.
    return text.replace(_VALUE_WRITTEN, amount.encode(), 1)
