"""The emulated workspace: what happens to an event between the request and the store.

:class:`Emulator` is framework-free (the Starlette routes in ``app.py`` only
translate HTTP to and from it), so the rules read in one place, in the order
the ingest API applies them: authenticate, validate (hashing PII on arrival),
deduplicate, bill, join the visitor's browser identifiers, build each
destination's view, store. Tests and the demo reach it as
``app.state.emulator`` to inspect what arrived without going through HTTP.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from roasproof.emulator.billing import Plan, is_billable
from roasproof.emulator.destinations import DESTINATIONS, destination_view, match_summary
from roasproof.emulator.store import Store
from roasproof.emulator.validation import (
    STANDARD_EVENTS,
    ValidationFailed,
    format_time,
    validate_event,
    validate_visitor,
)
from roasproof.errors import ConfigurationError

__all__ = ["DEFAULT_API_KEY", "JOINABLE_FIELDS", "Answer", "Emulator", "parse_custom_events"]

#: The key a zero-configuration emulator accepts (the demo and quick tests use it).
DEFAULT_API_KEY = "rp_test_emulator"
#: What a visitor record may contribute to a conversion; explicit values always win.
JOINABLE_FIELDS = (
    "fbc",
    "fbp",
    "fbclid",
    "gclid",
    "wbraid",
    "gbraid",
    "ttclid",
    "client_ip_address",
    "client_user_agent",
    "email",
)
_CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, before it becomes a response."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def parse_custom_events(spec: Mapping[str, bool] | Iterable[str] | None) -> dict[str, bool]:
    """``{"key": billable}`` from a mapping, or from CLI strings ``key`` / ``key:billable``."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        items = [(str(key), bool(value)) for key, value in spec.items()]
    else:
        items = []
        for text in spec:
            key, _, flag = text.partition(":")
            if flag not in ("", "billable"):
                raise ConfigurationError(
                    f"custom event {text!r}: write it as KEY or KEY:billable, e.g. quote_request"
                )
            items.append((key, flag == "billable"))
    for key, _ in items:
        if not _CUSTOM_KEY.fullmatch(key) or key in STANDARD_EVENTS:
            raise ConfigurationError(
                f"custom event {key!r}: use lowercase letters, digits and _ (starting with a "
                "letter), and not the name of a standard event"
            )
    return dict(items)


class Emulator:
    """One emulated workspace: its keys, destinations, custom events, plan and store."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        destinations: Iterable[str] = DESTINATIONS,
        custom_events: Mapping[str, bool] | Iterable[str] | None = None,
        plan: Plan | None = None,
        store: Store | None = None,
    ) -> None:
        self.api_keys = tuple(api_keys)
        if not self.api_keys or not all(self.api_keys):
            raise ConfigurationError("api_keys must hold at least one non-empty key")
        self.destinations = tuple(destinations)
        unknown = [name for name in self.destinations if name not in DESTINATIONS]
        if unknown:
            raise ConfigurationError(
                f"unknown destination {unknown[0]!r}: choose from {', '.join(DESTINATIONS)}"
            )
        self.custom_events = parse_custom_events(custom_events)
        self.plan = plan or Plan()
        self.store = store or Store()
        self.rejections: deque[dict[str, Any]] = deque(maxlen=100)

    def authenticate(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries one of the workspace's keys."""
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            return False
        matches = [secrets.compare_digest(key.encode(), known.encode()) for known in self.api_keys]
        return any(matches)

    def ingest(self, data: object, *, now: datetime | None = None) -> Answer:
        """Apply the ingest rules to one authenticated ``POST /api/v1/events`` body."""
        now = now or datetime.now(UTC)
        try:
            validated = validate_event(data, custom_events=self.custom_events, now=now)
        except ValidationFailed as exc:
            return self.reject(exc, data)
        conversion = validated.conversion
        event_id = conversion["event_id"]
        billable = is_billable(conversion["event"], self.custom_events)
        with self.store.transaction():
            original = self.store.original(event_id)
            if original is not None:
                return self._duplicate(original, conversion, now)
            billing: str = "unmetered"
            if billable:
                billing = self.plan.decide(self.store.billable_count())
                if billing == "refused":
                    return self._refuse(event_id)
            else:
                self.store.increment("unmetered")
            record = self._record(conversion, validated.hashed_on_arrival, billing, now)
            self.store.add_event(record | {"billable": billable})
        queued = [{"destination": name, "status": "queued"} for name in self.destinations]
        return Answer(202, {"event_id": event_id, "duplicate": False, "destinations": queued})

    def reject(self, exc: ValidationFailed, data: object = None) -> Answer:
        """The 422 for a failed rule; kept (without values) for inspection."""
        event = data.get("event") if isinstance(data, dict) else None
        self.store.increment("rejected")
        self.rejections.append(
            {
                "at": format_time(datetime.now(UTC)),
                "event": event if isinstance(event, str) else None,
                "field": exc.field,
                "message": exc.message,
            }
        )
        body = {"error": "validation_failed", "field": exc.field, "message": exc.message}
        return Answer(422, body)

    def collect(self, data: object, *, ip: str | None, user_agent: str | None) -> Answer:
        """Record what the tracking script saw for a visitor (``POST /api/v1/collect``)."""
        try:
            fields = validate_visitor(data)
        except ValidationFailed as exc:
            return Answer(
                422, {"error": "validation_failed", "field": exc.field, "message": exc.message}
            )
        visitor_id = fields.pop("visitor_id", None) or uuid.uuid4().hex
        now = format_time(datetime.now(UTC))
        seen = {"client_ip_address": ip, "client_user_agent": user_agent}
        with self.store.transaction():  # two beacons of one visitor must not lose an update
            record = self.store.visitor(visitor_id) or {"visitor_id": visitor_id, "first_seen": now}
            record.update(fields)  # the latest click wins: a new ad click replaces the old one
            record.update({key: value for key, value in seen.items() if value})
            record["last_seen"] = now
            record["hits"] = int(record.get("hits", 0)) + 1
            self.store.save_visitor(visitor_id, record)
        return Answer(200, {"visitor_id": visitor_id, "recorded": sorted(fields)})

    def usage(self) -> dict[str, Any]:
        """The billing summary (``GET /api/v1/usage``)."""
        return self.plan.summary(self.store.billable_count(), self.store.counters())

    def reset(self) -> None:
        """Forget every event, visitor, counter and rejection."""
        self.store.clear()
        self.rejections.clear()

    # internals --------------------------------------------------------------

    def _duplicate(
        self, original: dict[str, Any], conversion: dict[str, Any], now: datetime
    ) -> Answer:
        """Same event_id again: accepted, recorded as a duplicate, never counted or forwarded."""
        self.store.increment("duplicates")
        record = {
            "event_id": original["event_id"],
            "event": conversion["event"],
            "received_at": format_time(now),
            "duplicate": True,
            "duplicate_of": original["seq"],
            "billable": False,
            "billing": "duplicate",
            "destinations": [],
        }
        self.store.add_event(record)
        statuses = [
            {"destination": item["destination"], "status": "duplicate"}
            for item in original["destinations"]
        ]
        return Answer(
            202, {"event_id": original["event_id"], "duplicate": True, "destinations": statuses}
        )

    def _refuse(self, event_id: str) -> Answer:
        usage = self.store.billable_count()
        self.store.increment("refused")
        body = {
            "error": "quota_exceeded",
            "event_id": event_id,
            "message": self.plan.refusal_message(usage),
        }
        return Answer(429, body)

    def _join(self, conversion: dict[str, Any]) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Fill the conversion's gaps from the visitor record; explicit values win."""
        user = dict(conversion.get("user_data", {}))
        visitor_id = user.get("visitor_id")
        if visitor_id is None:
            return user, None
        visitor = self.store.visitor(visitor_id)
        recovered = []
        for key in JOINABLE_FIELDS:
            if visitor is not None and key not in user and visitor.get(key):
                user[key] = visitor[key]
                recovered.append(key)
        info = {"visitor_id": visitor_id, "found": visitor is not None, "recovered": recovered}
        if visitor is not None and "site_key" not in conversion and visitor.get("site_key"):
            info["site_key"] = visitor["site_key"]
        return user, info

    def _record(
        self, conversion: dict[str, Any], hashed: tuple[str, ...], billing: str, now: datetime
    ) -> dict[str, Any]:
        user, visitor = self._join(conversion)
        joined = dict(conversion, user_data=user)
        if visitor is not None and "site_key" in visitor:
            joined["site_key"] = visitor["site_key"]
        destinations = []
        for name in self.destinations:
            payload = destination_view(name, joined)
            destinations.append(
                {"destination": name, "status": "delivered", "payload": payload}
                | match_summary(name, payload)
            )
        return {
            "event_id": conversion["event_id"],
            "event": conversion["event"],
            "received_at": format_time(now),
            "duplicate": False,
            "billing": billing,
            "hashed_on_arrival": list(hashed),
            "conversion": conversion,
            "visitor": visitor,
            "user_data": user,
            "destinations": destinations,
        }
