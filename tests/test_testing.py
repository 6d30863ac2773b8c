"""The pytest plugin: the ``roasproof_events`` fixture and its assertions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import pytest

import roasproof
from roasproof import InvalidEvent, RequestContext, _api, bind_context
from roasproof._payload import encode_payload
from roasproof.testing import CapturedEvents

pytest_plugins = ["pytester"]
INNER_ARGS = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")

EMAIL_HASH = "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72"  # ada@example.com


@pytest.fixture(autouse=True)
def _no_default_client() -> Iterator[None]:
    """Each test starts without a default client (and leaves none behind)."""
    previous = _api._default
    _api._default = None
    yield
    _api._default = previous


def test_captures_the_exact_encoded_payload_with_the_request_context(
    roasproof_events: CapturedEvents,
) -> None:
    with bind_context(RequestContext(visitor_id="vid-1", client_ip_address="203.0.113.7")):
        roasproof.track(
            "purchase",
            event_id="purchase_1",
            value=Decimal("249.00"),
            currency="EUR",
            user_data={"email": " Ada@Example.com "},
        )
    [captured] = roasproof_events.events
    assert (captured.event, captured.event_id) == ("purchase", "purchase_1")
    assert captured.body == encode_payload(captured.payload)
    assert b'"value":249.00' in captured.body
    payload = roasproof_events.payloads[0]
    assert payload["user_data"] == {
        "email": EMAIL_HASH,
        "visitor_id": "vid-1",
        "client_ip_address": "203.0.113.7",
    }
    assert "Ada" not in captured.body.decode()


def test_the_fixture_client_is_strict(roasproof_events: CapturedEvents) -> None:
    assert roasproof_events.client.settings.strict
    with pytest.raises(InvalidEvent, match="currency"):
        roasproof.track("purchase", value=1, currency="EURO")
    roasproof_events.assert_not_tracked()


def test_assert_tracked_matches_nested_subsets_and_returns_the_match(
    roasproof_events: CapturedEvents,
) -> None:
    roasproof.track("lead", event_id="lead_1", custom_data={"form": "newsletter", "page": "home"})
    roasproof.track("lead", event_id="lead_2", custom_data={"form": "contact"})
    found = roasproof_events.assert_tracked("lead", custom_data={"form": "contact"})
    assert found.event_id == "lead_2"
    assert roasproof_events.assert_tracked("lead").event_id == "lead_2"  # the last match
    roasproof_events.assert_tracked("lead", times=2)
    roasproof_events.assert_tracked("lead", event_id="lead_1", custom_data={"page": "home"})


@pytest.mark.parametrize("expected", [Decimal("19.90"), "19.90", 19.9, Decimal("19.9")])
def test_assert_tracked_compares_values_as_numbers(
    roasproof_events: CapturedEvents, expected: object
) -> None:
    roasproof.track("purchase", value=Decimal("19.90"), currency="EUR")
    roasproof_events.assert_tracked("purchase", value=expected)


def test_plaintext_pii_in_the_expectation_is_hashed_before_comparing(
    roasproof_events: CapturedEvents,
) -> None:
    roasproof.get_client()  # not used: the fixture already replaced the default client
    roasproof_events.client.track(
        "signup",
        user_data={"email": "ada@example.com", "phone": "+359 88 123 4567", "external_id": "c-1"},
    )
    roasproof_events.assert_tracked(
        "signup",
        user_data={"email": "ADA@example.com", "phone": "+359881234567", "external_id": "c-1"},
    )
    roasproof_events.assert_tracked("signup", user_data={"email": EMAIL_HASH})


def test_failure_message_lists_what_was_captured_without_plaintext_email(
    roasproof_events: CapturedEvents,
) -> None:
    roasproof.track("purchase", event_id="purchase_2", value=5, currency="EUR")
    with pytest.raises(AssertionError) as failure:
        roasproof_events.assert_tracked(
            "purchase", event_id="purchase_1", user_data={"email": "ada@example.com"}
        )
    message = str(failure.value)
    assert "no 'purchase' event matched" in message
    assert "purchase(purchase_2)" in message
    assert "event_id is 'purchase_2', expected 'purchase_1'" in message
    assert "user_data missing" in message
    assert "ada@example.com" not in message


def test_assert_tracked_times_reports_the_count(roasproof_events: CapturedEvents) -> None:
    roasproof.track("lead")
    with pytest.raises(AssertionError, match=r"expected 2 'lead' event\(s\) matching, found 1"):
        roasproof_events.assert_tracked("lead", times=2)


def test_assert_not_tracked(roasproof_events: CapturedEvents) -> None:
    roasproof_events.assert_not_tracked()
    roasproof.track("lead", event_id="lead_9")
    roasproof_events.assert_not_tracked("purchase")
    roasproof_events.assert_not_tracked("lead", event_id="lead_8")
    with pytest.raises(AssertionError, match="lead_9"):
        roasproof_events.assert_not_tracked("lead")
    with pytest.raises(AssertionError, match=r"lead\(lead_9\)"):
        roasproof_events.assert_not_tracked()


def test_clear_forgets_everything(roasproof_events: CapturedEvents) -> None:
    roasproof.track("lead", event_id="lead_1")
    roasproof.track("lead", event_id="lead_1")
    roasproof_events.clear()
    assert roasproof_events.events == []
    assert roasproof_events.client.stats()["duplicates"] == 0


def test_a_second_event_with_the_same_event_id_is_refused_like_the_outbox(
    roasproof_events: CapturedEvents,
) -> None:
    assert (
        roasproof.track("purchase", event_id="purchase_7", value=1, currency="EUR") == "purchase_7"
    )
    roasproof.track("purchase", event_id="purchase_7", value=1, currency="EUR")
    assert len(roasproof_events.events) == 1
    stats = roasproof_events.client.stats()
    assert stats["duplicates"] == 1
    assert stats["enqueued"] == 1


def test_find_returns_every_match(roasproof_events: CapturedEvents) -> None:
    roasproof.track("lead", custom_data={"a": 1})
    roasproof.track("lead", custom_data={"a": 2})
    assert len(roasproof_events.find("lead")) == 2
    assert len(roasproof_events.find("lead", custom_data={"a": 2})) == 1
    assert roasproof_events.find("purchase") == []


def test_flush_and_close_of_the_capturing_client_are_no_ops(
    roasproof_events: CapturedEvents,
) -> None:
    roasproof.track("lead")
    assert roasproof.flush(1.0)
    assert roasproof_events.client.stats()["pending"] == 0


def test_fixture_restores_the_previous_default_client(pytester: pytest.Pytester) -> None:
    previous = roasproof.Client(default_phone_region="BG", custom_events=["quote_requested"])
    _api._default = previous
    pytester.makepyfile(
        """
        import roasproof

        def test_inside(roasproof_events):
            assert roasproof.get_client() is roasproof_events.client
            settings = roasproof_events.client.settings
            assert settings.default_phone_region == "BG"
            assert settings.custom_events == frozenset({"quote_requested"})
            roasproof.track("quote_requested", user_data={"phone": "088 123 4567"})
            roasproof_events.assert_tracked(
                "quote_requested", user_data={"phone": "+359881234567"}
            )
        """
    )
    pytester.runpytest_inprocess(*INNER_ARGS).assert_outcomes(passed=1)
    assert _api._default is previous


def test_fixture_without_a_previous_default_leaves_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_inside(roasproof_events):
            import roasproof
            roasproof.track("lead")
            assert len(roasproof_events.events) == 1
        """
    )
    pytester.runpytest_inprocess(*INNER_ARGS).assert_outcomes(passed=1)
    assert _api._default is None


def test_the_plugin_is_registered_through_the_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    [plugin] = [ep for ep in entry_points(group="pytest11") if ep.name == "roasproof"]
    assert plugin.value == "roasproof.testing"


def test_loading_the_plugin_imports_nothing_beyond_roasproof_and_has_no_side_effects() -> None:
    code = """
import json, sys, logging
import pytest, roasproof
before = set(sys.modules)
handlers = list(logging.getLogger().handlers) + list(logging.getLogger("roasproof").handlers)
import roasproof.testing
new = sorted(set(sys.modules) - before)
from roasproof import _api
print(json.dumps({
    "new": new,
    "default_client": _api._default is not None,
    "handlers": len(logging.getLogger().handlers) + len(logging.getLogger("roasproof").handlers)
        - len(handlers),
}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(result.stdout)
    assert report == {"new": ["roasproof.testing"], "default_client": False, "handlers": 0}
