"""The "Conversion events" HTML page."""

from __future__ import annotations

from .conftest import Running, StartEmulator


def test_the_page_lists_conversions_with_destinations_and_match_keys(emulator: Running) -> None:
    emulator.http.post("/api/v1/collect", json={"visitor_id": "v1", "gclid": "G-1"})
    body = {
        "event": "purchase",
        "event_id": "purchase_10023",
        "value": 249.0,
        "currency": "EUR",
        "user_data": {"visitor_id": "v1", "email": "jane@example.com"},
    }
    emulator.post(body)
    emulator.post(body)
    emulator.post({"event": "lead", "user_data": {"visitor_id": "ghost"}})
    user = {
        "visitor_id": "v1",
        "gclid": "G-1",
        "client_ip_address": "203.0.113.7",
        "client_user_agent": "python-httpx",
    }
    emulator.post({"event": "page_view", "user_data": user})
    page = emulator.http.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<h1>Conversion events</h1>" in html
    assert "purchase_10023" in html
    assert "249.0 EUR" in html
    assert "hashed_email" in html
    assert "click id <code>gclid</code>" in html
    assert "duplicate of #1" in html
    assert "visitor not seen by the tracking script" in html
    assert "nothing missing" in html  # the page_view carried everything itself
    assert "2 of 1000 tracked conversions" in html
    assert html.index("page_view") < html.index("purchase_10023")  # newest first


def test_the_page_escapes_what_senders_control(start_emulator: StartEmulator) -> None:
    running = start_emulator(destinations=[])
    running.post({"event": "lead", "event_id": "<script>alert(1)</script>"})
    html = running.http.get("/").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "no active destination" in html


def test_an_empty_page_says_how_to_send_a_first_event(emulator: Running) -> None:
    html = emulator.http.get("/").text
    assert "No conversion events yet" in html
    assert "roasproof demo" in html
