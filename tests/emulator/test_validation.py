"""The emulator validates what it receives, as a server must: 400, 401 and 422 naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from roasproof._normalize import EMPTY_SHA256

from .conftest import Running, StartEmulator

VALID: dict[str, Any] = {"event": "purchase", "value": 249.0, "currency": "EUR"}


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_unknown_api_key_is_401(emulator: Running, key: str | None) -> None:
    answer = emulator.post(VALID, key=key)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert emulator.events() == []


def test_a_scheme_other_than_bearer_is_401(emulator: Running) -> None:
    answer = emulator.http.post(
        "/api/v1/events", json=VALID, headers={"Authorization": "Basic rp_test_emulator"}
    )
    assert answer.status_code == 401


def test_any_configured_key_is_accepted(start_emulator: StartEmulator) -> None:
    running = start_emulator(api_keys=["key-one", "key-two"])
    assert running.post(VALID, key="key-two").status_code == 202
    assert running.post(VALID, key="rp_test_emulator").status_code == 401


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[1, 2]", "invalid_body"),
        (b'"purchase"', "invalid_body"),
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b'{"event": "purchase", "value": NaN}', "invalid_json"),
        (b"", "invalid_json"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(
    emulator: Running, body: bytes, error: str
) -> None:
    answer = emulator.http.post(
        "/api/v1/events",
        content=body,
        headers={"Authorization": "Bearer rp_test_emulator", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_an_oversized_body_is_413(emulator: Running) -> None:
    body = {"event": "purchase", "custom_data": {"blob": "x" * 1_100_000}}
    assert emulator.post(body).status_code == 413


def test_an_oversized_chunked_body_is_413(emulator: Running) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"event": "purchase", "custom_data": {"blob": "'
        for _ in range(11):
            yield b"x" * 100_000
        yield b'"}}'

    answer = emulator.http.post(
        "/api/v1/events", content=chunks(), headers={"Authorization": "Bearer rp_test_emulator"}
    )
    assert answer.status_code == 413


VIOLATIONS: list[tuple[dict[str, Any], str]] = [
    ({}, "event"),
    ({"event": ""}, "event"),
    ({"event": 7}, "event"),
    ({"event": "purchased"}, "event"),
    ({"event": "quote_request"}, "event"),
    ({"event": "purchase", "colour": "red"}, "colour"),
    ({"event": "purchase", "event_id": 10023}, "event_id"),
    ({"event": "purchase", "event_id": "x" * 256}, "event_id"),
    ({"event": "purchase", "value": "249.00", "currency": "EUR"}, "value"),
    ({"event": "purchase", "value": True, "currency": "EUR"}, "value"),
    ({"event": "purchase", "value": -1, "currency": "EUR"}, "value"),
    ({"event": "purchase", "value": 1e13, "currency": "EUR"}, "value"),
    ({"event": "purchase", "value": 249}, "currency"),
    ({"event": "purchase", "value": 249, "currency": "EU"}, "currency"),
    ({"event": "purchase", "value": 249, "currency": "EUX"}, "currency"),
    ({"event": "purchase", "currency": 978}, "currency"),
    ({"event": "purchase", "occurred_at": "yesterday"}, "occurred_at"),
    ({"event": "purchase", "occurred_at": 1780000000}, "occurred_at"),
    ({"event": "purchase", "occurred_at": "2026-07-03T09:41:00"}, "occurred_at"),
    ({"event": "purchase", "occurred_at": "2999-07-03T09:41:00Z"}, "occurred_at"),
    ({"event": "purchase", "url": "/checkout/thank-you"}, "url"),
    ({"event": "purchase", "url": "ftp://mystore.com/x"}, "url"),
    ({"event": "purchase", "action_source": "carrier_pigeon"}, "action_source"),
    ({"event": "purchase", "site_key": ["a"]}, "site_key"),
    ({"event": "purchase", "custom_data": "order 10023"}, "custom_data"),
    ({"event": "purchase", "user_data": "jane@example.com"}, "user_data"),
    ({"event": "purchase", "user_data": {"mail": "a@b.co"}}, "user_data.mail"),
    ({"event": "purchase", "user_data": {"email": 42}}, "user_data.email"),
    ({"event": "purchase", "user_data": {"email": "jane.example.com"}}, "user_data.email"),
    ({"event": "purchase", "user_data": {"email": "0" * 32}}, "user_data.email"),
    ({"event": "purchase", "user_data": {"email": EMPTY_SHA256}}, "user_data.email"),
    ({"event": "purchase", "user_data": {"phone": "0881234567"}}, "user_data.phone"),
    ({"event": "purchase", "user_data": {"phone": "+359 1"}}, "user_data.phone"),
    ({"event": "purchase", "user_data": {"external_id": EMPTY_SHA256}}, "user_data.external_id"),
    (
        {"event": "purchase", "user_data": {"client_ip_address": "300.1.1.1"}},
        "user_data.client_ip_address",
    ),
    ({"event": "purchase", "user_data": {"fbc": "IwAR2abc"}}, "user_data.fbc"),
    ({"event": "purchase", "user_data": {"fbp": "fb.1.123.456"}}, "user_data.fbp"),
    ({"event": "purchase", "user_data": {"gclid": "has space"}}, "user_data.gclid"),
    ({"event": "purchase", "user_data": {"visitor_id": "no/slashes"}}, "user_data.visitor_id"),
    (
        {"event": "purchase", "user_data": {"client_user_agent": "x" * 3000}},
        "user_data.client_user_agent",
    ),
]


@pytest.mark.parametrize(("body", "field"), VIOLATIONS)
def test_a_rule_violation_is_422_naming_the_field(
    emulator: Running, body: dict[str, Any], field: str
) -> None:
    answer = emulator.post(body)
    assert answer.status_code == 422
    data = answer.json()
    assert data["error"] == "validation_failed"
    assert data["field"] == field
    assert data["message"]
    assert emulator.events() == []


def test_a_422_message_never_echoes_the_submitted_pii(emulator: Running) -> None:
    answer = emulator.post({"event": "lead", "user_data": {"email": "jane.doe-at-example.com"}})
    assert answer.status_code == 422
    assert "jane" not in answer.text
    rejections = emulator.http.get("/api/v1/rejections").json()["rejections"]
    assert rejections[-1]["field"] == "user_data.email"
    assert "jane" not in str(rejections)


def test_rejections_are_counted_and_listed_without_values(emulator: Running) -> None:
    emulator.post({"event": "purchase", "value": 1, "currency": "EUX"})
    emulator.post(["not", "an", "object"])
    assert emulator.usage()["rejected"] == 1
    rejections = emulator.http.get("/api/v1/rejections").json()["rejections"]
    assert [(item["event"], item["field"]) for item in rejections] == [("purchase", "currency")]


def test_a_custom_event_is_accepted_once_defined(start_emulator: StartEmulator) -> None:
    running = start_emulator(custom_events=["quote_request"])
    assert running.post({"event": "quote_request"}).status_code == 202


@pytest.mark.parametrize(
    "body",
    [
        {"event": "purchase", "value": 0, "currency": "eur"},
        {"event": "purchase", "occurred_at": "2026-07-03T09:41:00+02:00"},
        {"event": "purchase", "user_data": {"email": None, "phone": "  "}},
        {"event": "purchase", "action_source": "physical_store", "site_key": "shop-1"},
        {"event": "purchase", "user_data": {"client_ip_address": "2001:db8::7"}},
    ],
)
def test_valid_variants_are_accepted(emulator: Running, body: dict[str, Any]) -> None:
    assert emulator.post(body).status_code == 202
