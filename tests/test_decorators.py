"""@track_conversion and the in-view ``conversion`` API, framework-free."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import roasproof
from roasproof import RequestContext, RoasproofError, bind_context, make_event_id
from roasproof.decorators import ViewCall, bind_client, conversion, track_conversion
from roasproof.errors import InvalidEvent
from roasproof.testing import CapturedEvents, _CapturingDelivery

VISITOR = RequestContext(
    visitor_id="vid-1", client_ip_address="203.0.113.7", client_user_agent="UA/1", gclid="CjwKAbC"
)


class Response:
    """A response-like object, as Flask, Django and Starlette return."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.fixture
def lenient() -> Iterator[tuple[roasproof.Client, _CapturingDelivery]]:
    """A production-like (non-strict) client capturing into memory."""
    delivery = _CapturingDelivery()
    client = roasproof.Client(strict=False, delivery=delivery)
    yield client, delivery
    client.close()


def test_sync_view_tracks_after_returning_with_the_bound_context(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("purchase", value=Decimal("249.00"), currency="EUR")
    def checkout(order_id: int) -> str:
        conversion.update(event_id=make_event_id("purchase", order_id))
        assert not roasproof_events.events, "fires only after the view returned"
        return "ok"

    with bind_context(VISITOR):
        assert checkout(10023) == "ok"

    roasproof_events.assert_tracked(
        "purchase",
        event_id="purchase_10023",
        value=Decimal("249.00"),
        currency="EUR",
        user_data={"visitor_id": "vid-1", "client_ip_address": "203.0.113.7", "gclid": "CjwKAbC"},
    )


async def test_async_view_stays_a_coroutine_function_and_tracks(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("lead")
    async def subscribe() -> dict[str, str]:
        await asyncio.sleep(0)
        conversion.update(user_data={"email": "Ada@Example.com"})
        return {"status": "subscribed"}

    assert inspect.iscoroutinefunction(subscribe)
    assert await subscribe() == {"status": "subscribed"}
    roasproof_events.assert_tracked("lead", user_data={"email": "ada@example.com"})


def test_sync_view_wrapper_is_not_a_coroutine_function() -> None:
    @track_conversion("lead")
    def view() -> None:
        return None

    assert not inspect.iscoroutinefunction(view)


def test_wraps_keeps_name_docstring_and_attributes_like_csrf_exempt() -> None:
    def checkout() -> None:
        """Place the order."""

    checkout.csrf_exempt = True  # type: ignore[attr-defined]
    wrapped = track_conversion("purchase")(checkout)
    assert wrapped.__name__ == "checkout"
    assert wrapped.__doc__ == "Place the order."
    assert wrapped.csrf_exempt is True  # type: ignore[attr-defined]
    assert wrapped.__wrapped__ is checkout  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(checkout)


def test_view_exception_propagates_and_nothing_is_tracked(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("purchase")
    def checkout() -> None:
        conversion.update(value=10, currency="EUR")
        raise ValueError("card declined")

    with pytest.raises(ValueError, match="card declined"):
        checkout()
    roasproof_events.assert_not_tracked()
    assert not conversion.active


@pytest.mark.parametrize(
    ("result", "fires"),
    [
        (Response(200), True),
        (Response(201), True),
        (Response(302), True),
        (Response(400), False),
        (Response(404), False),
        (Response(500), False),
        (("created", 201), True),
        (("created", "201 CREATED", {"X": "1"}), True),
        (("not found", 404), False),
        (("odd", "\u00b2\u00b2\u00b2 OK"), True),  # superscript digits: not a status
        (("body", {"X-Header": "1"}), True),  # Flask (body, headers): no status given
        ({"status": "ok"}, True),
        (None, True),
    ],
)
def test_default_when_fires_on_2xx_3xx_or_no_status(
    roasproof_events: CapturedEvents, result: object, fires: bool
) -> None:
    @track_conversion("lead")
    def view() -> object:
        return result

    assert view() is result
    assert len(roasproof_events.events) == (1 if fires else 0)


@given(st.integers(min_value=100, max_value=599))
def test_view_call_ok_is_exactly_the_2xx_and_3xx_statuses(status: int) -> None:
    call = ViewCall((), {}, Response(status))
    assert call.status_code == status
    assert call.ok == (200 <= status < 400)


def test_when_replaces_the_default_condition(roasproof_events: CapturedEvents) -> None:
    @track_conversion("signup", when=lambda call: call.status_code == 201)
    def register(status: int) -> Response:
        return Response(status)

    register(200)
    register(201)
    assert len(roasproof_events.events) == 1


def test_callable_fields_get_the_view_call(roasproof_events: CapturedEvents) -> None:
    seen: list[ViewCall] = []

    def order_value(call: ViewCall) -> Decimal:
        seen.append(call)
        return Decimal(call.result["total"])

    @track_conversion(
        "purchase",
        event_id=lambda call: make_event_id("purchase", call.kwargs["order_id"]),
        value=order_value,
        currency="EUR",
        custom_data=lambda call: {"channel": call.args[0]},
    )
    def checkout(channel: str, *, order_id: int) -> dict[str, str]:
        return {"total": "19.90"}

    checkout("web", order_id=7)
    assert seen[0].args == ("web",)
    assert seen[0].kwargs == {"order_id": 7}
    roasproof_events.assert_tracked(
        "purchase", event_id="purchase_7", value="19.90", custom_data={"channel": "web"}
    )


def test_in_view_values_win_and_user_and_custom_data_merge(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion(
        "purchase",
        value=1,
        currency="USD",
        user_data={"external_id": "customer-1", "email": "old@example.com"},
        custom_data={"source": "decorator", "keep": "yes"},
    )
    def checkout() -> None:
        conversion.update(value=Decimal("42.50"), currency="EUR")
        conversion.update(user_data={"email": "new@example.com"}, custom_data={"source": "view"})

    checkout()
    captured = roasproof_events.assert_tracked(
        "purchase",
        value=Decimal("42.50"),
        currency="EUR",
        user_data={"email": "new@example.com", "external_id": "customer-1"},
        custom_data={"source": "view", "keep": "yes"},
    )
    assert captured.payload["custom_data"] == {"source": "view", "keep": "yes"}


def test_skip_cancels_the_conversion_for_this_call(roasproof_events: CapturedEvents) -> None:
    @track_conversion("purchase")
    def checkout(duplicate: bool) -> None:
        if duplicate:
            conversion.skip()

    checkout(True)
    roasproof_events.assert_not_tracked()
    checkout(False)
    roasproof_events.assert_tracked("purchase", times=1)


def test_update_outside_a_decorated_view_raises_in_strict_mode(
    roasproof_events: CapturedEvents,
) -> None:
    assert not conversion.active
    with pytest.raises(RoasproofError, match="outside a view decorated with @track_conversion"):
        conversion.update(value=1)


def test_update_outside_a_decorated_view_only_warns_in_production(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        bind_client(roasproof.Client(strict=False, enabled=False)),
        caplog.at_level(logging.WARNING),
    ):
        conversion.update(user_data={"email": "ada@example.com"})
        conversion.skip()
    assert "outside a view decorated with @track_conversion" in caplog.text
    assert "ada@example.com" not in caplog.text


def test_failing_field_never_breaks_the_view_and_logs_no_pii(
    lenient: tuple[roasproof.Client, _CapturingDelivery], caplog: pytest.LogCaptureFixture
) -> None:
    client, delivery = lenient
    errors: list[Exception] = []

    def email(call: ViewCall) -> str:
        raise KeyError("ada@example.com")

    @track_conversion("lead", user_data=lambda call: {"email": email(call)}, on_error=errors.append)
    def view() -> str:
        return "ok"

    with bind_client(client), caplog.at_level(logging.WARNING):
        assert view() == "ok"
    assert not delivery.events
    assert isinstance(errors[0], KeyError)
    assert "KeyError" in caplog.text
    assert "ada@example.com" not in caplog.text


def test_failure_goes_to_the_clients_on_error_by_default() -> None:
    errors: list[Exception] = []
    client = roasproof.Client(strict=False, delivery=_CapturingDelivery(), on_error=errors.append)

    @track_conversion("lead", when=lambda call: 1 / 0 > 0, client=client)
    def view() -> str:
        return "ok"

    assert view() == "ok"
    assert isinstance(errors[0], ZeroDivisionError)


def test_on_error_hook_that_raises_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken_hook(exc: Exception) -> None:
        raise RuntimeError("hook bug")

    client = roasproof.Client(strict=False, delivery=_CapturingDelivery())

    @track_conversion("lead", value=lambda call: 1 / 0, client=client, on_error=broken_hook)
    def view() -> str:
        return "ok"

    assert view() == "ok"
    assert "on_error raised RuntimeError" in caplog.text


def test_strict_client_raises_invalid_event_from_the_view(roasproof_events: CapturedEvents) -> None:
    @track_conversion("purchase", value=10, currency="EURO")
    def checkout() -> str:
        return "ok"

    with pytest.raises(InvalidEvent, match="currency"):
        checkout()


def test_strict_false_on_the_decorator_wins_over_a_strict_client(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("purchase", value=lambda call: 1 / 0, strict=False)
    def checkout() -> str:
        return "ok"

    assert checkout() == "ok"
    roasproof_events.assert_not_tracked()


def test_invalid_event_in_production_is_dropped_without_breaking_the_view(
    lenient: tuple[roasproof.Client, _CapturingDelivery],
) -> None:
    client, delivery = lenient

    @track_conversion("purchase", value=5, currency="EURO", client=client)
    def checkout() -> str:
        return "ok"

    assert checkout() == "ok"
    assert not delivery.events
    assert delivery.rejected[0].fields == ("currency",)


def test_explicit_client_wins_over_the_bound_and_the_default_client(
    roasproof_events: CapturedEvents, lenient: tuple[roasproof.Client, _CapturingDelivery]
) -> None:
    client, delivery = lenient
    other = _CapturingDelivery()

    @track_conversion("lead", client=client)
    def explicit() -> None:
        return None

    @track_conversion("lead", client=lambda: client)
    def factory() -> None:
        return None

    @track_conversion("signup")
    def bound() -> None:
        return None

    with bind_client(roasproof.Client(delivery=other)):
        explicit()
        factory()
        bound()
    bound()  # outside the binding: the default client
    assert [e.event for e in delivery.events] == ["lead", "lead"]
    assert [e.event for e in other.events] == ["signup"]
    roasproof_events.assert_tracked("signup", times=1)


def test_nested_decorated_views_keep_their_own_pending_conversion(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("add_to_cart")
    def inner() -> None:
        conversion.update(value=5, currency="EUR")

    @track_conversion("purchase", currency="EUR")
    def outer() -> None:
        conversion.update(value=100)
        inner()
        conversion.update(custom_data={"after": "inner"})

    outer()
    roasproof_events.assert_tracked("add_to_cart", value=5)
    roasproof_events.assert_tracked("purchase", value=100, custom_data={"after": "inner"})


async def test_interleaved_async_views_never_see_each_others_conversion(
    roasproof_events: CapturedEvents,
) -> None:
    @track_conversion("purchase", currency="EUR")
    async def checkout(order_id: int, visitor: str) -> None:
        with bind_context(RequestContext(visitor_id=visitor)):
            conversion.update(event_id=make_event_id("purchase", order_id))
            await asyncio.sleep(0.01 * (order_id % 3))
            conversion.update(value=order_id)
            await asyncio.sleep(0)

    await asyncio.gather(*(checkout(n, f"v{n}") for n in range(1, 21)))
    for n in range(1, 21):
        roasproof_events.assert_tracked("purchase", event_id=f"purchase_{n}", value=n)


def test_threaded_views_never_see_each_others_conversion(
    roasproof_events: CapturedEvents,
) -> None:
    barrier = threading.Barrier(8)

    @track_conversion("purchase", currency="EUR")
    def checkout(order_id: int) -> None:
        conversion.update(event_id=make_event_id("purchase", order_id))
        barrier.wait(timeout=10)
        conversion.update(value=order_id)

    threads = [threading.Thread(target=checkout, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in range(1, 9):
        roasproof_events.assert_tracked("purchase", event_id=f"purchase_{n}", value=n)


def test_user_data_may_be_a_user_data_model(roasproof_events: CapturedEvents) -> None:
    from roasproof import UserData

    @track_conversion("lead", user_data=UserData(external_id="c-9"))
    def view() -> None:
        conversion.update(user_data=UserData(email="ada@example.com"))

    view()
    roasproof_events.assert_tracked(
        "lead", user_data={"external_id": "c-9", "email": "ada@example.com"}
    )


def test_user_data_of_another_type_is_reported_by_validation_not_a_view_failure(
    lenient: tuple[roasproof.Client, _CapturingDelivery],
) -> None:
    client, delivery = lenient

    @track_conversion("lead", client=client)
    def view() -> str:
        conversion.update(user_data=["not", "a", "mapping"])
        return "ok"

    assert view() == "ok"
    assert not delivery.events
    assert delivery.rejected[0].fields[0].startswith("user_data")
