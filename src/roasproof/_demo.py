"""``roasproof demo``: one purchase, from the ad click to what each ad platform receives.

Everything runs on loopback, with zero configuration, and leaves nothing
behind (the SDK's outbox lives in a temporary directory):

1. the emulator (the local ingest API) starts on a free port;
2. a tiny sample shop starts on another: Starlette with
   :class:`roasproof.asgi.RoasproofMiddleware`, a landing page embedding the
   tracking script, and a checkout that tracks a purchase through the SDK;
3. a visitor lands from an ad (``?gclid=...&fbclid=...``), and the tracking
   script's work is replayed: ``GET /t.js``, then ``POST /api/v1/collect``,
   which hands out the ``_sgnl_vid`` visitor id that becomes a first-party
   cookie, with ``_fbc`` built from the fbclid;
4. the visitor checks out; the shop tracks a purchase with a *raw* email and
   phone; nothing in that request carries the gclid;
5. the demo reads what the emulator stored and shows: the conversion as
   received, that PII arrived hashed (and no plaintext is stored anywhere),
   what each destination gets, and the identifiers the visitor join recovered.

It exits 0 when every step checked out, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from roasproof._cli_events import pretty_json
from roasproof._client import Client
from roasproof.asgi import RoasproofMiddleware
from roasproof.emulator import DEFAULT_API_KEY, create_app, run_in_thread
from roasproof.events import make_event_id

__all__ = ["DemoFailed", "build_shop", "run_demo"]

GCLID = "Cj0KCQjw-demo-gclid-4f2a"
FBCLID = "IwAR2demoFbclid7Qx"
EMAIL = "Jane.Doe@Example.com"
PHONE = "+359 88 123 4567"
ORDER_ID = "10023"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


class DemoFailed(Exception):
    """A step of the demo did not behave as the ingest guide says it should."""


def build_shop(client: Client, emulator_url: str) -> Starlette:
    """The sample shop: a landing page with the tracking script, and a checkout."""

    async def landing(request: Request) -> Response:
        return HTMLResponse(
            "<!doctype html><title>Demo shop</title><h1>Trail shoes, 249.00 EUR</h1>"
            f'<script src="{emulator_url}/t.js" async></script>'
        )

    async def checkout(request: Request) -> Response:
        order = await request.json()
        # The RoasproofMiddleware bound this request's context: the _sgnl_vid and
        # _fbc cookies, the IP and the User-Agent fill the gaps of user_data.
        event_id = client.track(
            "purchase",
            event_id=make_event_id("purchase", order["order_id"]),
            value=Decimal(order["total"]),
            currency="EUR",
            url=str(request.url),
            user_data={"email": order["email"], "phone": order["phone"]},
            custom_data={"order_number": order["order_id"]},
        )
        # track() only made it durable; the demo waits for the background delivery.
        delivered = await asyncio.to_thread(client.flush, 10.0)
        return JSONResponse({"event_id": event_id, "delivered": delivered})

    routes = [Route("/", landing), Route("/checkout", checkout, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(RoasproofMiddleware)])


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise DemoFailed(what)


def _visit(browser: httpx.Client, shop: str, emulator: str) -> tuple[str, str]:
    """Land from an ad and replay the tracking script; returns (landing URL, visitor id)."""
    landing = f"{shop}/?gclid={GCLID}&fbclid={FBCLID}&utm_source=ads"
    page = browser.get(landing)
    _check(page.status_code == 200 and "/t.js" in page.text, "the landing page did not load")
    script = browser.get(f"{emulator}/t.js")
    _check(script.status_code == 200 and "_sgnl_vid" in script.text, "t.js was not served")
    fbc = f"fb.1.{int(time.time() * 1000)}.{FBCLID}"
    beacon = browser.post(
        f"{emulator}/api/v1/collect",
        content=json.dumps({"url": landing, "gclid": GCLID, "fbclid": FBCLID, "fbc": fbc}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": shop},
    )
    _check(beacon.status_code == 200, f"the tracking endpoint answered {beacon.status_code}")
    visitor_id = str(beacon.json()["visitor_id"])
    host = httpx.URL(shop).host
    # What t.js does with document.cookie: first-party cookies on the shop's domain.
    browser.cookies.set("_sgnl_vid", visitor_id, domain=host)
    browser.cookies.set("_fbc", fbc, domain=host)
    return landing, visitor_id


def _checkout(browser: httpx.Client, shop: str) -> str:
    order = {"order_id": ORDER_ID, "total": "249.00", "email": EMAIL, "phone": PHONE}
    answer = browser.post(f"{shop}/checkout", json=order)
    _check(answer.status_code == 200, f"the checkout answered {answer.status_code}")
    result = answer.json()
    _check(result["delivered"] is True, "the purchase was not delivered within 10 seconds")
    return str(result["event_id"])


def _json(data: Any) -> Syntax:
    text = pretty_json(data)
    return Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True)


def _show(console: Console, record: dict[str, Any], everything: str) -> None:
    console.print(Panel(_json(record["conversion"]), title="1. The conversion as received"))

    user = record["conversion"]["user_data"]
    table = Table(title="2. PII arrived hashed", title_justify="left")
    table.add_column("field")
    table.add_column("the shop sent")
    table.add_column("the ingest API stored (SHA-256)")
    for field, raw in (("email", EMAIL), ("phone", PHONE)):
        table.add_row(field, raw, user[field])
    console.print(table)
    _check(EMAIL not in everything and EMAIL.lower() not in everything, "a raw email was stored")
    _check("881234567" not in everything, "a raw phone number was stored")
    console.print("[green]✓[/] no plaintext email or phone anywhere in the emulator's store\n")

    table = Table(title="3. What each destination gets", title_justify="left")
    table.add_column("destination")
    table.add_column("match keys")
    table.add_column("click id")
    for item in record["destinations"]:
        click = item["click_id"] or "-"
        table.add_row(item["destination"], ", ".join(item["match_keys"]), click)
    console.print(table)

    visitor = record["visitor"]
    merged = record["user_data"]
    table = Table(title="4. Recovered by the visitor join", title_justify="left")
    table.add_column("identifier")
    table.add_column("value")
    for key in visitor["recovered"]:
        table.add_row(key, str(merged[key]))
    console.print(table)
    google = next(item for item in record["destinations"] if item["destination"] == "google")
    _check(google["payload"].get("gclid") == GCLID, "the gclid did not reach Google's payload")
    console.print(
        f"[green]✓[/] the gclid from the landing page ({GCLID}) reached the purchase: the "
        "checkout request never carried it, the visitor_id join did.\n"
    )


def _story(console: Console, workdir: Path) -> None:
    emulator_app = create_app()
    with run_in_thread(emulator_app) as emulator:
        console.print(f"[green]✓[/] emulator (local ingest API) on {emulator.url}")
        client = Client(
            DEFAULT_API_KEY,
            endpoint=emulator.url,
            outbox=workdir / "outbox.sqlite3",
            strict=True,
        )
        try:
            with run_in_thread(build_shop(client, emulator.url)) as shop:
                console.print(f"[green]✓[/] sample shop with RoasproofMiddleware on {shop.url}")
                with httpx.Client(headers={"User-Agent": BROWSER}, timeout=15) as browser:
                    landing, visitor_id = _visit(browser, shop.url, emulator.url)
                    console.print(f"[green]✓[/] a visitor landed from an ad: {landing}")
                    console.print(f"[green]✓[/] tracking script: _sgnl_vid={visitor_id}")
                    event_id = _checkout(browser, shop.url)
                    console.print(
                        f"[green]✓[/] checkout: order {ORDER_ID} tracked with a raw email and "
                        f"phone, delivered as {event_id}\n"
                    )
                    answer = browser.get(f"{emulator.url}/api/v1/events/{event_id}")
                    record = json.loads(answer.text, parse_float=Decimal)
                    store = browser.get(f"{emulator.url}/api/v1/events").text
                    store += browser.get(f"{emulator.url}/api/v1/visitors").text
        finally:
            client.close(5.0)
        _show(console, record, store)


def run_demo(console: Console) -> int:
    """Run the demo, print it with ``console``; 0 when every step checked out, else 1."""
    console.rule("roasproof demo: one purchase, from the ad click to the ad platforms")
    try:
        with tempfile.TemporaryDirectory(prefix="roasproof-demo-") as workdir:
            _story(console, Path(workdir))
    except (DemoFailed, httpx.HTTPError, OSError, RuntimeError) as exc:
        console.print(f"[bold red]✗ the demo failed:[/] {exc}")
        return 1
    console.rule("it works")
    console.print(
        "Next: run [bold]roasproof emulator[/] and point your app at it with "
        "ROASPROOF_ENDPOINT=http://127.0.0.1:8765 ROASPROOF_API_KEY=rp_test_emulator"
    )
    return 0
