"""track_model: one conversion per committed order, with the visitor who placed it."""

from __future__ import annotations

import contextlib
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
import roasproof
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connections, transaction
from django.test import AsyncClient, Client, TestCase, TransactionTestCase
from roasproof.context import RequestContext, bind_context

from djangotest.helpers import EventsMixin, ListDelivery
from djangotest.models import Lead, Order
from roasproof_django import capture_visitor, event_id_for, track_model, tracked_models
from roasproof_django.models_tracking import TrackedModel

VISITOR = RequestContext(
    visitor_id="vid-checkout",
    client_ip_address="203.0.113.7",
    client_user_agent="Visitor Browser",
    gclid="G-landing",
)


class Rollback(Exception):
    pass


def close_thread_connection(alias: str) -> None:
    """Close this thread's connection, also the one Django keeps open to in-memory SQLite."""
    connection = connections[alias]
    if connection.vendor == "sqlite" and connection.connection is not None:
        connection.connection.close()  # the database lives on in the main thread's connection
        connection.connection = None
    connection.close()


class TestSavesSQLite(EventsMixin, TestCase):
    """The transaction rules under TestCase; subclassed to run them against each alias."""

    alias = "default"
    databases = {"default"}

    def order(self, **fields: Any) -> Order:
        fields.setdefault("total", Decimal("249.00"))
        fields.setdefault("email", "Ada@Example.com")
        return Order.objects.using(self.alias).create(**fields)

    def atomic(self) -> Any:
        return transaction.atomic(using=self.alias)

    def test_a_paid_order_is_tracked_once_the_transaction_commits(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            with bind_context(VISITOR):
                order = self.order(status="paid")
            assert self.events.events == []  # not before the commit
        captured = self.events.assert_tracked(
            "purchase",
            event_id=f"purchase_{order.pk}",
            value=Decimal("249.00"),
            currency="EUR",
            user_data={
                "email": "ada@example.com",
                "visitor_id": "vid-checkout",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Visitor Browser",
                "gclid": "G-landing",
            },
            custom_data={"order_number": str(order.pk)},
        )
        assert "Ada@Example.com" not in captured.body.decode()

    def test_a_pending_order_is_not_a_conversion(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            self.order(status="pending")
        self.events.assert_not_tracked()

    def test_saving_again_and_flipping_status_never_counts_twice(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            order = self.order(status="paid")
            order.save(using=self.alias)
            order.status = "refunded"
            order.save(using=self.alias)
            order.status = "paid"
            order.save(using=self.alias)
        self.events.assert_tracked("purchase", event_id=f"purchase_{order.pk}", times=1)
        assert len(self.events.events) == 1

    def test_an_outer_rollback_sends_nothing(self) -> None:
        with (
            self.captureOnCommitCallbacks(using=self.alias, execute=True),
            contextlib.suppress(Rollback),
            self.atomic(),
        ):
            self.order(status="paid")
            raise Rollback
        self.events.assert_not_tracked()

    def test_a_rolled_back_savepoint_sends_nothing_and_the_outer_block_still_commits(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True), self.atomic():
            order = self.order(status="pending")
            with contextlib.suppress(Rollback), self.atomic():
                order.status = "paid"
                order.save(using=self.alias)
                raise Rollback
            kept = self.order(status="paid")
        self.events.assert_tracked("purchase", event_id=f"purchase_{kept.pk}", times=1)
        self.events.assert_not_tracked("purchase", event_id=f"purchase_{order.pk}")

    def test_fixture_loading_is_not_a_conversion(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            call_command("loaddata", "paid_orders", database=self.alias, verbosity=0)
        assert Order.objects.using(self.alias).filter(pk=900, status="paid").exists()
        self.events.assert_not_tracked()

    def test_a_save_outside_any_request_is_tracked_without_visitor_data(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            order = self.order(status="paid", email="")
        payload = self.events.assert_tracked("purchase", event_id=f"purchase_{order.pk}").payload
        assert set(payload.get("user_data", {})) <= {"email"}

    def test_the_stored_visitor_is_used_when_the_order_is_paid_later(self) -> None:
        with bind_context(VISITOR):
            order = self.order(status="pending", visitor=capture_visitor())
        provider = RequestContext(client_ip_address="198.51.100.99", client_user_agent="Stripe/1.0")
        with (
            self.captureOnCommitCallbacks(using=self.alias, execute=True),
            bind_context(provider),  # e.g. the payment provider's webhook request
        ):
            fresh = Order.objects.using(self.alias).get(pk=order.pk)
            fresh.status = "paid"
            fresh.save(using=self.alias)
        self.events.assert_tracked(
            "purchase",
            user_data={
                "visitor_id": "vid-checkout",
                "client_ip_address": "203.0.113.7",
                "client_user_agent": "Visitor Browser",
                "gclid": "G-landing",
            },
        )

    def test_a_second_model_uses_its_own_event_id_rule(self) -> None:
        with self.captureOnCommitCallbacks(using=self.alias, execute=True):
            lead = Lead.objects.using(self.alias).create(email="lead@example.com")
            lead.save(using=self.alias)
        self.events.assert_tracked("lead", event_id=f"lead_{lead.pk}_web", times=1)
        assert event_id_for(lead, "lead") == f"lead_{lead.pk}_web"


@pytest.mark.postgres
class TestSavesPostgres(TestSavesSQLite):
    alias = "postgres"
    databases = {"default", "postgres"}


class TestCommitsSQLite(EventsMixin, TransactionTestCase):
    """Real commits (TransactionTestCase): autocommit, atomic blocks, threads."""

    alias = "default"
    databases = {"default"}

    def test_an_autocommit_save_tracks_at_once(self) -> None:
        order = Order.objects.using(self.alias).create(status="paid", total=Decimal("5.00"))
        self.events.assert_tracked("purchase", event_id=f"purchase_{order.pk}")

    def test_nothing_is_sent_until_the_outermost_block_commits(self) -> None:
        with transaction.atomic(using=self.alias):
            with transaction.atomic(using=self.alias):  # a savepoint that commits
                order = Order.objects.using(self.alias).create(status="paid")
            self.events.assert_not_tracked()
        self.events.assert_tracked("purchase", event_id=f"purchase_{order.pk}", times=1)

    def test_savepoint_and_outer_rollbacks_send_nothing(self) -> None:
        inner = Order.objects.using(self.alias).create  # a savepoint inside an outer block
        with transaction.atomic(using=self.alias):  # noqa: SIM117 - the nesting is the point
            with contextlib.suppress(Rollback), transaction.atomic(using=self.alias):
                inner(status="paid")
                raise Rollback
        with contextlib.suppress(Rollback), transaction.atomic(using=self.alias):
            Order.objects.using(self.alias).create(status="paid")
            raise Rollback
        self.events.assert_not_tracked()

    def test_a_save_in_another_thread_keeps_its_own_context(self) -> None:
        done: list[int] = []

        def worker() -> None:
            try:
                with bind_context(RequestContext(visitor_id="vid-thread")):
                    done.append(Order.objects.using(self.alias).create(status="paid").pk)
            finally:
                close_thread_connection(self.alias)

        with bind_context(RequestContext(visitor_id="vid-main")):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
        self.events.assert_tracked(
            "purchase", event_id=f"purchase_{done[0]}", user_data={"visitor_id": "vid-thread"}
        )


@pytest.mark.postgres
class TestCommitsPostgres(TestCommitsSQLite):
    alias = "postgres"
    databases = {"default", "postgres"}


class TestRequests(EventsMixin, TransactionTestCase):
    """Checkout and webhook through real request handling (WSGI and ASGI), committed for real."""

    databases = {"default"}

    def test_a_wsgi_checkout_tracks_the_visitor_who_placed_the_order(self) -> None:
        client = Client(HTTP_USER_AGENT="Checkout Browser", REMOTE_ADDR="203.0.113.20")
        client.cookies["_sgnl_vid"] = "vid-wsgi-checkout"
        response = client.post("/checkout/?gclid=G-wsgi", {"email": "ada@example.com"})
        pk = json.loads(response.content)["order"]
        self.events.assert_tracked(
            "purchase",
            event_id=f"purchase_{pk}",
            user_data={
                "visitor_id": "vid-wsgi-checkout",
                "client_ip_address": "203.0.113.20",
                "client_user_agent": "Checkout Browser",
                "gclid": "G-wsgi",
                "email": "ada@example.com",
            },
        )

    async def test_an_asgi_checkout_with_acreate_keeps_the_context(self) -> None:
        client = AsyncClient()
        client.cookies["_sgnl_vid"] = "vid-asgi-checkout"
        response = await client.post(
            "/acheckout/?fbclid=FB-asgi", headers={"user-agent": "Async Browser"}
        )
        pk = json.loads(response.content)["order"]
        payload = self.events.assert_tracked("purchase", event_id=f"purchase_{pk}").payload
        user_data = payload["user_data"]
        assert user_data["visitor_id"] == "vid-asgi-checkout"
        assert user_data["client_user_agent"] == "Async Browser"
        assert user_data["fbc"].endswith(".FB-asgi")

    def test_a_webhook_pays_the_order_with_the_stored_visitor_not_the_providers(self) -> None:
        visitor = Client(HTTP_USER_AGENT="Visitor Browser", REMOTE_ADDR="203.0.113.30")
        visitor.cookies["_sgnl_vid"] = "vid-webhook"
        response = visitor.post("/checkout/?gclid=G-hook", {"status": "pending"})
        pk = json.loads(response.content)["order"]
        self.events.assert_not_tracked()
        provider = Client(HTTP_USER_AGENT="Stripe/1.0", REMOTE_ADDR="198.51.100.50")
        provider.post(f"/webhook/{pk}/")
        self.events.assert_tracked(
            "purchase",
            event_id=f"purchase_{pk}",
            user_data={
                "visitor_id": "vid-webhook",
                "client_ip_address": "203.0.113.30",
                "client_user_agent": "Visitor Browser",
                "gclid": "G-hook",
            },
        )

    def test_atomic_requests_send_after_the_view_commits_and_never_after_it_fails(self) -> None:
        settings_dict = connections["default"].settings_dict
        settings_dict["ATOMIC_REQUESTS"] = True
        try:
            client = Client(raise_request_exception=False)
            ok = client.post("/checkout/", {"status": "paid"})
            failed = client.post("/checkout/", {"status": "paid", "fail": "1"})
        finally:
            settings_dict["ATOMIC_REQUESTS"] = False
        assert failed.status_code == 500
        pk = json.loads(ok.content)["order"]
        self.events.assert_tracked("purchase", event_id=f"purchase_{pk}")
        assert len(self.events.events) == 1
        assert Order.objects.count() == 1


class TestRegistration(EventsMixin, TestCase):
    def test_registering_again_replaces_the_rule_and_connects_once(self) -> None:
        before = tracked_models()
        try:
            track_model(Order, event="purchase", when=lambda order, created: False)
            with self.captureOnCommitCallbacks(execute=True):
                Order.objects.create(status="paid")
            self.events.assert_not_tracked()
        finally:
            for spec in before:
                track_model(
                    spec.label,
                    event=spec.event,
                    when=spec.when,
                    fields=spec.fields,
                    event_id=spec.event_id,
                    visitor_field=spec.visitor_field,
                )
        assert tracked_models() == before

    def test_errors_in_user_callables_raise_in_strict_mode(self) -> None:
        def broken(order: Order) -> dict[str, Any]:
            raise KeyError("total")

        spec = next(s for s in tracked_models() if s.label == "djangotest.Order")
        track_model(Order, event="purchase", when=spec.when, fields=broken, visitor_field="visitor")
        try:
            with pytest.raises(KeyError):
                Order.objects.create(status="paid")
        finally:
            track_model(
                Order, event="purchase", when=spec.when, fields=spec.fields, visitor_field="visitor"
            )

    def test_errors_in_user_callables_are_logged_without_breaking_the_save(self) -> None:
        roasproof.init(strict=False, enabled=True, delivery=ListDelivery())  # lenient, like prod
        spec = next(s for s in tracked_models() if s.label == "djangotest.Order")

        def broken(order: Order) -> dict[str, Any]:
            raise KeyError("total")

        track_model(Order, event="purchase", when=spec.when, fields=broken, visitor_field="visitor")
        try:
            with self.assertLogs("roasproof.django", "ERROR") as logs:
                order = Order.objects.create(status="paid", email="ada@example.com")
        finally:
            track_model(
                Order, event="purchase", when=spec.when, fields=spec.fields, visitor_field="visitor"
            )
        assert order.pk is not None
        assert "KeyError" in logs.output[0]
        assert "ada@example.com" not in "".join(logs.output)

    def test_an_untracked_model_gets_the_default_event_id(self) -> None:
        assert event_id_for(Group(pk=5), "signup") == "signup_5"

    def test_a_disabled_client_skips_the_rules_entirely(self) -> None:
        roasproof.init(enabled=False, delivery=ListDelivery())
        calls: list[object] = []
        spec = next(s for s in tracked_models() if s.label == "djangotest.Order")

        def watching(order: Order, created: bool) -> bool:
            calls.append(order)
            return True

        track_model(
            Order, event="purchase", when=watching, fields=spec.fields, visitor_field="visitor"
        )
        try:
            with self.captureOnCommitCallbacks(execute=True):
                Order.objects.create(status="paid")
        finally:
            track_model(
                Order, event="purchase", when=spec.when, fields=spec.fields, visitor_field="visitor"
            )
        assert calls == []

    def test_an_invalid_event_raises_at_commit_in_strict_mode(self) -> None:
        spec = next(s for s in tracked_models() if s.label == "djangotest.Order")
        track_model(
            Order, event="purchase", when=spec.when, fields=lambda order: {"currency": "EURO"}
        )
        try:
            with pytest.raises(roasproof.InvalidEvent), self.captureOnCommitCallbacks(execute=True):
                Order.objects.create(status="paid")
        finally:
            track_model(
                Order, event="purchase", when=spec.when, fields=spec.fields, visitor_field="visitor"
            )

    def test_a_tracking_failure_after_commit_is_logged_in_production(self) -> None:
        roasproof.init(strict=False, enabled=True, delivery=ListDelivery())
        monkeypatch = pytest.MonkeyPatch()

        def broken_track(event: str, **fields: Any) -> str:
            raise RuntimeError("ada@example.com")  # a message that must never be logged

        monkeypatch.setattr(roasproof, "track", broken_track)
        try:
            with (
                self.assertLogs("roasproof.django", "ERROR") as logs,
                self.captureOnCommitCallbacks(execute=True),
            ):
                Order.objects.create(status="paid", email="ada@example.com")
        finally:
            monkeypatch.undo()
        assert "RuntimeError" in logs.output[0]
        assert "ada@example.com" not in "".join(logs.output)

    def test_an_unknown_model_label_is_kept_for_the_checks(self) -> None:
        spec = TrackedModel("shop.Missing", "purchase")
        assert spec.event_id_of(Order(pk=3)) == "purchase_3"
