"""Per-destination views: each platform gets only the identifiers it understands."""

from __future__ import annotations

from typing import Any

import pytest

from roasproof._normalize import hash_email, hash_phone, sha256_hex

from .conftest import Running

FULL_USER = {
    "email": "jane@example.com",
    "phone": "+359881234567",
    "external_id": "cust-42",
    "client_ip_address": "203.0.113.7",
    "client_user_agent": "Mozilla/5.0",
    "fbc": "fb.1.1700000000000.IwAR2abc",
    "fbp": "fb.1.1700000000000.1234567890",
    "gclid": "G-1",
    "wbraid": "W-1",
    "ttclid": "T-1",
}


def _views(emulator: Running, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert emulator.post(body).status_code == 202
    record = emulator.events()[-1]
    return {item["destination"]: item for item in record["destinations"]}


def test_meta_gets_fbc_fbp_hashed_identifiers_ip_and_user_agent(emulator: Running) -> None:
    body = {
        "event": "purchase",
        "event_id": "purchase_1",
        "value": 249.0,
        "currency": "EUR",
        "occurred_at": "2026-07-03T09:41:00Z",
        "url": "https://mystore.com/checkout/thank-you",
        "custom_data": {"order_number": "10023"},
        "user_data": FULL_USER,
    }
    meta = _views(emulator, body)["meta"]
    assert meta["status"] == "delivered"
    assert meta["payload"] == {
        "event_name": "Purchase",
        "event_time": 1783071660,
        "event_id": "purchase_1",
        "action_source": "website",
        "event_source_url": "https://mystore.com/checkout/thank-you",
        "user_data": {
            "em": [hash_email("jane@example.com")],
            "ph": [hash_phone("+359881234567", None)],
            "external_id": [sha256_hex("cust-42")],
            "fbc": FULL_USER["fbc"],
            "fbp": FULL_USER["fbp"],
            "client_ip_address": "203.0.113.7",
            "client_user_agent": "Mozilla/5.0",
        },
        "custom_data": {"order_number": "10023", "value": 249.0, "currency": "EUR"},
    }
    assert meta["match_keys"] == [
        "em",
        "ph",
        "external_id",
        "fbc",
        "fbp",
        "client_ip_address",
        "client_user_agent",
    ]
    assert meta["click_id"] == "fbc"


def test_google_gets_one_click_id_and_hashed_email_and_phone_only(emulator: Running) -> None:
    body = {"event": "lead", "occurred_at": "2026-07-03T09:41:00Z", "user_data": FULL_USER}
    google = _views(emulator, body)["google"]
    payload = google["payload"]
    assert payload["gclid"] == "G-1"
    assert "wbraid" not in payload  # Google Ads takes exactly one click id
    assert payload["conversion_date_time"] == "2026-07-03 09:41:00+00:00"
    assert payload["user_identifiers"] == [
        {"hashed_email": hash_email("jane@example.com")},
        {"hashed_phone_number": hash_phone("+359881234567", None)},
    ]
    text = str(payload)
    for absent in ("203.0.113.7", "Mozilla", "fb.1.", "T-1", sha256_hex("cust-42")):
        assert absent not in text
    assert google["match_keys"] == ["gclid", "hashed_email", "hashed_phone_number"]
    assert google["click_id"] == "gclid"


@pytest.mark.parametrize(("given", "expected"), [("wbraid", "wbraid"), ("gbraid", "gbraid")])
def test_google_falls_back_to_the_ios_click_ids(
    emulator: Running, given: str, expected: str
) -> None:
    google = _views(emulator, {"event": "lead", "user_data": {given: "X-1"}})["google"]
    assert google["payload"][expected] == "X-1"
    assert google["click_id"] == expected


def test_tiktok_gets_ttclid_and_hashed_identifiers_only(emulator: Running) -> None:
    body = {"event": "purchase", "value": 5, "currency": "USD", "user_data": FULL_USER}
    tiktok = _views(emulator, body)["tiktok"]
    assert tiktok["payload"]["event"] == "CompletePayment"
    assert tiktok["payload"]["user"] == {
        "ttclid": "T-1",
        "email": hash_email("jane@example.com"),
        "phone": hash_phone("+359881234567", None),
        "external_id": sha256_hex("cust-42"),
    }
    assert tiktok["payload"]["properties"] == {"value": 5, "currency": "USD"}
    assert "203.0.113.7" not in str(tiktok["payload"])
    assert tiktok["match_keys"] == ["ttclid", "email", "phone", "external_id"]
    assert tiktok["click_id"] == "ttclid"


def test_meta_builds_fbc_from_fbclid_when_no_cookie_was_sent(emulator: Running) -> None:
    body = {"event": "lead", "occurred_at": "2026-07-03T09:41:00Z", "user_data": {"fbclid": "F1"}}
    meta = _views(emulator, body)["meta"]
    assert meta["payload"]["user_data"]["fbc"] == "fb.1.1783071660000.F1"


def test_an_event_without_identifiers_has_no_match_keys(emulator: Running) -> None:
    views = _views(emulator, {"event": "page_view"})
    for view in views.values():
        assert view["match_keys"] == []
        assert view["click_id"] is None
    assert views["meta"]["payload"]["event_name"] == "PageView"
    assert "custom_data" not in views["meta"]["payload"]


def test_a_custom_event_keeps_its_key_as_the_platform_event_name(
    start_emulator: Any,
) -> None:
    running = start_emulator(custom_events={"quote_request": False})
    running.post({"event": "quote_request"})
    views = {item["destination"]: item for item in running.events()[0]["destinations"]}
    assert views["meta"]["payload"]["event_name"] == "quote_request"
    assert views["tiktok"]["payload"]["event"] == "quote_request"
    assert views["google"]["payload"]["conversion_action"] == "conversionActions/quote_request"
