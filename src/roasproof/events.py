"""The event model: what a conversion is, validated before it is queued.

An :class:`Event` holds one conversion exactly as the ingest API's field
reference describes it; :class:`UserData` holds the matching keys. Both are
frozen pydantic models that refuse unknown fields, so a typo fails here, in
the developer's code, instead of as a 422 hours later in a dead-letter queue.

:func:`make_event` is the one way in used by ``Client.track``/``send``: any
problem raises :class:`~roasproof.InvalidEvent` listing every offending field
as a dotted path with a fix. Messages and reprs never contain a raw email,
phone number or external id; those three are kept as given, in memory only,
and hashed when the payload is built (see :mod:`roasproof._payload`).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, ClassVar

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from roasproof._currencies import CURRENCIES
from roasproof._custom_data import check_custom_data
from roasproof._event_checks import (
    EVENT_NAME,
    IPV4,
    NAME_RULE,
    PLAIN_URL,
    ValidatedModel,
    check_ip,
    check_url,
    check_value,
    event_id_problem,
    fail,
    field_errors,
    pairing_errors,
    parse_time,
)
from roasproof._normalize import EMPTY_SHA256, PIIError, hash_email, looks_like_md5, normalize_email
from roasproof.errors import FieldError, InvalidEvent

__all__ = [
    "STANDARD_EVENTS",
    "ActionSource",
    "Event",
    "StandardEvent",
    "UserData",
    "make_event",
    "make_event_id",
]

_log = logging.getLogger("roasproof")


class StandardEvent(StrEnum):
    """The eight events every workspace knows; anything else is a custom event."""

    PAGE_VIEW = "page_view"
    VIEW_CONTENT = "view_content"
    ADD_TO_CART = "add_to_cart"
    INITIATE_CHECKOUT = "initiate_checkout"
    LEAD = "lead"
    SIGNUP = "signup"
    PURCHASE = "purchase"
    SUBSCRIBE = "subscribe"


STANDARD_EVENTS: frozenset[str] = frozenset(member.value for member in StandardEvent)


class ActionSource(StrEnum):
    """Where the conversion happened; ``website`` unless said otherwise."""

    WEBSITE = "website"
    APP = "app"
    PHONE_CALL = "phone_call"
    EMAIL = "email"
    PHYSICAL_STORE = "physical_store"
    CHAT = "chat"
    SYSTEM_GENERATED = "system_generated"
    BUSINESS_MESSAGING = "business_messaging"
    OTHER = "other"


# An ASCII address normalize_email accepts as it is (printable, no whitespace, one @, a
# domain of non-empty dot-separated labels): checked without normalizing it, which the
# payload does once when hashing. Anything else goes through normalize_email.
_PLAIN_EMAIL = re.compile(r"[!-?A-~]+@(?:[!-\-/-?A-~]+\.)+[!-\-/-?A-~]+")

_FUTURE_SLACK = timedelta(minutes=5)
_STALE_AFTER = timedelta(days=7)


def _new_event_id() -> str:
    """A random id (128 bits, hex), fixed when the event is created so retries dedupe."""
    return os.urandom(16).hex()


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _name_problem(name: str, custom_events: Collection[str] | None) -> tuple[str, str] | None:
    """Why ``name`` is not an acceptable event name, as ``(problem, fix)``, or None."""
    if name in STANDARD_EVENTS:
        return None
    if not EVENT_NAME.fullmatch(name):
        problem = f"is not a standard event nor a valid custom key ({NAME_RULE} characters)"
        fix = "use e.g. 'purchase' or 'newsletter_signup'"
    elif custom_events is not None and name not in custom_events:
        problem = "is neither a standard event nor one of the custom_events this client knows"
        fix = "fix the name, or add it to Client(custom_events=[...])"
    else:
        return None
    known = sorted(STANDARD_EVENTS.union(custom_events or ()))
    close = difflib.get_close_matches(name.lower(), known, n=1)
    return problem, f"did you mean {close[0]!r}? {fix}" if close else fix


class UserData(ValidatedModel):
    """The visitor's matching keys; send everything you have.

    ``email``, ``phone`` and ``external_id`` are kept as given (never in the
    repr) and hashed with SHA-256 when the payload is built; a pre-hashed
    SHA-256 is passed through. The others are sent as is. Construct it with
    keywords or pass a plain dict as ``user_data=`` to :func:`make_event`.
    """

    # Spelled out in each class so the pydantic mypy plugin sees frozen/extra.
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True
    )
    _error_prefix: ClassVar[str] = "user_data"  # InvalidEvent paths: user_data.email

    email: str | None = Field(default=None, repr=False)
    phone: str | None = Field(default=None, repr=False)
    external_id: str | None = Field(default=None, repr=False)
    visitor_id: str | None = None
    client_ip_address: str | None = None
    client_user_agent: str | None = None
    fbc: str | None = None
    fbp: str | None = None
    fbclid: str | None = None
    gclid: str | None = None
    wbraid: str | None = None
    gbraid: str | None = None
    ttclid: str | None = None

    @field_validator("email")
    @classmethod
    def _check_email(cls, value: str | None) -> str | None:
        # Checked without hashing (that waits for the payload), except for values
        # shaped like a pre-hash, whose own rules hash_email applies.
        text = (value or "").strip()
        if len(text) in (32, 64):
            try:
                hash_email(text)
            except PIIError as exc:
                fail(str(exc), "send the address itself, or the SHA-256 of the normalized one")
        elif text and not _PLAIN_EMAIL.fullmatch(text):
            try:
                normalize_email(text)
            except PIIError:
                fail(
                    "is not a valid email address",
                    "it needs one @ and a domain with a dot (name@example.com); "
                    "send the address as the customer typed it, or its SHA-256",
                )
        return value

    @field_validator("phone")
    @classmethod
    def _check_phone(cls, value: str | None) -> str | None:
        # Parsing waits for the payload (it needs default_phone_region); only the
        # region-independent rejections are checked here.
        text = (value or "").strip()
        if len(text) in (32, 64) and (text.lower() == EMPTY_SHA256 or looks_like_md5(text)):
            fail(
                "is an MD5 hash or the SHA-256 of an empty string", "send the number or its SHA-256"
            )
        return value

    @field_validator("external_id")
    @classmethod
    def _check_external_id(cls, value: str | None) -> str | None:
        if value and len(value) == 64 and value.lower() == EMPTY_SHA256:
            fail("is the SHA-256 of an empty string", "send your customer id as is, or its SHA-256")
        return value

    @field_validator("client_ip_address")
    @classmethod
    def _check_ip(cls, value: str | None) -> str | None:
        if not value or IPV4.fullmatch(value):  # a canonical dotted quad is kept as is
            return value
        return check_ip(value)


_NO_USER_DATA = UserData()


class Event(ValidatedModel):
    """One conversion, validated; build it with :func:`make_event`.

    ``event_id`` and ``occurred_at`` are fixed when the event is created, not
    when it is sent, so a retried delivery is the same event to the server.
    """

    # Spelled out in each class so the pydantic mypy plugin sees frozen/extra.
    model_config = ConfigDict(
        frozen=True, extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True
    )

    event: str
    event_id: str = Field(default_factory=_new_event_id)
    value: Decimal | None = None
    currency: str | None = None
    occurred_at: datetime = Field(default_factory=_utc_now)
    url: str | None = None
    action_source: ActionSource = ActionSource.WEBSITE
    site_key: str | None = None
    # Keys as given: stripping them, as the model does for its own strings, would merge
    # "a" and "a " and silently drop one value.
    custom_data: dict[Annotated[str, StringConstraints(strip_whitespace=False)], Any] | None = None
    user_data: UserData = _NO_USER_DATA

    @field_validator("user_data", mode="before")
    @classmethod
    def _default_user_data(cls, value: object) -> object:
        return _NO_USER_DATA if value is None else value

    @field_validator("event")
    @classmethod
    def _check_event(cls, value: str) -> str:
        if value not in STANDARD_EVENTS:
            problem = _name_problem(value, None)
            if problem is not None:
                fail(*problem)
        return value

    @field_validator("event_id")
    @classmethod
    def _check_event_id(cls, value: str) -> str:
        problem = event_id_problem(value)
        if problem is not None:
            fail(problem, "use e.g. make_event_id('purchase', order.id), or leave it out")
        return value

    @field_validator("value", mode="before")
    @classmethod
    def _check_value(cls, value: object) -> Decimal | None:
        return None if value is None else check_value(value)

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str | None) -> str | None:
        if not value:
            return None
        code = value.upper()
        if code not in CURRENCIES:
            fail("is not an ISO 4217 currency code", "use the 3-letter code, e.g. 'EUR' or 'USD'")
        return code

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _check_occurred_at(cls, value: object, info: ValidationInfo) -> datetime:
        if value is None:  # as if left out: now
            return _utc_now()
        when = parse_time(value)
        now = _utc_now()
        if when - now > _FUTURE_SLACK:
            fail(
                "is more than 5 minutes in the future",
                "pass the moment the conversion happened; check the server clock and timezone",
            )
        age = now - when
        if age > _STALE_AFTER:
            _log.warning(
                "%s: occurred_at is %d days old; ad platforms reject conversions older "
                "than 7 days, so this one will likely only count in roasproof's own reports",
                info.data.get("event", "event"),
                age.days,
            )
        return when

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        return value if PLAIN_URL.fullmatch(value) else check_url(value)

    @field_validator("site_key")
    @classmethod
    def _check_site_key(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("custom_data", mode="before")
    @classmethod
    def _check_custom_data(cls, value: object) -> dict[str, Any] | None:
        return None if value is None else check_custom_data(value)

    @model_validator(mode="after")
    def _check_pairs(self) -> Event:
        if (self.value is None) is not (self.currency is None):
            error = pairing_errors({"value": self.value, "currency": self.currency}, [])[0]
            fail(error.problem, error.fix, error.path)
        return self


def make_event(
    event: str | Event, *, custom_events: Collection[str] | None = None, **fields: Any
) -> Event:
    """Validate a conversion and return it as an :class:`Event`.

    ``event`` is an event name (``"purchase"``) or an existing :class:`Event`
    (``fields`` then override its values). ``custom_events``, when given,
    restricts custom names to that collection so typos fail here. Raises
    :class:`~roasproof.InvalidEvent` naming every offending field.
    """
    name: object = event
    if type(event) is not str:  # the usual plain name skips these checks
        name = str(event) if isinstance(event, str) else event  # StandardEvent -> "purchase"
        if isinstance(event, Event):
            name = event.event
            if not fields:
                _raise_unless_known(name, custom_events, [])
                return event
            fields = {key: getattr(event, key) for key in Event.model_fields} | fields
    fields["event"] = name
    try:
        # Event.model_validate(fields) without its keyword-argument handling.
        result: Event = Event.__pydantic_validator__.validate_python(fields)
    except ValidationError as exc:
        errors = field_errors(exc)
        errors += pairing_errors(fields, errors)
        _raise_unless_known(name, custom_events, errors)
        raise InvalidEvent(errors, event=name if isinstance(name, str) else None) from None
    if result.event not in STANDARD_EVENTS:
        if custom_events is None:
            _warn_if_misspelled(result.event)
        else:
            _raise_unless_known(result.event, custom_events, [])
    return result


@lru_cache(maxsize=256)
def _warn_if_misspelled(name: str) -> None:
    """Warn (once per name) when a custom event looks like a misspelled standard one.

    Without ``custom_events`` any well-formed name is a valid custom event, so
    ``"purchse"`` would be sent and counted as something else entirely.
    """
    close = difflib.get_close_matches(name, sorted(STANDARD_EVENTS), n=1, cutoff=0.8)
    if close:
        _log.warning(
            "%r is sent as a custom event; did you mean %r? Pass custom_events=[...] to "
            "the Client to turn unknown names into errors",
            name,
            close[0],
        )


def _raise_unless_known(
    name: object, custom_events: Collection[str] | None, errors: list[FieldError]
) -> None:
    """Raise InvalidEvent if ``name`` is outside ``custom_events`` (with ``errors``)."""
    if custom_events is None or not isinstance(name, str):
        return
    problem = _name_problem(name, custom_events)
    if problem is not None and all(error.path != "event" for error in errors):
        raise InvalidEvent([FieldError("event", *problem), *errors], event=name) from None


def make_event_id(event: str, key: object) -> str:
    """A deterministic event id from your own order or lead id: ``purchase_10023``.

    Give the browser pixel's copy of the event the same id, so the ad
    platforms count the conversion once. ``key`` is converted with ``str()``.
    """
    text = key.strip() if isinstance(key, str) else str(key)
    errors: list[FieldError] = []
    name = str(event)
    if not EVENT_NAME.fullmatch(name):
        errors.append(
            FieldError("event", f"must be an event name ({NAME_RULE})", "e.g. 'purchase'")
        )
    if key is None or isinstance(key, bool) or not text:
        problem: str | None = "needs a key: the order or lead id"
    else:
        problem = event_id_problem(f"{name}_{text}")
    if problem is not None:
        errors.append(FieldError("event_id", problem, "use an order or lead id without spaces"))
    if errors:
        raise InvalidEvent(errors, event=name)
    return f"{name}_{text}"
