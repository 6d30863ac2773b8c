"""Accepting events: the 202 contract, defaults, deduplication, storage, no plaintext PII."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from roasproof._normalize import hash_email, hash_phone, sha256_hex

from .conftest import Running, StartEmulator

EMAIL = "Jane.Doe@Example.com"
PHONE = "+359 88 123 4567"


def test_an_accepted_event_is_202_with_one_entry_per_active_destination(
    emulator: Running,
) -> None:
    answer = emulator.post({"event": "purchase", "event_id": "purchase_10023"})
    assert answer.status_code == 202
    assert answer.json() == {
        "event_id": "purchase_10023",
        "duplicate": False,
        "destinations": [
            {"destination": "meta", "status": "queued"},
            {"destination": "google", "status": "queued"},
            {"destination": "tiktok", "status": "queued"},
        ],
    }


def test_destinations_are_configurable(start_emulator: StartEmulator) -> None:
    running = start_emulator(destinations=["google"])
    answer = running.post({"event": "lead"})
    assert [item["destination"] for item in answer.json()["destinations"]] == ["google"]
    assert [item["destination"] for item in running.events()[0]["destinations"]] == ["google"]


def test_no_active_destination_still_accepts(start_emulator: StartEmulator) -> None:
    running = start_emulator(destinations=[])
    answer = running.post({"event": "lead"})
    assert answer.status_code == 202
    assert answer.json()["destinations"] == []


def test_a_missing_event_id_is_generated_at_random(emulator: Running) -> None:
    first = emulator.post({"event": "page_view"}).json()["event_id"]
    second = emulator.post({"event": "page_view"}).json()["event_id"]
    assert first != second
    assert re.fullmatch(r"evt_[0-9a-f]{32}", first)


def test_occurred_at_defaults_to_arrival_time_and_is_stored_in_utc(emulator: Running) -> None:
    before = datetime.now(UTC)
    emulator.post({"event": "lead", "event_id": "a"})
    emulator.post({"event": "lead", "event_id": "b", "occurred_at": "2026-07-03T11:41:00+02:00"})
    first, second = (event["conversion"]["occurred_at"] for event in emulator.events())
    arrived = datetime.fromisoformat(first)
    assert before - timedelta(seconds=1) <= arrived <= datetime.now(UTC) + timedelta(seconds=1)
    assert second == "2026-07-03T09:41:00.000Z"


def test_the_value_is_kept_exactly_as_sent(emulator: Running) -> None:
    emulator.http.post(
        "/api/v1/events",
        content=b'{"event":"purchase","value":249.00,"currency":"eur"}',
        headers={"Authorization": "Bearer rp_test_emulator"},
    )
    text = emulator.http.get("/api/v1/events").text
    assert '"value":249.00' in text
    assert '"currency":"EUR"' in text
    (record,) = emulator.emulator.store.events()
    assert record["conversion"]["value"] == Decimal("249.00")


def test_site_key_and_custom_data_are_kept(emulator: Running) -> None:
    body = {"event": "lead", "site_key": "shop-eu", "custom_data": {"order_number": "10023"}}
    emulator.post(body)
    (record,) = emulator.events()
    assert record["conversion"]["site_key"] == "shop-eu"
    assert record["conversion"]["custom_data"] == {"order_number": "10023"}


def test_the_same_event_id_again_is_202_marked_duplicate_and_not_forwarded(
    emulator: Running,
) -> None:
    body = {"event": "purchase", "event_id": "purchase_1", "value": 10, "currency": "EUR"}
    emulator.post(body)
    answer = emulator.post(body | {"value": 20})
    assert answer.status_code == 202
    assert answer.json()["duplicate"] is True
    assert {item["status"] for item in answer.json()["destinations"]} == {"duplicate"}
    original, duplicate = emulator.events()
    assert original["duplicate"] is False
    assert original["conversion"]["value"] == 10
    assert duplicate["duplicate"] is True
    assert duplicate["duplicate_of"] == original["seq"]
    assert duplicate["destinations"] == []
    assert emulator.events(duplicates="false") == [original]
    assert emulator.usage()["tracked_conversions"] == 1
    assert emulator.usage()["duplicates"] == 1


def test_one_event_can_be_fetched_with_its_duplicate_count(emulator: Running) -> None:
    emulator.post({"event": "lead", "event_id": "lead_7"})
    emulator.post({"event": "lead", "event_id": "lead_7"})
    answer = emulator.http.get("/api/v1/events/lead_7")
    assert answer.status_code == 200
    assert answer.json()["duplicates"] == 1
    assert emulator.http.get("/api/v1/events/nope").status_code == 404


def test_events_can_be_filtered_and_limited(emulator: Running) -> None:
    for name in ("lead", "signup", "lead"):
        emulator.post({"event": name})
    assert len(emulator.events(event="lead")) == 2
    newest = emulator.events(limit="1")
    assert [event["event"] for event in newest] == ["lead"]
    assert newest[0]["seq"] == 3


def test_delete_forgets_everything(emulator: Running) -> None:
    emulator.post({"event": "purchase"})
    emulator.http.post("/api/v1/collect", json={"gclid": "abc"})
    assert emulator.http.delete("/api/v1/events").status_code == 204
    assert emulator.events() == []
    assert emulator.http.get("/api/v1/visitors").json()["visitors"] == []
    assert emulator.usage()["tracked_conversions"] == 0


def test_health_answers_ok(emulator: Running) -> None:
    assert emulator.http.get("/api/v1/health").json() == {"status": "ok"}


def test_raw_pii_is_hashed_on_arrival_with_the_sdk_normalizer(emulator: Running) -> None:
    user = {"email": EMAIL, "phone": PHONE, "external_id": "cust-42"}
    emulator.post({"event": "purchase", "user_data": user})
    (record,) = emulator.events()
    stored = record["conversion"]["user_data"]
    assert stored == {
        "email": hash_email(EMAIL),
        "phone": hash_phone(PHONE, None),
        "external_id": sha256_hex("cust-42"),
    }
    assert record["hashed_on_arrival"] == ["email", "phone", "external_id"]


def test_pre_hashed_values_pass_through(emulator: Running) -> None:
    digest = sha256_hex("jane.doe@example.com")
    emulator.post({"event": "lead", "user_data": {"email": digest.upper()}})
    (record,) = emulator.events()
    assert record["conversion"]["user_data"]["email"] == digest
    assert record["hashed_on_arrival"] == []


def _no_plaintext(text: str) -> None:
    lowered = text.lower()
    assert "jane" not in lowered
    assert "881234567" not in text
    assert "88 123" not in text
    assert "cust-42" not in text


def test_plaintext_pii_is_never_stored_in_memory(emulator: Running) -> None:
    user = {"email": EMAIL, "phone": PHONE, "external_id": "cust-42", "visitor_id": "v1"}
    emulator.http.post("/api/v1/collect", json={"visitor_id": "v1", "email": EMAIL})
    emulator.post({"event": "purchase", "user_data": user})
    store = emulator.emulator.store
    dumped = json.dumps([store.events(), store.visitors(), store.counters()], default=str)
    _no_plaintext(dumped)
    _no_plaintext(emulator.http.get("/").text)


def test_plaintext_pii_is_never_written_to_the_sqlite_file(
    start_emulator: StartEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "emulator.sqlite3"
    running = start_emulator(db_path=db)
    user = {"email": EMAIL, "phone": PHONE, "external_id": "cust-42", "visitor_id": "v1"}
    running.http.post("/api/v1/collect", json={"visitor_id": "v1", "email": EMAIL})
    running.post({"event": "purchase", "user_data": user})
    running.emulator.store.close()
    raw = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    _no_plaintext(raw.decode("latin-1"))
    assert str(hash_email(EMAIL)).encode() in raw


def test_a_sqlite_store_survives_a_restart(start_emulator: StartEmulator, tmp_path: Path) -> None:
    db = tmp_path / "nested" / "emulator.sqlite3"
    first = start_emulator(db_path=db, plan_cap=5)
    first.post({"event": "purchase", "event_id": "purchase_1"})
    first.http.post("/api/v1/collect", json={"visitor_id": "v9", "gclid": "g"})
    second = start_emulator(db_path=db, plan_cap=5)
    assert [event["event_id"] for event in second.events()] == ["purchase_1"]
    assert second.post({"event": "purchase", "event_id": "purchase_1"}).json()["duplicate"]
    assert second.usage()["tracked_conversions"] == 1
    assert second.http.get("/api/v1/visitors").json()["visitors"][0]["gclid"] == "g"


def test_unknown_routes_and_methods_are_refused(emulator: Running) -> None:
    assert emulator.http.get("/api/v1/nothing").status_code == 404
    assert emulator.http.put("/api/v1/events").status_code == 405
