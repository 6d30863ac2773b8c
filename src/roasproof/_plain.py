"""The usual event, validated without building the models: ``track()``'s fast path.

Most conversions arrive in one shape: a standard event name, an order id, an
amount, a currency code, the page address and plain identifiers. For that
shape, :func:`plain_body` checks every field in one call of a compiled
pydantic-core schema (no Python callback per field), hashes the identifiers
whose normalization the schema settled, in place in the validated dict (the
schema lists user_data's keys in the body's order), adds what the request
context adds (checked once per request) and serializes the body with
pydantic-core: about 0.4x the cost of :func:`~roasproof.events.make_event` +
:func:`~roasproof._payload.build_payload` for a purchase with every identifier
(docs/benchmarks.md).

It only ever *declines*: anything outside the shape (a custom event name, an
:class:`~roasproof.Event` object, whitespace to strip from a checked field, a
lowercase currency, a pre-hashed identifier, a phone number without its country
code, nested custom_data, an old or future ``occurred_at``, a request context with
a value the full path drops, any invalid value)
returns ``None`` and takes the full path, which accepts everything this
accepts, words every error and logs every warning. The invariant, tested with
hypothesis against the full path: when :func:`plain_body` answers, its event id
and bytes are exactly those of the full path.
"""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError, SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from roasproof._currencies import CURRENCIES
from roasproof._event_checks import (
    CANONICAL_AMOUNT,
    check_value,
    normalize_ip,
    parse_time,
)
from roasproof._normalize import (
    _FB_COOKIE_MAX,
    _FB_COOKIE_RE,
    _GROUPED,
    _fast_e164,
    sha256_hex,
)
from roasproof._payload import (
    _CONTEXT_KEYS,
    _SOURCE_TEXT,
    context_value,
    format_time,
    now_text,
    serialize_flat_body,
)
from roasproof.context import RequestContext, current_context
from roasproof.events import (
    _FUTURE_SLACK,
    _PLAIN_EMAIL,
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
# The full path's own patterns, where they use ASCII classes only:
_EMAIL = f"^{_PLAIN_EMAIL.pattern}$"
_PHONE = f"^{_GROUPED.pattern}$"  # then _fast_e164 (E.164, maybe grouped)
_FB_COOKIE = f"^{_FB_COOKIE_RE.pattern}$"  # valid_fbc/fbp, with _FB_COOKIE_MAX


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


#: user_data keys in the order the body lists them: the hashed ones, then the full path's
_ORDER = ("email", "phone", "external_id", *_CONTEXT_KEYS)
_USER_FIELDS: dict[str, cs.CoreSchema] = {
    "email": _text(_EMAIL, to_lower=True),
    "phone": _text(_PHONE, 60),
    "external_id": _text(),
    "visitor_id": _text(),
    "client_ip_address": _text(),
    "client_user_agent": _text(),
    "fbc": _text(_FB_COOKIE, _FB_COOKIE_MAX),
    "fbp": _text(_FB_COOKIE, _FB_COOKIE_MAX),
    "fbclid": _text(),
    "gclid": _text(),
    "wbraid": _text(),
    "gbraid": _text(),
    "ttclid": _text(),
}
# The validated dict lists its keys in the schema's order: the body's.
_USER_DATA = cs.typed_dict_schema(
    {name: cs.typed_dict_field(_USER_FIELDS[name], required=False) for name in _ORDER},
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
    money = _money(given["value"], given["currency"])
    source = given["action_source"]
    if type(source) is str or type(source) is ActionSource:
        source = _SOURCE_TEXT.get(source)  # keyed by members, which equal their text
    else:
        source = None
    when = given["occurred_at"]
    stamp = now_text() if when is None else _recent(when)
    context = current_context()
    added = _NOTHING_ADDED if context is None else _checked_context(context)
    if money is None or source is None or stamp is None or added is None:
        return None
    user = _user_data(given["user_data"], added[1])
    if user is None:
        return None
    event_id, (value, amount) = given["event_id"], money
    body: dict[str, Any] = {"event": event, "event_id": event_id}
    if value is not None:
        body["value"] = value
        body["currency"] = given["currency"]
    body["occurred_at"] = stamp
    url = given["url"] or added[0]
    if url:
        body["url"] = url
    body["action_source"] = source
    if given["site_key"]:
        body["site_key"] = given["site_key"]
    if user:
        body["user_data"] = user
    if given["custom_data"]:
        body["custom_data"] = given["custom_data"]  # validated: a dict of our own
    return event_id, event, serialize_flat_body(body, amount)


def _money(value: object, currency: str | None) -> tuple[object, str | None] | None:
    """``(value, amount)``: the value as the body holds it, its JSON text if known; None: decline.

    A canonical amount string is its own JSON text: no Decimal is made for it.
    """
    if value is None:
        return None if currency is not None else (None, None)
    if currency is None or currency not in CURRENCIES:
        return None
    if type(value) is str and CANONICAL_AMOUNT.fullmatch(value):
        return value, value
    try:
        return check_value(value), None
    except PydanticCustomError:
        return None


def _recent(when: object) -> str | None:
    """An ``occurred_at`` the full path takes without a word, as written; else None."""
    try:
        moment = parse_time(when)
    except PydanticCustomError:
        return None
    now = _utc_now()
    if moment - now <= _FUTURE_SLACK and now - moment <= _STALE_AFTER:
        return format_time(moment)
    return None


#: What a request context may add: the event's url, then user_data's keys.
_CONTEXT_FIELDS = ("url", *_CONTEXT_KEYS)
#: What no request context adds: no url, no user_data values.
_NOTHING_ADDED: tuple[str | None, dict[str, str]] = (None, {})
#: The request context last checked, and what it adds: its url and its user_data values.
_last_context: tuple[RequestContext | None, tuple[str | None, dict[str, str]] | None] = (None, None)


def _checked_context(context: RequestContext) -> tuple[str | None, dict[str, str]] | None:
    """The context's url and user_data values, or None if the full path would drop one.

    The full path drops (and warns about) a context value the server or Meta would refuse;
    such a context is declined here, so that the warning is the full path's. A request's
    context is the same object for each of its events (it is frozen): checked once.
    """
    global _last_context
    last, checked = _last_context
    if last is context:
        return checked
    values: dict[str, str] = {}
    checked = None
    for key in _CONTEXT_FIELDS:
        found = getattr(context, key)
        if found:
            found = context_value(key, found)
            if found is None:
                break
            values[key] = found
    else:
        checked = values.pop("url", None), values
    _last_context = context, checked
    return checked


def _user_data(user: dict[str, Any] | None, added: dict[str, str]) -> dict[str, Any] | None:
    """The body's user_data: the given values (identifiers hashed), else the context's.

    None: decline. Keys in the body's order: the schema lists them so, and the
    context's values are slotted in where the full path puts them.
    """
    if user is not None and _hash_in_place(user) is None:
        return None
    if added:
        return {
            key: found for key in _ORDER if (found := (user and user.get(key)) or added.get(key))
        }
    if user and not all(user.values()):
        return {key: found for key, found in user.items() if found}
    return user or {}


def _hash_in_place(user: dict[str, Any]) -> dict[str, Any] | None:
    """Hash the email, phone and external_id of the validated ``user``; None: decline.

    The schema let through only the shapes whose normalization is known: an ASCII
    address, lowercased by the schema (its ``@`` means it is no pre-hashed value), and
    an E.164 number, maybe grouped ("+49 30 901820"). A 64-character external id could
    be a pre-hash, which has rules of its own. Values keep their places: the schema
    lists the keys in the body's order.
    """
    email = user.get("email")
    if email is not None:
        user["email"] = sha256_hex(email)
    phone = user.get("phone")
    if phone is not None:
        digits = _fast_e164(phone)
        if digits is None:
            return None
        user["phone"] = sha256_hex(digits)
    external_id = user.get("external_id")
    if external_id:
        # As hash_external_id does: Python's str.strip (which strips more characters
        # than the schema's); 64 characters could be a pre-hash: the full path decides.
        trimmed = external_id.strip()
        if len(trimmed) == 64:
            return None
        user["external_id"] = sha256_hex(trimmed) if trimmed else None
    address = user.get("client_ip_address")
    if address:
        address = user["client_ip_address"] = normalize_ip(address)
        if address is None:
            return None
    return user
