"""The usual event, validated without building the models: ``track()``'s fast path.

Most conversions arrive in one shape: a standard event name, an order id, an
amount, a currency code, the page address and plain identifiers. For that
shape, :func:`plain_body` checks every field in one call of a compiled
pydantic-core schema (no Python callback per field), hashes the identifiers
whose normalization the schema settled, assembles the body with the payload
module's own code and serializes it with pydantic-core: 14 µs for a purchase with
every identifier, against 23-25 µs through :func:`~roasproof.events.make_event` +
:func:`~roasproof._payload.build_payload` (docs/benchmarks.md).

It only ever *declines*: anything outside the shape (a custom event name, an
:class:`~roasproof.Event` object, whitespace to strip from a checked field, a
lowercase currency, a pre-hashed identifier, a phone number without its country
code, nested custom_data, an old or future ``occurred_at``, any invalid value)
returns ``None`` and takes the full path, which accepts everything this
accepts, words every error and logs every warning. The invariant, tested with
hypothesis against the full path: when :func:`plain_body` answers, its event id
and bytes are exactly those of the full path.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import PydanticCustomError, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from roasproof._currencies import CURRENCIES
from roasproof._event_checks import check_value, normalize_ip, parse_time
from roasproof._normalize import _fast_e164, sha256_hex
from roasproof._payload import assemble_body, serialize_flat_body
from roasproof.context import current_context
from roasproof.events import (
    _FUTURE_SLACK,
    _STALE_AFTER,
    STANDARD_EVENTS,
    ActionSource,
    _new_event_id,
    _utc_now,
)

__all__ = ["plain_body"]

# The shapes, as the full path's plain fast checks define them, written for the schema's
# regex engine with ASCII classes only (its \\d and \\s are Unicode-aware; Python's differ).
_EVENT_ID = r"^[!-~]{1,128}$"  # printable ASCII without spaces: event_id_problem accepts it
_CURRENCY = r"^[A-Z]{3}$"  # then looked up in CURRENCIES, as the full path does
_URL = r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,4})?(?:[/?#][!-~]*)?$"  # inside PLAIN_URL
_EMAIL = r"^[!-?A-~]+@(?:[!-\-/-?A-~]+\.)+[!-\-/-?A-~]+$"  # events._PLAIN_EMAIL
_PHONE = r"^\+[0-9]+(?:[ ().\-]{1,3}[0-9]+)*$"  # then _fast_e164 (E.164, maybe grouped)
_FB_COOKIE = r"^fb\.[0-9]\.[0-9]{13}\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*$"  # valid_fbc/fbp


def _text(
    pattern: str | None = None, max_length: int | None = None, *, to_lower: bool = False
) -> cs.CoreSchema:
    """A str field or None. Without a pattern, stripped as the models do."""
    text = cs.str_schema(
        pattern=pattern,
        max_length=max_length,
        strip_whitespace=pattern is None,
        to_lower=to_lower,
        strict=True,
    )
    return cs.nullable_schema(text)


def _optional(schema: cs.CoreSchema) -> cs.CoreSchema:
    """None when left out: the fields of an Event are all present in its values."""
    return cs.with_default_schema(schema, default=None)


_USER_DATA = cs.typed_dict_schema(
    {
        name: cs.typed_dict_field(schema, required=False)
        for name, schema in {
            "email": _text(_EMAIL, to_lower=True),
            "phone": _text(_PHONE, 60),
            "external_id": _text(),
            "visitor_id": _text(),
            "client_ip_address": _text(),
            "client_user_agent": _text(),
            "fbc": _text(_FB_COOKIE, 500),
            "fbp": _text(_FB_COOKIE, 500),
            "fbclid": _text(),
            "gclid": _text(),
            "wbraid": _text(),
            "gbraid": _text(),
            "ttclid": _text(),
        }.items()
    },
    extra_behavior="forbid",
    strict=True,
)

# Flat custom_data, as custom_data.is_flat defines it: str keys; str, int, bool, None or
# finite float values. The lengths keep it within is_flat's 16 KiB bound without measuring
# it: 2 + 16 x (6 x 40 + 6 x 120 + 6) bytes = 15,458 at most (an int of 64 bits, 27).
_FLAT_CUSTOM_DATA = cs.dict_schema(
    keys_schema=cs.str_schema(max_length=40, strict=True),
    values_schema=cs.nullable_schema(
        cs.union_schema(
            [
                cs.str_schema(max_length=120, strict=True),
                cs.bool_schema(strict=True),
                cs.int_schema(ge=-(2**63), lt=2**63, strict=True),
                # A float instance: the strict float schema would also take an int
                # outside the int range above and write it as a float.
                cs.chain_schema(
                    [cs.is_instance_schema(float), cs.float_schema(allow_inf_nan=False)]
                ),
            ]
        )
    ),
    max_length=16,
    strict=True,
)

_FIELDS = SchemaValidator(
    cs.typed_dict_schema(
        {
            name: cs.typed_dict_field(schema, required=False)
            for name, schema in {
                "event_id": cs.with_default_schema(
                    cs.str_schema(pattern=_EVENT_ID, strict=True),
                    default_factory=_new_event_id,
                ),
                "value": _optional(cs.any_schema()),
                "currency": _optional(_text(_CURRENCY)),
                "occurred_at": _optional(cs.any_schema()),
                "url": _optional(_text(_URL)),
                # Left out: website. None is refused by the full path: decline it.
                "action_source": cs.with_default_schema(
                    cs.any_schema(), default=ActionSource.WEBSITE
                ),
                "site_key": _optional(_text()),
                "custom_data": _optional(cs.nullable_schema(_FLAT_CUSTOM_DATA)),
                "user_data": _optional(cs.nullable_schema(_USER_DATA)),
            }.items()
        },
        extra_behavior="forbid",
        strict=True,
    )
)
_SOURCES: dict[object, ActionSource] = {source.value: source for source in ActionSource}


def plain_body(event: object, fields: dict[str, Any]) -> tuple[str, str, bytes] | None:
    """``(event_id, event, body)`` of a usual event, or None: then ask the full path.

    ``fields`` are ``track()``'s keyword arguments (not modified). The default
    phone region is not needed: only numbers with their country code take this path.
    """
    if type(event) is not str or event not in STANDARD_EVENTS:
        return None
    try:
        given: dict[str, Any] = _FIELDS.validate_python(fields)
    except ValidationError:
        return None
    user = given["user_data"] or {}  # only the keys given
    hashes = _hashes(user)
    if hashes is None or not _settle_event(given):
        return None
    given["event"] = event
    body = assemble_body(given, user, current_context(), None, checked_hashes=hashes)
    return given["event_id"], event, serialize_flat_body(body)


def _settle_event(given: dict[str, Any]) -> bool:
    """Give the event's values the full path's types; False if they are not the usual ones."""
    value, currency = given["value"], given["currency"]
    if (value is None) is not (currency is None) or (currency and currency not in CURRENCIES):
        return False
    if value is not None:
        try:
            given["value"] = check_value(value)
        except PydanticCustomError:
            return False
    source = given["action_source"]
    if type(source) is str or type(source) is ActionSource:
        given["action_source"] = _SOURCES.get(source)
    else:
        return False
    when = given["occurred_at"]
    given["occurred_at"] = _utc_now() if when is None else _recent(when)
    return given["action_source"] is not None and given["occurred_at"] is not None


def _recent(when: object) -> datetime | None:
    """An ``occurred_at`` the full path takes without a word, in UTC; else None."""
    try:
        moment = parse_time(when)
    except PydanticCustomError:
        return None
    now = _utc_now()
    return moment if moment - now <= _FUTURE_SLACK and now - moment <= _STALE_AFTER else None


def _hashes(user: dict[str, Any]) -> dict[str, str] | None:
    """The hashed email, phone and external_id, as the full path writes them; None: decline.

    The schema let through only the shapes whose normalization is known: an ASCII
    address, lowercased by the schema (its ``@`` means it is no pre-hashed value), and
    an E.164 number, maybe grouped ("+49 30 901820"). A 64-character external id could
    be a pre-hash, which has rules of its own.
    """
    out: dict[str, str] = {}
    email, phone, external_id = user.get("email"), user.get("phone"), user.get("external_id")
    if email is not None:
        out["email"] = sha256_hex(email)
    if phone is not None:
        digits = _fast_e164(phone)
        if digits is None:
            return None
        out["phone"] = sha256_hex(digits)
    if external_id:
        # As hash_external_id does: Python's str.strip (which strips more characters
        # than the schema's); 64 characters could be a pre-hash: the full path decides.
        trimmed = external_id.strip()
        if len(trimmed) == 64:
            return None
        if trimmed:
            out["external_id"] = sha256_hex(trimmed)
    address = user.get("client_ip_address")
    if address:
        address = user["client_ip_address"] = normalize_ip(address)
        if address is None:
            return None
    return out
