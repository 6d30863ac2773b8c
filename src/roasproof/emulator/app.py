"""The emulator's HTTP surface: Starlette routes over :class:`~.ingest.Emulator`.

========================  ===================================================
``POST /api/v1/events``   ingest one event (Bearer key): 202 / 400 / 401 / 413 /
                          422 / 429, as the ingest guide describes
``GET /api/v1/events``    what was received, with each destination's payload;
                          filters ``event_id``, ``event``, ``duplicates=false``,
                          ``limit``
``GET /api/v1/events/{event_id}``  one conversion (404 when unknown)
``DELETE /api/v1/events`` forget everything (events, visitors, usage)
``GET /api/v1/usage``     billing summary: cap, usage, overage, refusals
``GET /api/v1/rejections`` the last 100 validation failures (fields, no values)
``GET /api/v1/visitors``  visitor records collected by the tracking script
``POST /api/v1/collect``  the tracking script's beacon (CORS, no key)
``GET /t.js``             the tracking script
``GET /api/v1/health``    ``{"status": "ok"}`` for scripts waiting on start-up
``GET /``                 the "Conversion events" HTML page
========================  ===================================================

Inspection endpoints need no key: the emulator is a local tool bound to
loopback by default.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from roasproof._payload import encode_payload
from roasproof.emulator.billing import Plan, Subscription
from roasproof.emulator.chaos import Chaos, ChaosConfig, ChaosMiddleware
from roasproof.emulator.destinations import DESTINATIONS
from roasproof.emulator.ingest import DEFAULT_API_KEY, Answer, Emulator
from roasproof.emulator.page import render_page
from roasproof.emulator.store import Store
from roasproof.emulator.tracking_script import render_script

__all__ = ["MAX_BODY", "create_app"]

#: Bodies above this many bytes are refused with 413: one event is a few kilobytes.
MAX_BODY = 1_000_000
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}


class ExactJSONResponse(JSONResponse):
    """JSON with Decimals written exactly, like the SDK writes them (249.00 stays 249.00)."""

    def render(self, content: Any) -> bytes:
        return encode_payload(content)


def _reply(answer: Answer, extra: Mapping[str, str] | None = None) -> ExactJSONResponse:
    return ExactJSONResponse(
        answer.body, answer.status, headers={**answer.headers, **(extra or {})}
    )


def _emulator(request: Request) -> Emulator:
    emulator: Emulator = request.app.state.emulator
    return emulator


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


async def _read_json(request: Request) -> tuple[Any, Answer | None]:
    """The parsed JSON body, or the 400/413 answer explaining why there is none."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        return None, Answer(413, {"error": "payload_too_large", "message": "send one event"})
    body = await request.body()
    if len(body) > MAX_BODY:
        return None, Answer(413, {"error": "payload_too_large", "message": "send one event"})
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        message = "the body is not valid JSON (UTF-8)"
        return None, Answer(400, {"error": "invalid_json", "message": message})
    if not isinstance(data, dict):
        message = "the body must be a JSON object, one event per request"
        return None, Answer(400, {"error": "invalid_body", "message": message})
    return data, None


async def post_event(request: Request) -> Response:
    emulator = _emulator(request)
    if not emulator.authenticate(request.headers.get("authorization")):
        body = {
            "error": "unauthorized",
            "message": "missing or unknown API key: send 'Authorization: Bearer <key>' "
            "with a key of this workspace",
        }
        return _reply(Answer(401, body, {"WWW-Authenticate": 'Bearer realm="roasproof"'}))
    data, problem = await _read_json(request)
    return _reply(problem or emulator.ingest(data))


async def list_events(request: Request) -> Response:
    query = request.query_params
    limit = query.get("limit", "")
    records = _emulator(request).store.events(
        event_id=query.get("event_id"),
        event=query.get("event"),
        duplicates=query.get("duplicates", "true").lower() not in ("false", "0", "no"),
        limit=int(limit) if limit.isdigit() else None,
    )
    return ExactJSONResponse({"events": records, "count": len(records)})


async def get_event(request: Request) -> Response:
    store = _emulator(request).store
    event_id = request.path_params["event_id"]
    record = store.original(event_id)
    if record is None:
        return ExactJSONResponse(
            {"error": "not_found", "message": "no event with this event_id"}, 404
        )
    record["duplicates"] = len(store.events(event_id=event_id)) - 1
    return ExactJSONResponse(record)


async def delete_events(request: Request) -> Response:
    _emulator(request).reset()
    return Response(status_code=204)


async def usage(request: Request) -> Response:
    return ExactJSONResponse(_emulator(request).usage())


async def rejections(request: Request) -> Response:
    return ExactJSONResponse({"rejections": list(_emulator(request).rejections)})


async def visitors(request: Request) -> Response:
    return ExactJSONResponse({"visitors": _emulator(request).store.visitors()})


async def collect(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=_CORS)
    data, problem = await _read_json(request)
    if problem is not None:
        return _reply(problem, _CORS)
    client = request.client
    answer = _emulator(request).collect(
        data,
        ip=client.host if client else None,
        user_agent=(request.headers.get("user-agent") or "")[:2048] or None,
    )
    return _reply(answer, _CORS)


async def tracking_script(request: Request) -> Response:
    origin = str(request.base_url).rstrip("/")
    return Response(
        render_script(origin),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


async def health(request: Request) -> Response:
    return ExactJSONResponse({"status": "ok"})


async def page(request: Request) -> Response:
    emulator = _emulator(request)
    return HTMLResponse(render_page(emulator.store.events(limit=200), emulator.usage()))


def create_app(
    *,
    api_keys: Iterable[str] | None = None,
    destinations: Iterable[str] = DESTINATIONS,
    custom_events: Mapping[str, bool] | Iterable[str] | None = None,
    plan_cap: int = 1000,
    subscription: Subscription = "trial",
    chaos: ChaosConfig | None = None,
    db_path: str | Path | None = None,
    seed: int | None = None,
) -> Starlette:
    """Build an emulator as an ASGI app, for uvicorn or in-process tests.

    ``api_keys`` defaults to ``[DEFAULT_API_KEY]``; ``custom_events`` maps a
    key to whether it is billable (or lists ``"key"`` / ``"key:billable"``);
    ``db_path`` keeps everything in SQLite across restarts (memory otherwise);
    ``seed`` seeds the chaos draws when ``chaos`` has no seed of its own.
    The :class:`~.ingest.Emulator` is ``app.state.emulator``, the
    :class:`~.chaos.Chaos` ``app.state.chaos``.
    """
    emulator = Emulator(
        api_keys=(DEFAULT_API_KEY,) if api_keys is None else api_keys,
        destinations=destinations,
        custom_events=custom_events,
        plan=Plan(cap=plan_cap, subscription=subscription),
        store=Store(db_path) if db_path is not None else Store(),
    )
    config = chaos or ChaosConfig()
    if config.seed is None and seed is not None:
        config = dataclasses.replace(config, seed=seed)
    state = Chaos(config)
    routes = [
        Route("/api/v1/events", post_event, methods=["POST"]),
        Route("/api/v1/events", list_events, methods=["GET"]),
        Route("/api/v1/events", delete_events, methods=["DELETE"]),
        Route("/api/v1/events/{event_id:str}", get_event, methods=["GET"]),
        Route("/api/v1/usage", usage, methods=["GET"]),
        Route("/api/v1/rejections", rejections, methods=["GET"]),
        Route("/api/v1/visitors", visitors, methods=["GET"]),
        Route("/api/v1/collect", collect, methods=["POST", "OPTIONS"]),
        Route("/api/v1/health", health, methods=["GET"]),
        Route("/t.js", tracking_script, methods=["GET"]),
        Route("/", page, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.emulator = emulator
    app.state.chaos = state
    app.add_middleware(ChaosMiddleware, chaos=state)
    return app
