"""The field checks behind :mod:`roasproof.events`, and their error messages.

Kept apart from the models so each check is a small pure function that
:mod:`roasproof._payload` can reuse on request-context values (an IP address
or URL captured from a request is checked like an explicit one, but dropped
with a warning instead of failing the event). ``ValidatedModel``, the models'
base class, makes ``Event(...)``/``UserData(...)`` raise the same
:class:`~roasproof.InvalidEvent` as :func:`~roasproof.events.make_event`.

Every failure is raised as a ``PydanticCustomError`` of type ``roasproof``
whose context carries ``(subpath, problem, fix)`` triples; :func:`field_errors`
turns a pydantic ``ValidationError`` into :class:`~roasproof.FieldError`
objects. The texts are ours, never pydantic's rendering of the input, so no
raw email, phone or external id can leak through them.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

from roasproof.errors import FieldError, InvalidEvent

EVENT_FIELDS = (
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
)
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
ACTION_SOURCES = (
    "website, app, phone_call, email, physical_store, chat, system_generated, "
    "business_messaging, other"
)

_MAX_DIGITS = 15  # before the decimal point
_MAX_PLACES = 18
# A dotted quad without leading zeros is already canonical: skip ipaddress (~1.5 us).
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # ASCII digits: \\d takes any digit
IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_URL_JUNK = re.compile(r"[\s\x00-\x1f\x7f]")
# The usual page address (lowercase http(s), a plain ASCII host, at most a 4-digit port,
# no junk): urlsplit would accept it, so skip splitting it (~1.5 us). Anything else is split.
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,4})?(?:[/?#][^\s\x00-\x1f\x7f]*)?")
# A plain amount ("249.00"): at most 15 digits before the point and 18 after, so finite,
# non-negative and within bounds by its shape; Decimal() takes it as is.
PLAIN_AMOUNT = re.compile(r"[0-9]{1,15}(?:\.[0-9]{0,18})?")
# A plain amount that format(Decimal(amount), "f") writes back unchanged (no leading zero,
# no bare point): JSON can carry it as it is, without making a Decimal.
CANONICAL_AMOUNT = re.compile(r"(?:[1-9][0-9]{0,14}|0)(?:\.[0-9]{1,18})?")

Problems = list[tuple[str, str, str]]

EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
NAME_RULE = "lowercase letters, digits and underscores, starting with a letter, at most 64"


def event_id_problem(event_id: str) -> str | None:
    # The space is the only printable whitespace character: isprintable() and no " "
    # means no whitespace at all (what the regex \S would check, a regex slower).
    if 0 < len(event_id) <= 128 and event_id.isprintable() and " " not in event_id:
        return None
    return "must be 1 to 128 printable characters without whitespace"


if TYPE_CHECKING:  # mypy sees a plain model, so the pydantic plugin types __init__

    class ValidatedModel(BaseModel):
        pass

else:

    class _ConvertErrors(type(BaseModel)):
        """Turn ``Event(...)``/``UserData(...)`` validation errors into InvalidEvent.

        A metaclass ``__call__`` (not an ``__init__`` override) so that pydantic's
        own validation (``model_validate``, nested models) stays on its fast path.
        """

        def __call__(cls, /, **data: Any) -> Any:
            try:
                return super().__call__(**data)
            except ValidationError as exc:
                prefix = getattr(cls, "_error_prefix", "")
                errors = field_errors(exc, prefix=prefix)
                name = data.get("event")
                if not prefix:
                    errors += pairing_errors(data, errors)
                raise InvalidEvent(errors, event=name if isinstance(name, str) else None) from None

    class ValidatedModel(BaseModel, metaclass=_ConvertErrors):
        """Base of the event models: direct construction raises InvalidEvent."""


def fail(problem: str, fix: str, path: str = "") -> NoReturn:
    """Reject the field being validated (``path`` is relative to it)."""
    fail_many([(path, problem, fix)])


def fail_many(problems: Problems) -> NoReturn:
    """Reject the field being validated for several reasons (sub-paths) at once."""
    first = problems[0]
    raise PydanticCustomError(
        "roasproof", "{problem}", {"problem": first[1], "fix": first[2], "errors": problems}
    )


def _join(base: str, sub: str) -> str:
    if not sub:
        return base
    if not base:
        return sub.lstrip(".")
    return base + sub if sub[0] in ".[" else f"{base}.{sub}"


def field_errors(exc: ValidationError, *, prefix: str = "") -> list[FieldError]:
    """Every problem in ``exc`` as a :class:`FieldError` with a dotted path."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(str(part) for part in err["loc"])
        base = ".".join((prefix, *loc) if prefix else loc)
        if err["type"] == "roasproof":
            ctx = err.get("ctx") or {}
            out.extend(FieldError(_join(base, sub), p, f) for sub, p, f in ctx["errors"])
        else:
            out.append(FieldError(base, *_describe(err["type"], err["msg"], loc, prefix)))
    return out


def _describe(kind: str, msg: str, loc: tuple[str, ...], prefix: str) -> tuple[str, str]:
    """Our own problem and fix for a pydantic error type."""
    if kind == "extra_forbidden":
        in_user_data = bool(prefix) or len(loc) > 1
        name = loc[-1]
        if not in_user_data and name in USER_DATA_FIELDS:
            return "is a user_data field, not an event field", f"pass user_data={{{name!r}: ...}}"
        known = USER_DATA_FIELDS if in_user_data else EVENT_FIELDS
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return "is not a known field", f"{hint}the fields are: {', '.join(known)}"
    if kind == "string_type":
        return "must be a string", "pass a str, or leave the field out"
    if kind == "enum":
        return f"must be one of: {ACTION_SOURCES}", "use an ActionSource value"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a UserData or a dict", "pass e.g. user_data={'email': ...}"
    if kind == "missing":
        return "is required", "pass it"
    return msg[:1].lower() + msg[1:], "see the event reference"


def pairing_errors(data: Mapping[str, Any], known: list[FieldError]) -> list[FieldError]:
    """``value`` without ``currency`` (or the reverse), unless already reported."""
    has_value = data.get("value") is not None
    has_currency = bool(str(data.get("currency") or "").strip())
    paths = {error.path for error in known}
    if has_value and not has_currency and "currency" not in paths:
        return [FieldError("currency", "is required when value is set", "pass e.g. currency='EUR'")]
    if has_currency and not has_value and "value" not in paths:
        return [
            FieldError("value", "is missing while currency is set", "pass value=, or drop currency")
        ]
    return []


def normalize_ip(value: str) -> str | None:
    """The canonical text of an IPv4/IPv6 address (IPv4-mapped unwrapped), or None."""
    if IPV4.fullmatch(value):
        return value
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def check_ip(value: str) -> str:
    address = normalize_ip(value)
    if address is None:
        fail(
            "is not a valid IPv4 or IPv6 address",
            "pass the visitor's address without a port, e.g. '203.0.113.7'",
        )
    return address


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an absolute http(s) URL, or None."""
    if PLAIN_URL.fullmatch(url):
        return None
    if _URL_JUNK.search(url):
        return "contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an absolute http or https URL"
    return None


def check_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        fail(problem, "pass the full page address, e.g. 'https://shop.example/thank-you'")
    return value


def check_value(value: object) -> Decimal:
    """An exact, finite, non-negative Decimal from an int, float, str or Decimal."""
    if type(value) is str and PLAIN_AMOUNT.fullmatch(value):
        return Decimal(value)  # unsigned: never a negative zero
    fix = "pass the order value, e.g. Decimal('249.00')"
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, bool) or not isinstance(value, int | float | str):
        fail("must be a number (Decimal, int, float or numeric string)", fix)
    elif isinstance(value, int):
        amount = Decimal(value)  # exact, and no str(): huge ints exceed its digit limit
    else:
        try:
            # str(float) is the shortest repr: 0.1 stays 0.1, not 0.1000000000000000055...
            amount = Decimal(str(value).strip())
        except InvalidOperation:
            fail("is not a number", fix)
    if not amount.is_finite():
        fail("must be a finite number", fix)
    if amount < 0:
        fail("must not be negative", "send the amount the customer paid, as a positive number")
    if amount.adjusted() >= _MAX_DIGITS:
        fail("is too large (15 digits before the decimal point at most)", fix)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -_MAX_PLACES:
        fail(f"has more than {_MAX_PLACES} decimal places", "round it to the currency's precision")
    return amount.copy_abs() if amount.is_zero() else amount


def parse_time(value: object) -> datetime:
    """An aware datetime in UTC from a datetime or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            fail(
                "is not an ISO 8601 date and time",
                "use e.g. '2026-07-03T09:41:00Z' or an aware datetime",
            )
    if not isinstance(value, datetime):
        fail(
            "must be a timezone-aware datetime or an ISO 8601 string",
            "pass e.g. datetime.now(timezone.utc)",
        )
    if value.utcoffset() is None:
        fail(
            "has no timezone (a naive datetime is ambiguous)",
            "add tzinfo, e.g. datetime.now(timezone.utc) or when.replace(tzinfo=timezone.utc)",
        )
    return value if value.tzinfo is UTC else value.astimezone(UTC)
