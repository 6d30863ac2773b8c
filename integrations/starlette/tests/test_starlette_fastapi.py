"""FastAPI: the VisitorContext dependency, the decorator on endpoints, the lifespan helper."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel

import roasproof
import roasproof_starlette
from roasproof import RequestContext, conversion, make_event_id, track_conversion
from roasproof.testing import CapturedEvents, _CapturingDelivery
from roasproof_starlette import RoasproofMiddleware, VisitorContext, lifespan, visitor_context


class Cart(BaseModel):
    order_id: int
    total: str
    email: str


def sync_dependency(visitor: VisitorContext) -> str:
    """A ``def`` dependency: FastAPI runs it in the threadpool."""
    return (visitor.visitor_id or "none") + "@" + threading.current_thread().name


def make_app(**kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)

    @app.get("/visitor")
    async def show(visitor: VisitorContext) -> dict[str, str]:
        return visitor.to_dict()

    @app.get("/visitor-sync")
    def show_sync(visitor: Annotated[RequestContext, Depends(visitor_context)]) -> dict[str, str]:
        return visitor.to_dict() | {"thread": threading.current_thread().name}

    @app.get("/sync-dependency")
    async def via_sync_dependency(who: Annotated[str, Depends(sync_dependency)]) -> dict[str, str]:
        return {"who": who}

    @app.post("/checkout", status_code=201)
    @track_conversion("purchase", currency="EUR")
    async def checkout(cart: Cart) -> dict[str, str]:
        conversion.update(
            event_id=make_event_id("purchase", cart.order_id),
            value=cart.total,
            user_data={"email": cart.email},
        )
        return {"event_id": make_event_id("purchase", cart.order_id)}

    @app.post("/subscribe")
    @track_conversion("lead", custom_data=lambda call: {"list": call.kwargs["newsletter"]})
    def subscribe(newsletter: str) -> dict[str, str]:
        return {"thread": threading.current_thread().name}

    return app


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.request(method, path, **kwargs)


@pytest.fixture
def app() -> FastAPI:
    app = make_app()
    app.add_middleware(RoasproofMiddleware)
    return app


COOKIE = {"Cookie": "_sgnl_vid=vid-fa"}


@pytest.mark.parametrize("path", ["/visitor", "/visitor-sync"])
async def test_dependency_gives_the_visitor_context(app: FastAPI, path: str) -> None:
    data = (await call(app, "GET", f"{path}?ttclid=TtC-1", headers=COOKIE)).json()
    assert (data["visitor_id"], data["ttclid"], data["client_ip_address"]) == (
        "vid-fa",
        "TtC-1",
        "127.0.0.1",
    )


async def test_sync_dependency_in_the_threadpool_sees_the_visitor(app: FastAPI) -> None:
    who = (await call(app, "GET", "/sync-dependency", headers=COOKIE)).json()["who"]
    assert who.startswith("vid-fa@")
    assert who != "vid-fa@" + threading.current_thread().name


async def test_decorated_async_endpoint_keeps_its_signature_and_fires(
    app: FastAPI, roasproof_events: CapturedEvents
) -> None:
    cart = {"order_id": 77, "total": "120.00", "email": "Ada@Example.com"}
    response = await call(app, "POST", "/checkout", json=cart, headers=COOKIE)
    assert response.status_code == 201
    assert response.json() == {"event_id": "purchase_77"}
    roasproof_events.assert_tracked(
        "purchase",
        event_id="purchase_77",
        value="120.00",
        user_data={"visitor_id": "vid-fa", "email": "ada@example.com"},
    )
    assert (await call(app, "POST", "/checkout", json={"order_id": 1})).status_code == 422
    roasproof_events.assert_tracked("purchase", times=1)  # validation failed: the view never ran


async def test_decorated_sync_endpoint_runs_in_the_threadpool_and_fires(
    app: FastAPI, roasproof_events: CapturedEvents
) -> None:
    [route] = [r for r in app.routes if getattr(r, "path", "") == "/subscribe"]
    assert not inspect.iscoroutinefunction(route.endpoint)  # type: ignore[attr-defined]
    response = await call(app, "POST", "/subscribe?newsletter=weekly", headers=COOKIE)
    assert response.json()["thread"] != threading.current_thread().name
    roasproof_events.assert_tracked(
        "lead", custom_data={"list": "weekly"}, user_data={"visitor_id": "vid-fa"}
    )


async def test_http_middleware_decorator_before_ours_keeps_the_context(
    roasproof_events: CapturedEvents,
) -> None:
    app = make_app()
    app.add_middleware(RoasproofMiddleware)

    @app.middleware("http")  # a BaseHTTPMiddleware, added last: outside ours
    async def timing(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers["X-Timing"] = "1"
        return response

    response = await call(app, "GET", "/visitor-sync", headers=COOKIE)
    assert response.headers["X-Timing"] == "1"
    assert response.json()["visitor_id"] == "vid-fa"
    cart = {"order_id": 5, "total": "1.00", "email": "a@example.com"}
    await call(app, "POST", "/checkout", json=cart, headers=COOKIE)
    roasproof_events.assert_tracked("purchase", user_data={"visitor_id": "vid-fa"})


async def test_dependency_without_the_middleware_captures_itself_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(roasproof_starlette, "_warned_missing", False)
    app = make_app()
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        first = (await call(app, "GET", "/visitor", headers=COOKIE)).json()
        await call(app, "GET", "/visitor", headers=COOKIE)
    assert first["visitor_id"] == "vid-fa"
    assert caplog.text.count("RoasproofMiddleware is not installed") == 1


class ClosingDelivery(_CapturingDelivery):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def close(self, timeout: float | None = None) -> None:
        self.log.append(f"client closed (timeout={timeout})")


async def run_lifespan(app: FastAPI, between: Callable[[], Awaitable[None]]) -> None:
    """Start the app's lifespan, run ``between``, shut down: what a server does."""
    async with app.router.lifespan_context(app) as state:
        app.state.lifespan_state = state
        await between()


async def test_lifespan_closes_the_default_client_on_shutdown() -> None:
    log: list[str] = []
    closing = roasproof.init(delivery=ClosingDelivery(log))
    app = make_app(lifespan=lifespan(timeout=3))

    async def serve_requests() -> None:
        assert log == []

    await run_lifespan(app, serve_requests)
    assert log == ["client closed (timeout=3)"]
    assert roasproof.get_client() is not closing  # a later call builds a fresh default client


async def test_lifespan_closes_an_explicit_client_after_the_inner_lifespan(
    roasproof_events: CapturedEvents,
) -> None:
    log: list[str] = []
    client = roasproof.Client(delivery=ClosingDelivery(log))

    @asynccontextmanager
    async def inner(app: FastAPI) -> AsyncIterator[dict[str, str]]:
        log.append("inner startup")
        yield {"db": "connected"}
        client.track("lead", event_id="lead_at_shutdown")
        log.append("inner shutdown")

    app = make_app(lifespan=lifespan(inner, client=client))

    async def between() -> None:
        await asyncio.sleep(0)

    await run_lifespan(app, between)
    assert app.state.lifespan_state == {"db": "connected"}
    assert log == ["inner startup", "inner shutdown", "client closed (timeout=10.0)"]
    assert client.stats()["enqueued"] == 1


async def test_lifespan_closes_the_client_even_when_the_inner_shutdown_fails() -> None:
    log: list[str] = []
    client = roasproof.Client(delivery=ClosingDelivery(log))

    @asynccontextmanager
    async def inner(app: FastAPI) -> AsyncIterator[None]:
        yield
        raise RuntimeError("database already gone")

    app = make_app(lifespan=lifespan(inner, client=client))

    async def between() -> None:
        return None

    with pytest.raises(RuntimeError, match="already gone"):
        await run_lifespan(app, between)
    assert log == ["client closed (timeout=10.0)"]
