"""The pure ASGI middleware, driven by real ASGI apps: Starlette in-process and uvicorn on loopback.

httpx's ASGITransport runs the app in the test's own task, so a context that leaked out
of a request would be visible to the test right after it; the autouse fixtures check that.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from roasproof import ConfigurationError, current_context
from roasproof.asgi import ASGIApp, Message, RoasproofMiddleware, Scope
from roasproof.context import _current

REAL = "203.0.113.7"
PROXY = "10.0.0.2"
BASE = "https://shop.example"


@pytest.fixture(autouse=True)
def _nothing_left_bound() -> Iterator[None]:
    yield
    assert current_context() is None
    assert _current.get() is None


def snapshot() -> dict[str, str]:
    context = current_context()
    return {} if context is None else context.to_dict()


async def capture(request: Request) -> Response:
    first = snapshot()
    await asyncio.sleep(random.random() / 500)
    return JSONResponse({**snapshot(), "first": first})


def sync_capture(request: Request) -> Response:
    return JSONResponse(snapshot())


async def boom(request: Request) -> Response:
    raise RuntimeError("boom")


async def stream(request: Request) -> Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(3):
            await asyncio.sleep(0)
            yield json.dumps(snapshot()).encode() + b"\n"

    return StreamingResponse(body())


async def echo_body(request: Request) -> Response:
    body = await request.body()
    return JSONResponse({"body": body.decode(), "context": snapshot()})


async def websocket_endpoint(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(snapshot())
    await websocket.close()


ROUTES = [
    Route("/capture", capture),
    Route("/sync", sync_capture),
    Route("/boom", boom),
    Route("/stream", stream),
    Route("/body", echo_body, methods=["POST"]),
    WebSocketRoute("/ws", websocket_endpoint),
]


def make_app(*middleware: Middleware, trusted_proxies: Any = None) -> Starlette:
    ours = Middleware(RoasproofMiddleware, trusted_proxies=trusted_proxies)
    return Starlette(routes=ROUTES, middleware=[ours, *middleware])


@asynccontextmanager
async def client_for(app: ASGIApp, peer: str = REAL) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def get_context(app: ASGIApp, path: str = "/capture", peer: str = REAL, **kw: Any) -> Any:
    async with client_for(app, peer) as client:
        response = await client.get(path, **kw)
    response.raise_for_status()
    return response.json()


# --- capture ------------------------------------------------------------------------------


async def test_http_request_sees_the_visitors_context() -> None:
    seen = await get_context(
        make_app(),
        "/capture?gclid=G-1&fbclid=IwAR",
        headers={"cookie": "_sgnl_vid=v1; _fbp=fb.1.1.2", "user-agent": "Mozilla/5.0"},
    )
    assert seen["visitor_id"] == "v1"
    assert seen["fbp"] == "fb.1.1.2"
    assert seen["client_ip_address"] == REAL
    assert seen["client_user_agent"] == "Mozilla/5.0"
    assert seen["url"] == "https://shop.example/capture?gclid=G-1&fbclid=IwAR"
    assert (seen["gclid"], seen["fbclid"]) == ("G-1", "IwAR")
    assert seen["fbc"].startswith("fb.1.")
    assert seen["fbc"].endswith(".IwAR")
    assert seen["first"] == {key: value for key, value in seen.items() if key != "first"}


async def test_context_is_unbound_after_the_request() -> None:
    await get_context(make_app(), headers={"cookie": "_sgnl_vid=v1"})
    assert current_context() is None


async def test_sync_endpoint_in_the_threadpool_sees_the_context() -> None:
    seen = await get_context(make_app(), "/sync", headers={"cookie": "_sgnl_vid=v-sync"})
    assert seen["visitor_id"] == "v-sync"


async def test_streaming_body_sees_the_context_while_it_streams() -> None:
    async with client_for(make_app()) as client:
        response = await client.get("/stream", headers={"cookie": "_sgnl_vid=v-stream"})
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert [line["visitor_id"] for line in lines] == ["v-stream"] * 3


async def test_request_body_is_left_for_the_app_to_read() -> None:
    async with client_for(make_app()) as client:
        headers = {"cookie": "_sgnl_vid=v", "user-agent": "UA"}
        response = await client.post("/body", content=b"order=10023", headers=headers)
    assert response.json() == {
        "body": "order=10023",
        "context": {
            "visitor_id": "v",
            "client_ip_address": REAL,
            "client_user_agent": "UA",
            "url": f"{BASE}/body",
        },
    }


@pytest.mark.parametrize(
    ("peer", "expected"), [("2001:DB8::5", "2001:db8::5"), ("::ffff:203.0.113.7", REAL)]
)
async def test_ipv6_peer_is_normalized(peer: str, expected: str) -> None:
    seen = await get_context(make_app(), peer=peer)
    assert seen["client_ip_address"] == expected


async def test_testclient_peer_gives_no_ip() -> None:
    seen = await get_context(make_app(), peer="testclient", headers={"cookie": "_sgnl_vid=v1"})
    assert seen["visitor_id"] == "v1"
    assert "client_ip_address" not in seen


# --- client IP and proxies ----------------------------------------------------------------


SPOOF = {"x-forwarded-for": f"6.6.6.6, {REAL}", "x-forwarded-proto": "https"}


async def test_forwarding_headers_ignored_without_trusted_proxies() -> None:
    seen = await get_context(make_app(), peer=PROXY, headers=SPOOF)
    assert seen["client_ip_address"] == PROXY


@pytest.mark.parametrize("trusted", [1, "1", ["10.0.0.0/8"], "10.0.0.0/8"])
async def test_trusted_proxies_take_the_entry_our_proxy_appended(trusted: Any) -> None:
    seen = await get_context(make_app(trusted_proxies=trusted), peer=PROXY, headers=SPOOF)
    assert seen["client_ip_address"] == REAL


async def test_trusted_networks_ignore_headers_from_an_untrusted_peer() -> None:
    app = make_app(trusted_proxies=["10.0.0.0/8"])
    seen = await get_context(app, peer="198.51.100.1", headers=SPOOF)
    assert seen["client_ip_address"] == "198.51.100.1"


def test_invalid_trusted_proxies_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        RoasproofMiddleware(make_app(), trusted_proxies="everyone")


async def test_uvicorn_proxy_headers_recipe_gives_the_real_client() -> None:
    """The documented recipe: uvicorn --proxy-headers --forwarded-allow-ips, ours untouched."""
    app = Starlette(routes=ROUTES)
    config = uvicorn.Config(
        RoasproofMiddleware(app),
        lifespan="off",
        ws="none",
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
    server = uvicorn.Server(config)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            spoofed = await client.get("/capture", headers=SPOOF)
            direct = await client.get("/capture")
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert spoofed.json()["client_ip_address"] == REAL
    assert spoofed.json()["url"] == f"https://127.0.0.1:{port}/capture"
    assert direct.json()["client_ip_address"] == "127.0.0.1"


# --- lifecycle ----------------------------------------------------------------------------


async def test_context_reset_after_the_app_raises() -> None:
    async with client_for(make_app()) as client:
        with pytest.raises(RuntimeError, match="boom"):
            await client.get("/boom", headers={"cookie": "_sgnl_vid=v1"})
    assert current_context() is None
    assert _current.get() is None


async def test_interleaved_requests_never_see_each_others_context() -> None:
    async with client_for(make_app()) as client:

        async def one(number: int) -> Any:
            cookie = f"_sgnl_vid=v{number}"
            response = await client.get(f"/capture?gclid=g{number}", headers={"cookie": cookie})
            return response.json()

        results = await asyncio.gather(*(one(n) for n in range(200)))
    for number, seen in enumerate(results):
        assert (seen["visitor_id"], seen["gclid"]) == (f"v{number}", f"g{number}")
        assert (seen["first"]["visitor_id"], seen["first"]["gclid"]) == (f"v{number}", f"g{number}")


class RecordingHeaders(list[tuple[bytes, bytes]]):
    """Scope headers that remember being read."""

    reads = 0

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        type(self).reads += 1
        return super().__iter__()


async def test_nothing_is_parsed_unless_the_app_asks() -> None:
    RecordingHeaders.reads = 0
    asked: list[bool] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if asked:
            assert current_context() is not None

    headers = RecordingHeaders([(b"cookie", b"_sgnl_vid=v1")])
    scope: Scope = {"type": "http", "headers": headers, "client": (REAL, 1)}
    await RoasproofMiddleware(app)(scope, receive_nothing, send_nothing)
    assert RecordingHeaders.reads == 0
    asked.append(True)
    await RoasproofMiddleware(app)(scope, receive_nothing, send_nothing)
    assert RecordingHeaders.reads == 1


async def receive_nothing() -> Message:
    return {"type": "http.disconnect"}


async def send_nothing(message: Message) -> None:
    return None


async def test_broken_scope_costs_the_context_not_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[object] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        seen.append(current_context())

    with caplog.at_level(logging.WARNING, logger="roasproof"):
        await RoasproofMiddleware(app)(
            {"type": "http", "headers": 5}, receive_nothing, send_nothing
        )
    assert seen == [None]
    assert "could not read the request context (TypeError)" in caplog.text


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
async def test_non_http_scopes_pass_through_untouched(kind: str) -> None:
    calls: list[tuple[object, ...]] = []

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        calls.append((scope, receive, send, current_context(), _current.get()))

    scope: Scope = {"type": kind, "headers": [(b"cookie", b"_sgnl_vid=v1")]}
    snapshot_before = dict(scope)
    await RoasproofMiddleware(app)(scope, receive_nothing, send_nothing)
    assert calls == [(scope, receive_nothing, send_nothing, None, None)]
    assert calls[0][0] is scope
    assert scope == snapshot_before


async def test_lifespan_and_websocket_work_through_the_middleware() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append(f"startup context={current_context()}")
        yield
        events.append("shutdown")

    app = make_app()
    app.router.lifespan_context = lifespan
    sent = await drive(app, {"type": "lifespan"}, "lifespan.startup", "lifespan.shutdown")
    assert [message["type"] for message in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert events == ["startup context=None", "shutdown"]

    scope: Scope = {
        "type": "websocket",
        "path": "/ws",
        "headers": [(b"cookie", b"_sgnl_vid=v1")],
        "client": (REAL, 1),
    }
    sent = await drive(app, scope, "websocket.connect", "websocket.disconnect")
    assert [message["type"] for message in sent] == [
        "websocket.accept",
        "websocket.send",
        "websocket.close",
    ]
    assert json.loads(sent[1]["text"]) == {}


async def drive(app: ASGIApp, scope: Scope, *incoming: str) -> list[Message]:
    """Run one ASGI connection by hand: feed ``incoming`` message types, collect what is sent."""
    inbox = [{"type": kind} for kind in incoming]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


# --- installation -------------------------------------------------------------------------


async def test_installed_twice_the_outer_copy_wins_and_the_inner_passes_through() -> None:
    inner = make_app()  # peer address only
    outer = RoasproofMiddleware(inner, trusted_proxies=1)
    seen = await get_context(outer, peer=PROXY, headers=SPOOF)
    assert seen["client_ip_address"] == REAL


async def test_listed_twice_in_starlette_is_harmless() -> None:
    app = make_app(Middleware(RoasproofMiddleware, trusted_proxies=1))
    seen = await get_context(app, peer=PROXY, headers={**SPOOF, "cookie": "_sgnl_vid=v2"})
    assert (seen["client_ip_address"], seen["visitor_id"]) == (PROXY, "v2")


async def test_add_middleware_works() -> None:
    app = Starlette(routes=ROUTES)
    app.add_middleware(RoasproofMiddleware, trusted_proxies=1)
    seen = await get_context(app, peer=PROXY, headers=SPOOF)
    assert seen["client_ip_address"] == REAL


class Passthrough(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        return await call_next(request)


async def test_base_http_middleware_inside_ours_keeps_the_context() -> None:
    seen = await get_context(make_app(Middleware(Passthrough)), headers={"cookie": "_sgnl_vid=v"})
    assert seen["visitor_id"] == "v"


async def test_base_http_middleware_outside_ours_keeps_the_context() -> None:
    ours = Middleware(RoasproofMiddleware)
    app = Starlette(routes=ROUTES, middleware=[Middleware(Passthrough), ours])
    seen = await get_context(app, headers={"cookie": "_sgnl_vid=v"})
    assert seen["visitor_id"] == "v"
