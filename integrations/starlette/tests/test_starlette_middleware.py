"""The ASGI middleware under Starlette: binding, isolation, and every known pitfall."""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

import roasproof
from roasproof import (
    ConfigurationError,
    RequestContext,
    conversion,
    current_context,
    track_conversion,
)
from roasproof.context import bind_context
from roasproof.testing import CapturedEvents
from roasproof_starlette import RoasproofMiddleware

FORGED = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}


def visitor() -> dict[str, str]:
    ctx = current_context()
    return {} if ctx is None else ctx.to_dict()


async def async_context(request: Request) -> JSONResponse:
    return JSONResponse(visitor())


def sync_context(request: Request) -> JSONResponse:
    return JSONResponse(visitor() | {"thread": threading.current_thread().name})


def make_app(*middleware: Middleware, routes: list[Any] | None = None, **kwargs: Any) -> Starlette:
    base = [Route("/async", async_context), Route("/sync", sync_context)]
    return Starlette(routes=base + (routes or []), middleware=list(middleware), **kwargs)


def roasproof_middleware(**options: Any) -> Middleware:
    return Middleware(RoasproofMiddleware, **options)


async def get(app: ASGIApp, path: str, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        return await client.get(path, headers=headers)


@pytest.mark.parametrize("path", ["/async", "/sync"])
async def test_async_and_threadpool_endpoints_see_the_visitor(path: str) -> None:
    app = make_app(roasproof_middleware())
    response = await get(
        app,
        f"{path}?gclid=CjwKCA-MiXeD&fbclid=IwAR-X",
        Cookie="_sgnl_vid=vid-1; _fbp=fb.1.1700000000000.42",
        **{"User-Agent": "UA/1"},
    )
    data = response.json()
    assert data["visitor_id"] == "vid-1"
    assert data["gclid"] == "CjwKCA-MiXeD"
    assert data["fbc"].endswith(".IwAR-X")
    assert data["fbp"] == "fb.1.1700000000000.42"
    assert data["client_ip_address"] == "127.0.0.1"
    assert data["client_user_agent"] == "UA/1"
    assert data["url"] == f"http://shop.test{path}?gclid=CjwKCA-MiXeD&fbclid=IwAR-X"
    assert current_context() is None


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (None, "127.0.0.1"),
        (1, "203.0.113.7"),
        (["127.0.0.0/8"], "203.0.113.7"),
        ("10.0.0.0/8", "127.0.0.1"),
    ],
)
async def test_forged_left_most_forwarded_for_is_ignored(trusted: object, expected: str) -> None:
    app = make_app(roasproof_middleware(trusted_proxies=trusted))
    assert (await get(app, "/async", **FORGED)).json()["client_ip_address"] == expected


async def test_trusted_proxies_default_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_TRUSTED_PROXIES", "1")
    app = make_app(roasproof_middleware())
    assert (await get(app, "/async", **FORGED)).json()["client_ip_address"] == "203.0.113.7"


def test_invalid_trusted_proxies_fail_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        RoasproofMiddleware(make_app(), trusted_proxies="not-a-network")


@pytest.mark.parametrize("peer", ["testclient", "unix:", ""])
async def test_a_peer_that_is_not_an_ip_gives_no_ip_and_no_error(peer: str) -> None:
    transport = httpx.ASGITransport(app=make_app(roasproof_middleware()), client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        data = (await client.get("/async", headers={"Cookie": "_sgnl_vid=v"})).json()
    assert data["visitor_id"] == "v"
    assert "client_ip_address" not in data


@pytest.mark.parametrize(
    ("cookie", "query", "visitor_id", "gclid"),
    [
        ("_sgnl_vid=a; _sgnl_vid=b", "gclid=G1&gclid=G2", "a", "G1"),
        ("_sgnl_vid=" + "x" * 4000, "gclid=" + "y" * 4000, None, None),
        ('=;;"; _sgnl_vid=ok', "gclid=%ZZ&&=&gclid", "ok", "%ZZ"),
        ("_sgnl_vid=sp ace", "gclid=%E2%9C%93", None, None),
        ("", "GCLID=upper&gclid=lower-KEEP-case", None, "lower-KEEP-case"),
    ],
)
async def test_malformed_duplicated_and_oversized_cookies_and_query_values(
    cookie: str, query: str, visitor_id: str | None, gclid: str | None
) -> None:
    app = make_app(roasproof_middleware())
    data = (await get(app, f"/async?{query}", Cookie=cookie)).json()
    assert data.get("visitor_id") == visitor_id
    assert data.get("gclid") == gclid
    assert data["client_ip_address"] == "127.0.0.1"


async def test_interleaved_requests_on_a_real_server_never_mix_visitors(
    serve: Callable[[ASGIApp], str], roasproof_events: CapturedEvents
) -> None:
    @track_conversion("purchase", currency="EUR")
    async def checkout(request: Request) -> JSONResponse:
        before = visitor()
        await asyncio.sleep(random.uniform(0, 0.03))
        conversion.update(value=int(request.path_params["n"]))
        return JSONResponse({"before": before, "after": visitor()})

    @track_conversion("lead")
    def subscribe(request: Request) -> JSONResponse:  # runs in the threadpool
        before = visitor()
        threading.Event().wait(random.uniform(0, 0.03))
        return JSONResponse({"before": before, "after": visitor()})

    routes = [
        Route("/checkout/{n:int}", checkout, methods=["POST"]),
        Route("/subscribe/{n:int}", subscribe, methods=["POST"]),
    ]
    url = serve(make_app(roasproof_middleware(), routes=routes))

    async def call(client: httpx.AsyncClient, path: str, n: int) -> None:
        response = await client.post(
            f"{path}/{n}?gclid=G-{n}", headers={"Cookie": f"_sgnl_vid=v-{n}"}
        )
        data = response.json()
        assert data["before"] == data["after"]
        assert (data["before"]["visitor_id"], data["before"]["gclid"]) == (f"v-{n}", f"G-{n}")

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        await asyncio.gather(
            *(call(client, path, n) for n in range(20) for path in ("/checkout", "/subscribe"))
        )
    for n in range(20):
        roasproof_events.assert_tracked(
            "purchase", value=n, user_data={"visitor_id": f"v-{n}", "gclid": f"G-{n}"}
        )
        roasproof_events.assert_tracked("lead", times=1, user_data={"visitor_id": f"v-{n}"})


async def test_a_context_leaked_by_a_threadpool_endpoint_stays_in_its_thread() -> None:
    def leaky(request: Request) -> PlainTextResponse:
        bind_context(RequestContext(visitor_id="hijacked")).__enter__()  # never exited
        return PlainTextResponse("ok")

    app = make_app(roasproof_middleware(), routes=[Route("/leaky", leaky)])
    for _ in range(5):
        await get(app, "/leaky")
    assert (await get(app, "/sync", Cookie="_sgnl_vid=mine")).json()["visitor_id"] == "mine"
    assert (await get(app, "/sync")).json().get("visitor_id") is None
    assert current_context() is None


class Passthrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


@pytest.mark.parametrize(
    "outer_first", [True, False], ids=["BaseHTTPMiddleware-outside", "ours-outside"]
)
@pytest.mark.parametrize("path", ["/async", "/sync", "/background"])
async def test_base_http_middleware_on_either_side_keeps_the_context(
    outer_first: bool, path: str
) -> None:
    seen: list[dict[str, str]] = []

    async def with_background(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok", background=BackgroundTask(lambda: seen.append(visitor())))

    stack = [Middleware(Passthrough), roasproof_middleware()]
    app = make_app(
        *(stack if outer_first else stack[::-1]), routes=[Route("/background", with_background)]
    )
    response = await get(app, path, Cookie="_sgnl_vid=v-base")
    data = seen[0] if path == "/background" else response.json()
    assert data["visitor_id"] == "v-base"


async def test_middleware_listed_twice_binds_once_with_the_outer_settings() -> None:
    app = make_app(roasproof_middleware(trusted_proxies=1), roasproof_middleware())
    assert (await get(app, "/async", **FORGED)).json()["client_ip_address"] == "203.0.113.7"


async def test_adding_the_middleware_after_start_up_is_a_clear_error() -> None:
    app = make_app()
    await get(app, "/async")
    with pytest.raises(RuntimeError, match="after an application has started"):
        app.add_middleware(RoasproofMiddleware)


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_streaming_body_sees_the_context_while_it_streams(kind: str) -> None:
    async def agen() -> AsyncIterator[str]:
        yield visitor().get("visitor_id", "none")
        await asyncio.sleep(0)
        yield "|end"

    def gen() -> Iterator[str]:
        yield visitor().get("visitor_id", "none")
        yield "|end"

    async def stream(request: Request) -> StreamingResponse:
        return StreamingResponse(agen() if kind == "async" else gen())

    app = make_app(roasproof_middleware(), routes=[Route("/stream", stream)])
    assert (await get(app, "/stream", Cookie="_sgnl_vid=v-s")).text == "v-s|end"
    assert current_context() is None


class BodyReader:
    """A pure ASGI middleware that consumes the body before the app (and replays it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        scope.setdefault("state", {})["body_size"] = len(b"".join(chunks))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


@pytest.mark.parametrize("reader_outside", [True, False])
async def test_handlers_and_middleware_that_read_the_body_still_work(
    reader_outside: bool, roasproof_events: CapturedEvents
) -> None:
    @track_conversion("purchase", currency="EUR")
    async def orders(request: Request) -> JSONResponse:
        data = await request.json()
        conversion.update(value=data["total"], event_id=f"purchase_{data['id']}")
        return JSONResponse({"bytes": len(await request.body())}, status_code=201)

    stack = [Middleware(BodyReader), roasproof_middleware()]
    app = make_app(
        *(stack if reader_outside else stack[::-1]),
        routes=[Route("/orders", orders, methods=["POST"])],
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        response = await client.post("/orders", json={"id": 4, "total": "9.99"})
    assert response.status_code == 201
    assert response.json()["bytes"] > 0
    roasproof_events.assert_tracked("purchase", event_id="purchase_4", value="9.99")


async def run_lifespan(app: ASGIApp) -> list[str]:
    """Drive the ASGI lifespan protocol (startup, then shutdown) as a server does."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            await inbox.put({"type": "lifespan.shutdown"})

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await app(scope, inbox.get, send)  # type: ignore[arg-type]
    return sent


async def test_lifespan_passes_through_untouched() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append(f"startup bound={current_context() is not None}")
        yield
        events.append("shutdown")

    app = make_app(roasproof_middleware(), lifespan=app_lifespan)
    assert await run_lifespan(app) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup bound=False", "shutdown"]


async def test_websocket_passes_through_untouched() -> None:
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"bound": current_context() is not None})
        await websocket.close()

    app = make_app(roasproof_middleware(), routes=[WebSocketRoute("/ws", echo)])
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"gclid=G",
        "headers": [(b"cookie", b"_sgnl_vid=v-ws"), (b"host", b"shop.test")],
        "client": ("127.0.0.1", 5000),
        "server": ("shop.test", 80),
        "subprotocols": [],
    }
    await app(scope, inbox.get, send)  # type: ignore[arg-type]
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert sent[1]["text"] == '{"bound":false}'


async def test_works_around_any_asgi_app(roasproof_events: CapturedEvents) -> None:
    @track_conversion("lead")
    async def bare(scope: Scope, receive: Receive, send: Send) -> None:
        body = str(visitor().get("visitor_id")).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    assert (await get(RoasproofMiddleware(bare), "/", Cookie="_sgnl_vid=raw")).text == "raw"
    roasproof_events.assert_tracked("lead", user_data={"visitor_id": "raw"})


async def test_unconfigured_app_is_inert_without_errors(caplog: pytest.LogCaptureFixture) -> None:
    @track_conversion("lead")
    async def lead(request: Request) -> PlainTextResponse:
        return PlainTextResponse("thanks")

    app = make_app(roasproof_middleware(), routes=[Route("/lead", lead)])
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        for _ in range(3):
            assert (await get(app, "/lead")).text == "thanks"
    assert roasproof.get_client().stats()["inert"] == 3
    assert caplog.text.count("not configured") == 1


async def test_disabled_app_is_inert_and_silent(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ROASPROOF_ENABLED", "false")
    monkeypatch.setenv("ROASPROOF_API_KEY", "rp_key")

    @track_conversion("lead")
    async def lead(request: Request) -> PlainTextResponse:
        return PlainTextResponse("thanks")

    app = make_app(roasproof_middleware(), routes=[Route("/lead", lead)])
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        assert (await get(app, "/lead")).text == "thanks"
    assert roasproof.get_client().stats()["inert"] == 1
    assert caplog.text == ""


async def test_context_is_reset_after_an_endpoint_raises(roasproof_events: CapturedEvents) -> None:
    @track_conversion("purchase", value=1, currency="EUR")
    async def broken(request: Request) -> Response:
        assert current_context() is not None
        raise RuntimeError("payment provider down")

    app = make_app(roasproof_middleware(), routes=[Route("/broken", broken)])
    with pytest.raises(RuntimeError, match="payment provider down"):
        await get(app, "/broken", Cookie="_sgnl_vid=v")
    assert current_context() is None
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test") as client:
        assert (await client.get("/broken")).status_code == 500
    assert current_context() is None
    roasproof_events.assert_not_tracked()
