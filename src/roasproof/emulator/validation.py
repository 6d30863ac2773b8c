"""Server-side validation of what arrives at the emulator.

The emulator is the server: it must not trust the SDK (or curl) that talks to
it. Every rule of the ingest guide is checked here on the raw JSON, and the
first offending field is reported as a dotted path (``user_data.email``) so a
422 answer can name it. Raw email, phone and external_id are normalized and
hashed on arrival with the SDK's own normalizer, so both sides agree on the
hashes and no plaintext PII ever leaves this module.
"""

from __future__ import annotations

import ipaddress
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from roasproof import _normalize
from roasproof._currencies import CURRENCIES

__all__ = [
    "ACTION_SOURCES",
    "CURRENCIES",
    "STANDARD_EVENTS",
    "USER_DATA_FIELDS",
    "ValidationFailed",
    "format_time",
    "validate_event",
    "validate_visitor",
]

STANDARD_EVENTS = frozenset(
    {
        "page_view",
        "view_content",
        "add_to_cart",
        "initiate_checkout",
        "lead",
        "signup",
        "purchase",
        "subscribe",
    }
)
ACTION_SOURCES = frozenset(
    {
        "website",
        "app",
        "phone_call",
        "email",
        "physical_store",
        "chat",
        "system_generated",
        "business_messaging",
        "other",
    }
)
# The server's field lists are written out from the guide on purpose instead of imported
# from the SDK's model: the emulator is the SDK's test oracle, so an SDK that starts
# sending an undocumented field must be refused here, not silently agreed with.
_TOP_LEVEL = frozenset(
    {
        "event",
        "event_id",
        "value",
        "currency",
        "occurred_at",
        "url",
        "action_source",
        "site_key",
        "custom_data",
        "user_data",
    }
)
#: The keys ``user_data`` may carry, exactly as the guide lists them.
USER_DATA_FIELDS = (
    "email",
    "phone",
    "external_id",
    "visitor_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "fbclid",
    "gclid",
    "wbraid",
    "gbraid",
    "ttclid",
)
#: What the tracking script may report about a visitor (unknown keys are ignored).
_BROWSER_FIELDS = frozenset(
    {"visitor_id", "email", "fbc", "fbp", "fbclid", "gclid", "wbraid", "gbraid", "ttclid"}
)
_MAX_TEXT = 2048
_MAX_VALUE = Decimal("1e12")
_MAX_FUTURE = timedelta(minutes=10)
_VISITOR_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CLICK_ID = re.compile(r"[\x21-\x7e]{1,1024}")


class ValidationFailed(ValueError):
    """One field broke a rule; becomes ``422 {"error", "field", "message"}``.

    The message names the rule and the fix, never the submitted value (it may be PII).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class ValidatedEvent:
    """An accepted event body: hashed identifiers, defaults filled, nothing raw."""

    conversion: dict[str, Any]
    hashed_on_arrival: tuple[str, ...]


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, to the millisecond: how the emulator writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def validate_event(
    data: object, *, custom_events: Mapping[str, bool], now: datetime
) -> ValidatedEvent:
    """Check one ``POST /api/v1/events`` body and return it ready to store.

    ``custom_events`` maps the workspace's custom event keys to "billable". Raises
    :class:`ValidationFailed` naming the first offending field.
    """
    if not isinstance(data, dict):  # pragma: no cover - the app answers 400 before this
        raise ValidationFailed("body", "the body must be a JSON object")
    for key in data:
        if key not in _TOP_LEVEL:
            raise ValidationFailed(key, "unknown field; see the ingest guide's field reference")
    conversion: dict[str, Any] = {"event": _event_name(data.get("event"), custom_events)}
    conversion["event_id"] = _text(data, "event_id", 255) or f"evt_{uuid.uuid4().hex}"
    conversion.update(_money(data))
    conversion["occurred_at"] = _occurred_at(data.get("occurred_at"), now)
    conversion["url"] = _url(_text(data, "url", _MAX_TEXT), "url")
    source = _text(data, "action_source", 64) or "website"
    if source not in ACTION_SOURCES:
        choices = ", ".join(sorted(ACTION_SOURCES))
        raise ValidationFailed("action_source", f"must be one of {choices}")
    conversion["action_source"] = source
    conversion["site_key"] = _text(data, "site_key", 255)
    custom_data = data.get("custom_data")
    if custom_data is not None and not isinstance(custom_data, dict):
        raise ValidationFailed("custom_data", "must be a JSON object of extra properties")
    conversion["custom_data"] = custom_data or None
    user_data, hashed = _user_data(data.get("user_data"))
    conversion["user_data"] = user_data
    return ValidatedEvent(
        {k: v for k, v in conversion.items() if v is not None}, hashed_on_arrival=hashed
    )


def validate_visitor(data: object) -> dict[str, str]:
    """Check a ``POST /api/v1/collect`` body from the tracking script.

    Accepts ``visitor_id``, ``url``, ``site_key``, the click ids, ``fbc``/``fbp`` and an
    ``email`` (hashed here). Unknown keys are ignored: browsers run old script versions.
    """
    if not isinstance(data, dict):  # pragma: no cover - the app answers 400 before this
        raise ValidationFailed("body", "the body must be a JSON object")
    browser = {key: data[key] for key in data if key in _BROWSER_FIELDS}
    user_data, _ = _user_data(browser, prefix="")
    url = _url(_text(data, "url", _MAX_TEXT), "url")
    site_key = _text(data, "site_key", 255)
    extra = {"url": url, "site_key": site_key}
    return user_data | {k: v for k, v in extra.items() if v is not None}


def _event_name(value: object, custom_events: Mapping[str, bool]) -> str:
    if value is None or value == "":
        raise ValidationFailed("event", "is required: a standard event or a defined custom key")
    if not isinstance(value, str):
        raise ValidationFailed("event", "must be a string")
    if value not in STANDARD_EVENTS and value not in custom_events:
        raise ValidationFailed(
            "event",
            "unknown event: use one of the eight standard events "
            f"({', '.join(sorted(STANDARD_EVENTS))}) or define the custom event first",
        )
    return value


def _text(data: Mapping[str, Any], key: str, limit: int, prefix: str = "") -> str | None:
    """A string field, stripped; ``None``/empty means absent."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed(prefix + key, "must be a string")
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(prefix + key, f"is longer than {limit} characters")
    return value or None


def _money(data: Mapping[str, Any]) -> dict[str, Any]:
    value = data.get("value")
    currency = _text(data, "currency", 16)
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise ValidationFailed("value", "must be a JSON number such as 249.00")
        if not math.isfinite(value) or value < 0 or value > _MAX_VALUE:
            raise ValidationFailed("value", "must be a number from 0 to 1e12")
        if currency is None:
            raise ValidationFailed("currency", "is required with a value (3-letter ISO 4217)")
    if currency is not None and currency.upper() not in CURRENCIES:
        raise ValidationFailed("currency", "must be a 3-letter ISO 4217 code such as EUR or USD")
    number = value if value is None or isinstance(value, int) else Decimal(value)
    return {"value": number, "currency": currency.upper() if currency else None}


def _occurred_at(value: object, now: datetime) -> str:
    if value is None:
        return format_time(now)
    if not isinstance(value, str):
        raise ValidationFailed("occurred_at", "must be an ISO 8601 string: 2026-07-03T09:41:00Z")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            "occurred_at", "is not ISO 8601; write it like 2026-07-03T09:41:00Z"
        ) from None
    if moment.tzinfo is None:
        raise ValidationFailed("occurred_at", "has no timezone; add Z or an offset like +02:00")
    if moment - now > _MAX_FUTURE:
        raise ValidationFailed("occurred_at", "is in the future; check the clock and timezone")
    return format_time(moment)


def _url(value: str | None, field: str) -> str | None:
    if value is not None and not re.match(r"https?://[^\s/]+", value):
        raise ValidationFailed(field, "must be an absolute http(s) URL")
    return value


def _user_data(value: object, prefix: str = "user_data.") -> tuple[dict[str, str], tuple[str, ...]]:
    """Validate user_data; hash raw PII; report which fields arrived raw."""
    if value is None:
        return {}, ()
    if not isinstance(value, dict):
        raise ValidationFailed(prefix.rstrip(".") or "body", "must be a JSON object")
    result: dict[str, str] = {}
    hashed: list[str] = []
    for key in value:
        if key not in USER_DATA_FIELDS:
            raise ValidationFailed(prefix + key, "unknown user_data field")
    for key in USER_DATA_FIELDS:
        text = _text(value, key, _MAX_TEXT, prefix)
        if text is None:
            continue
        checked = _CHECKS[key](text, prefix + key)
        if key in _HASHERS and not _normalize.is_sha256(text):
            hashed.append(key)
        result[key] = checked
    return result, tuple(hashed)


def _hash_pii(hasher: Callable[[str], str | None], what: str) -> Callable[[str, str], str]:
    def check(text: str, field: str) -> str:
        try:
            digest = hasher(text)
        except _normalize.PIIError as exc:
            raise ValidationFailed(field, str(exc)) from None
        if digest is None:
            raise ValidationFailed(field, f"could not be normalized: {what}")
        return digest

    return check


def _phone_hasher(text: str) -> str | None:
    return _normalize.hash_phone(text, None)


def _ip(text: str, field: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValidationFailed(field, "must be an IPv4 or IPv6 address") from None


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str, str], str]:
    def check(text: str, field: str) -> str:
        if not regex.fullmatch(text):
            raise ValidationFailed(field, f"must be {what}")
        return text

    return check


def _cookie(valid: Callable[[str], bool], name: str) -> Callable[[str, str], str]:
    def check(text: str, field: str) -> str:
        if not valid(text):
            raise ValidationFailed(field, f"must be the {name} cookie value, fb.<n>.<ms>.<id>")
        return text

    return check


_HASHERS = {"email", "phone", "external_id"}
_CHECKS: dict[str, Callable[[str, str], str]] = {
    "email": _hash_pii(_normalize.hash_email, "send a full address like name@example.com"),
    "phone": _hash_pii(_phone_hasher, "send it in E.164 with the country code, +359881234567"),
    "external_id": _hash_pii(_normalize.hash_external_id, "send a non-empty customer id"),
    "visitor_id": _pattern(_VISITOR_ID, "the _sgnl_vid cookie value (letters, digits, . _ : -)"),
    "client_ip_address": _ip,
    "client_user_agent": lambda text, field: text,
    "fbc": _cookie(_normalize.valid_fbc, "_fbc"),
    "fbp": _cookie(_normalize.valid_fbp, "_fbp"),
    "fbclid": _pattern(_CLICK_ID, "a click id without spaces"),
    "gclid": _pattern(_CLICK_ID, "a click id without spaces"),
    "wbraid": _pattern(_CLICK_ID, "a click id without spaces"),
    "gbraid": _pattern(_CLICK_ID, "a click id without spaces"),
    "ttclid": _pattern(_CLICK_ID, "a click id without spaces"),
}
