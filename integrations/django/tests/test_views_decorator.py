"""@track_conversion on Django views: function, async, class-based and DRF, WSGI and ASGI."""

from __future__ import annotations

import json

from asgiref.sync import iscoroutinefunction
from django.test import AsyncClient, Client, TestCase

from djangotest import views
from djangotest.helpers import EventsMixin


class TestDecoratedViews(EventsMixin, TestCase):
    def test_a_function_view_fires_with_the_request_context(self) -> None:
        client = Client(enforce_csrf_checks=True)
        client.cookies["_sgnl_vid"] = "vid-deco"
        response = client.post("/decorated/?gclid=G-deco")
        assert response.status_code == 200  # csrf_exempt survived the decorator
        self.events.assert_tracked(
            "purchase",
            event_id="purchase_7",
            value="7.00",
            currency="EUR",
            user_data={"visitor_id": "vid-deco", "gclid": "G-deco"},
        )

    def test_an_async_view_stays_async(self) -> None:
        assert iscoroutinefunction(views.decorated_async_checkout)

    async def test_an_async_view_fires_under_asgi(self) -> None:
        client = AsyncClient()
        client.cookies["_sgnl_vid"] = "vid-adeco"
        response = await client.get("/adecorated/")
        assert response.status_code == 200
        self.events.assert_tracked(
            "purchase", event_id="purchase_8", user_data={"visitor_id": "vid-adeco"}
        )

    async def test_a_sync_view_fires_under_asgi(self) -> None:
        client = AsyncClient()
        client.cookies["_sgnl_vid"] = "vid-sync-deco"
        await client.post("/decorated/")
        self.events.assert_tracked(
            "purchase", event_id="purchase_7", user_data={"visitor_id": "vid-sync-deco"}
        )

    def test_a_class_based_view_through_method_decorator(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-cbv"
        assert self.client.post("/signup/").status_code == 200
        self.events.assert_tracked(
            "signup", event_id="signup_cbv", user_data={"visitor_id": "vid-cbv"}
        )

    def test_a_rest_framework_view(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-drf"
        response = self.client.post(
            "/api/lead/", {"email": "Lead@Example.com"}, content_type="application/json"
        )
        assert response.status_code == 201
        self.events.assert_tracked(
            "lead",
            event_id="lead_drf",
            user_data={"visitor_id": "vid-drf", "email": "lead@example.com"},
        )

    def test_a_decorator_and_track_model_on_one_checkout_count_once(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-both"
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post("/decorated-order/")
        pk = json.loads(response.content)["order"]
        self.events.assert_tracked(
            "purchase", event_id=f"purchase_{pk}", times=1, user_data={"visitor_id": "vid-both"}
        )
        assert len(self.events.events) == 1
        assert self.events.client.stats()["duplicates"] == 1
