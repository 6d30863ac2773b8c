"""RoasproofMiddleware: binds the visitor for each request, WSGI and ASGI, and nothing leaks."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import roasproof
from asgiref.sync import iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, SimpleTestCase, TestCase, override_settings
from roasproof.context import current_context

from djangotest.helpers import EventsMixin, ListDelivery
from roasproof_django.middleware import RoasproofMiddleware, context_from_request

OURS = "roasproof_django.middleware.RoasproofMiddleware"
SYNC_ONLY = "djangotest.middleware.SyncOnlyMiddleware"
TRIPWIRE = "djangotest.middleware.TripwireMiddleware"
LANDING = "/context/?gclid=Gclid-CaseKept&fbclid=FbClid1&utm_source=ads"


def _body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.content))


class TestModes(SimpleTestCase):
    def test_the_middleware_is_a_coroutine_function_when_the_chain_is_async(self) -> None:
        async def get_response(request: HttpRequest) -> HttpResponse:
            return HttpResponse()

        assert iscoroutinefunction(RoasproofMiddleware(get_response))

    def test_the_middleware_is_a_plain_callable_when_the_chain_is_sync(self) -> None:
        assert not iscoroutinefunction(RoasproofMiddleware(lambda request: HttpResponse()))

    @override_settings(DEBUG=True, MIDDLEWARE=[OURS])
    def test_django_adapts_nothing_around_it_under_asgi(self) -> None:
        with self.assertNoLogs("django.request", "DEBUG"):
            ASGIHandler().load_middleware(is_async=True)

    @override_settings(DEBUG=True, MIDDLEWARE=[SYNC_ONLY])
    def test_a_sync_only_middleware_is_adapted_which_is_what_the_previous_test_rules_out(
        self,
    ) -> None:
        with self.assertLogs("django.request", "DEBUG") as logs:
            ASGIHandler().load_middleware(is_async=True)
        assert any("adapted" in line for line in logs.output)


class TestWsgiCapture(EventsMixin, TestCase):
    def test_binds_visitor_cookie_click_ids_ip_and_user_agent(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-wsgi"
        response = self.client.get(
            LANDING, HTTP_USER_AGENT="Mozilla/5.0 (Test)", REMOTE_ADDR="203.0.113.7"
        )
        body = _body(response)
        assert body["visitor_id"] == "vid-wsgi"
        assert body["gclid"] == "Gclid-CaseKept"
        assert body["fbclid"] == "FbClid1"
        assert body["fbc"].startswith("fb.1.")
        assert body["fbc"].endswith(".FbClid1")
        assert body["client_ip_address"] == "203.0.113.7"
        assert body["client_user_agent"] == "Mozilla/5.0 (Test)"
        assert body["url"].startswith("http://testserver/context/?gclid=")

    def test_forwarded_for_is_ignored_without_trusted_proxies(self) -> None:
        response = self.client.get(
            "/context/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.1"
        )
        assert _body(response)["client_ip_address"] == "10.0.0.2"

    def test_trusted_proxies_from_settings_take_the_right_most_forwarded_hop(self) -> None:
        roasproof = {"API_KEY": "k", "OUTBOX": ":memory:", "TRUSTED_PROXIES": 1}
        with override_settings(ROASPROOF=roasproof):
            response = self.client.get(
                "/context/",
                REMOTE_ADDR="10.0.0.2",
                HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.1",
            )
        assert _body(response)["client_ip_address"] == "198.51.100.1"

    def test_trusted_proxies_fall_back_to_the_environment(self) -> None:
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setenv("ROASPROOF_TRUSTED_PROXIES", "1")
        try:
            response = self.client.get(
                "/context/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="198.51.100.9"
            )
        finally:
            monkeypatch.undo()
        assert _body(response)["client_ip_address"] == "198.51.100.9"

    def test_malformed_trusted_proxies_never_break_the_request(self) -> None:
        roasproof.init(strict=False, enabled=True, delivery=ListDelivery())  # production-like
        with (
            override_settings(ROASPROOF={"API_KEY": "k", "TRUSTED_PROXIES": "not-a-network"}),
            self.assertLogs("roasproof.django", "ERROR"),
        ):
            response = self.client.get("/context/")
        assert response.status_code == 200
        assert _body(response) == {"bound": False}

    def test_a_streaming_body_runs_after_the_context_is_reset(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-stream"
        response: Any = self.client.get("/stream/")
        assert json.loads(b"".join(response.streaming_content)) == {"bound": False}

    @override_settings(MIDDLEWARE=[OURS, OURS])
    def test_listed_twice_it_still_binds_the_request(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-twice"
        assert _body(self.client.get("/context/"))["visitor_id"] == "vid-twice"

    def test_context_is_reset_after_a_view_raises(self) -> None:
        client = Client(raise_request_exception=False)
        response = client.get("/boom/")
        assert response.status_code == 500
        assert current_context() is None

    def test_the_view_can_still_read_the_body(self) -> None:
        response = self.client.post(
            "/body/", data=b"x" * 5000, content_type="application/octet-stream"
        )
        assert _body(response)["length"] == 5000

    @override_settings(MIDDLEWARE=[TRIPWIRE, OURS])
    def test_never_touches_request_user_or_session(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-trip"
        assert _body(self.client.get("/context/"))["visitor_id"] == "vid-trip"

    @override_settings(MIDDLEWARE=[OURS, SYNC_ONLY])
    def test_a_sync_only_middleware_inside_sees_the_context(self) -> None:
        self.client.cookies["_sgnl_vid"] = "vid-sync"
        assert self.client.get("/context/")["X-Sync-Saw"] == "vid-sync"

    def test_threaded_wsgi_requests_never_see_each_others_visitor(self) -> None:
        def visit(n: int) -> tuple[int, dict[str, Any]]:
            client = Client()
            client.cookies["_sgnl_vid"] = f"vid-{n}"
            response = client.get(f"/slow/?n={n}&delay=0.02&gclid=g{n}")
            return n, _body(response)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(visit, range(24)))
        for n, body in results:
            assert body["visitor_id"] == f"vid-{n}"
            assert body["gclid"] == f"g{n}"
        by_id = {e.event_id: e.payload for e in self.events.events}
        for n in range(24):
            assert by_id[f"lead_{n}"]["user_data"]["visitor_id"] == f"vid-{n}"


class TestAsgiCapture(EventsMixin, TestCase):
    async def test_binds_the_visitor_under_asgi(self) -> None:
        self.async_client.cookies["_sgnl_vid"] = "vid-asgi"
        response = await self.async_client.get(LANDING, headers={"user-agent": "Async UA"})
        body = _body(response)
        assert body["visitor_id"] == "vid-asgi"
        assert body["gclid"] == "Gclid-CaseKept"
        assert body["client_user_agent"] == "Async UA"
        assert body["client_ip_address"] == "127.0.0.1"

    async def test_a_sync_view_under_asgi_sees_the_context(self) -> None:
        self.async_client.cookies["_sgnl_vid"] = "vid-sync-view"
        response = await self.async_client.get("/context/")
        assert _body(response)["visitor_id"] == "vid-sync-view"

    @override_settings(MIDDLEWARE=[SYNC_ONLY, OURS, SYNC_ONLY])
    async def test_sync_only_middleware_around_it_under_asgi(self) -> None:
        self.async_client.cookies["_sgnl_vid"] = "vid-mixed"
        for path in ("/acontext/", "/context/"):
            response = await self.async_client.get(path)
            assert response.status_code == 200
            assert _body(response)["visitor_id"] == "vid-mixed"

    @override_settings(MIDDLEWARE=[TRIPWIRE, OURS])
    async def test_never_touches_request_user_or_session_under_asgi(self) -> None:
        response = await self.async_client.get("/acontext/")
        assert _body(response)["bound"] is True

    async def test_a_streaming_body_runs_after_the_context_is_reset_under_asgi(self) -> None:
        response: Any = await self.async_client.get("/astream/")
        chunks = [chunk async for chunk in response.streaming_content]
        assert json.loads(b"".join(chunks)) == {"bound": False}

    async def test_context_is_reset_after_an_async_request_raises(self) -> None:
        client = AsyncClient(raise_request_exception=False)
        response = await client.get("/boom/")
        assert response.status_code == 500
        assert current_context() is None

    async def test_interleaved_async_requests_never_see_each_others_visitor(self) -> None:
        async def visit(n: int) -> dict[str, Any]:
            client = AsyncClient()
            client.cookies["_sgnl_vid"] = f"avid-{n}"
            delay = 0.03 if n % 2 else 0.0  # odd requests finish after the later even ones
            response = await client.get(f"/aslow/?n={n}&delay={delay}&gclid=ag{n}")
            return _body(response)

        bodies = await asyncio.gather(*(visit(n) for n in range(20)))
        for n, body in enumerate(bodies):
            assert body["visitor_id"] == f"avid-{n}"
            assert body["gclid"] == f"ag{n}"
        by_id = {e.event_id: e.payload for e in self.events.events}
        for n in range(20):
            assert by_id[f"lead_{n}"]["user_data"]["visitor_id"] == f"avid-{n}"
            assert by_id[f"lead_{n}"]["user_data"]["gclid"] == f"ag{n}"


class TestContextFromRequest(SimpleTestCase):
    def test_a_request_without_scope_is_read_from_meta(self) -> None:
        request = HttpRequest()
        request.META = {"REMOTE_ADDR": "192.0.2.4", "HTTP_COOKIE": "_sgnl_vid=vm"}
        context = context_from_request(request)
        assert context is not None
        assert context.visitor_id == "vm"
        assert context.client_ip_address == "192.0.2.4"

    def test_an_asgi_scope_is_read_from_the_scope(self) -> None:
        request = HttpRequest()
        request.scope = {  # type: ignore[attr-defined]
            "type": "http",
            "client": ("192.0.2.6", 5000),
            "headers": [(b"cookie", b"_sgnl_vid=vs")],
            "query_string": b"gclid=from-scope",
        }
        context = context_from_request(request)
        assert context is not None
        assert (context.visitor_id, context.gclid) == ("vs", "from-scope")
        assert context.client_ip_address == "192.0.2.6"

    def test_malformed_trusted_proxies_raise_in_strict_mode(self) -> None:
        request = HttpRequest()
        with (
            override_settings(ROASPROOF={"TRUSTED_PROXIES": "nonsense"}),
            pytest.raises(roasproof.ConfigurationError),
        ):
            context_from_request(request)

    def test_capture_is_lazy_until_someone_asks(self) -> None:
        calls: list[int] = []
        seen: list[object] = []

        def view(request: HttpRequest) -> HttpResponse:
            calls.append(threading.get_ident())
            return HttpResponse()

        def asking_view(request: HttpRequest) -> HttpResponse:
            seen.append(current_context())
            return HttpResponse()

        request = HttpRequest()
        request.META = {"REMOTE_ADDR": "192.0.2.5"}
        RoasproofMiddleware(view)(request)
        RoasproofMiddleware(asking_view)(request)
        assert calls
        assert getattr(seen[0], "client_ip_address", None) == "192.0.2.5"
