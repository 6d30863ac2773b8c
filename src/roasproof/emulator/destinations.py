"""What each ad platform would receive for one conversion, and its match keys.

The guide's rule: each platform receives only the identifiers it understands.
Meta gets fbc/fbp and the hashed identifiers (with IP and user agent), Google
gets its click ids (gclid, wbraid, gbraid) and the hashed email and phone,
TikTok gets ttclid and the hashed identifiers. The views below are shaped like
each platform's own conversion API, so users see what would leave the building;
the emulator never contacts any platform.

The *match keys* of a view are the identifiers it carries; a view with a click
id can be attributed to one ad click, the strongest kind of match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

__all__ = ["DESTINATIONS", "destination_view", "match_summary"]

#: The platforms the emulator can forward to, in the order they are listed.
DESTINATIONS = ("meta", "google", "tiktok")

_META_NAMES = {
    "page_view": "PageView",
    "view_content": "ViewContent",
    "add_to_cart": "AddToCart",
    "initiate_checkout": "InitiateCheckout",
    "lead": "Lead",
    "signup": "CompleteRegistration",
    "purchase": "Purchase",
    "subscribe": "Subscribe",
}
_TIKTOK_NAMES = {
    "page_view": "Pageview",
    "view_content": "ViewContent",
    "add_to_cart": "AddToCart",
    "initiate_checkout": "InitiateCheckout",
    "lead": "SubmitForm",
    "signup": "CompleteRegistration",
    "purchase": "CompletePayment",
    "subscribe": "Subscribe",
}
#: The keys of each view that identify the person or the click, in report order.
_MATCH_KEYS = {
    "meta": ("em", "ph", "external_id", "fbc", "fbp", "client_ip_address", "client_user_agent"),
    "google": ("gclid", "wbraid", "gbraid", "hashed_email", "hashed_phone_number"),
    "tiktok": ("ttclid", "email", "phone", "external_id"),
}
_CLICK_KEYS = {"meta": ("fbc",), "google": ("gclid", "wbraid", "gbraid"), "tiktok": ("ttclid",)}


def _epoch(conversion: Mapping[str, Any]) -> int:
    return int(datetime.fromisoformat(conversion["occurred_at"]).timestamp())


def _compact(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the empty entries, as every platform's API expects."""
    return {key: value for key, value in data.items() if value not in (None, [], {})}


def _meta(conversion: Mapping[str, Any]) -> dict[str, Any]:
    user = conversion["user_data"]
    fbc = user.get("fbc")
    if fbc is None and user.get("fbclid"):
        # What Meta's pixel would have stored: fb.<subdomain index>.<creation ms>.<fbclid>.
        fbc = f"fb.1.{_epoch(conversion) * 1000}.{user['fbclid']}"
    custom = dict(conversion.get("custom_data") or {})
    custom.update(
        _compact({"value": conversion.get("value"), "currency": conversion.get("currency")})
    )
    return _compact(
        {
            "event_name": _META_NAMES.get(conversion["event"], conversion["event"]),
            "event_time": _epoch(conversion),
            "event_id": conversion["event_id"],
            "action_source": conversion["action_source"],
            "event_source_url": conversion.get("url"),
            "user_data": _compact(
                {
                    "em": [user["email"]] if "email" in user else None,
                    "ph": [user["phone"]] if "phone" in user else None,
                    "external_id": [user["external_id"]] if "external_id" in user else None,
                    "fbc": fbc,
                    "fbp": user.get("fbp"),
                    "client_ip_address": user.get("client_ip_address"),
                    "client_user_agent": user.get("client_user_agent"),
                }
            ),
            "custom_data": custom,
        }
    )


def _google(conversion: Mapping[str, Any]) -> dict[str, Any]:
    user = conversion["user_data"]
    # Google Ads takes exactly one click id per conversion; gclid is the most precise.
    click = next(((k, user[k]) for k in ("gclid", "wbraid", "gbraid") if k in user), None)
    moment = datetime.fromisoformat(conversion["occurred_at"])
    identifiers = [
        {"hashed_email": user["email"]} if "email" in user else None,
        {"hashed_phone_number": user["phone"]} if "phone" in user else None,
    ]
    return _compact(
        {
            "conversion_action": f"conversionActions/{conversion['event']}",
            "conversion_date_time": moment.strftime("%Y-%m-%d %H:%M:%S+00:00"),
            "order_id": conversion["event_id"],
            "conversion_value": conversion.get("value"),
            "currency_code": conversion.get("currency"),
            **({click[0]: click[1]} if click else {}),
            "user_identifiers": [item for item in identifiers if item],
        }
    )


def _tiktok(conversion: Mapping[str, Any]) -> dict[str, Any]:
    user = conversion["user_data"]
    properties = dict(conversion.get("custom_data") or {})
    properties.update(
        _compact({"value": conversion.get("value"), "currency": conversion.get("currency")})
    )
    return _compact(
        {
            "event": _TIKTOK_NAMES.get(conversion["event"], conversion["event"]),
            "event_time": _epoch(conversion),
            "event_id": conversion["event_id"],
            "user": _compact(
                {
                    "ttclid": user.get("ttclid"),
                    "email": user.get("email"),
                    "phone": user.get("phone"),
                    "external_id": user.get("external_id"),
                }
            ),
            "properties": properties,
            "page": _compact({"url": conversion.get("url")}),
        }
    )


_VIEWS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "meta": _meta,
    "google": _google,
    "tiktok": _tiktok,
}


def destination_view(destination: str, conversion: Mapping[str, Any]) -> dict[str, Any]:
    """The payload ``destination`` would receive for a validated, joined conversion."""
    return _VIEWS[destination](conversion)


def match_summary(destination: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``{"match_keys": [...], "click_id": name | None}`` for one destination's payload."""
    identity = payload.get("user_data") or payload.get("user") or {}
    present = set(identity) | set(payload)
    if destination == "google":
        present |= {key for item in payload.get("user_identifiers", []) for key in item}
    keys = [key for key in _MATCH_KEYS[destination] if key in present]
    click = next((key for key in _CLICK_KEYS[destination] if key in keys), None)
    return {"match_keys": keys, "click_id": click}
