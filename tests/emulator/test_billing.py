"""Billing exactly as the guide states: billable events, one count per conversion, 429 rules."""

from __future__ import annotations

import pytest

from roasproof.emulator import Plan
from roasproof.errors import ConfigurationError

from .conftest import Running, StartEmulator


def _send(running: Running, event: str, count: int, prefix: str = "e") -> list[int]:
    return [
        running.post({"event": event, "event_id": f"{prefix}_{event}_{n}"}).status_code
        for n in range(count)
    ]


@pytest.mark.parametrize("event", ["purchase", "lead", "signup", "subscribe"])
def test_the_four_standard_conversions_are_billable(emulator: Running, event: str) -> None:
    emulator.post({"event": event})
    assert emulator.usage()["tracked_conversions"] == 1
    assert emulator.events()[0]["billing"] == "included"


@pytest.mark.parametrize("event", ["page_view", "view_content", "add_to_cart", "initiate_checkout"])
def test_funnel_events_are_unmetered(emulator: Running, event: str) -> None:
    emulator.post({"event": event})
    usage = emulator.usage()
    assert usage["tracked_conversions"] == 0
    assert usage["unmetered_events"] == 1
    assert emulator.events()[0]["billing"] == "unmetered"


def test_a_custom_event_counts_only_when_marked_billable(start_emulator: StartEmulator) -> None:
    running = start_emulator(custom_events=["quote_request:billable", "newsletter_view"])
    running.post({"event": "quote_request"})
    running.post({"event": "newsletter_view"})
    assert running.usage()["tracked_conversions"] == 1


def test_one_conversion_counts_once_for_three_destinations(emulator: Running) -> None:
    emulator.post({"event": "purchase"})
    assert len(emulator.events()[0]["destinations"]) == 3
    assert emulator.usage()["tracked_conversions"] == 1


def test_overage_is_accepted_and_counted_with_an_active_trial(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(plan_cap=2, subscription="trial")
    assert _send(running, "purchase", 4) == [202] * 4
    usage = running.usage()
    assert (usage["included"], usage["overage"], usage["refused"]) == (2, 2, 0)
    assert [event["billing"] for event in running.events()] == [
        "included",
        "included",
        "overage",
        "overage",
    ]


def test_without_subscription_or_trial_the_cap_is_a_hard_stop(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(plan_cap=2, subscription="none")
    assert _send(running, "purchase", 3) == [202, 202, 429]
    refused = running.post({"event": "lead", "event_id": "lead_x"})
    assert refused.json()["error"] == "quota_exceeded"
    assert "no active subscription" in refused.json()["message"]
    assert running.usage()["refused"] == 2
    assert len(running.events()) == 2


def test_funnel_events_and_duplicates_pass_at_the_cap(start_emulator: StartEmulator) -> None:
    running = start_emulator(plan_cap=1, subscription="none")
    assert running.post({"event": "purchase", "event_id": "p1"}).status_code == 202
    assert running.post({"event": "page_view"}).status_code == 202
    duplicate = running.post({"event": "purchase", "event_id": "p1"})
    assert duplicate.status_code == 202
    assert duplicate.json()["duplicate"] is True


def test_three_times_the_cap_is_refused_even_with_an_active_subscription(
    start_emulator: StartEmulator,
) -> None:
    running = start_emulator(plan_cap=2, subscription="active")
    assert _send(running, "signup", 7) == [202] * 6 + [429]
    usage = running.usage()
    assert (usage["tracked_conversions"], usage["overage"], usage["hard_limit"]) == (6, 4, 6)
    message = running.post({"event": "signup"}).json()["message"]
    assert "3x the plan cap" in message


@pytest.mark.parametrize(
    ("cap", "subscription"), [(0, "trial"), (True, "trial"), (1.5, "trial"), (10, "paused")]
)
def test_a_bad_plan_is_a_configuration_error(cap: object, subscription: str) -> None:
    with pytest.raises(ConfigurationError):
        Plan(cap=cap, subscription=subscription)  # type: ignore[arg-type]
