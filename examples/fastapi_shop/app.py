"""A tiny FastAPI shop wired to roasproof: landing page, product page, checkout, thank-you page.

Run it against the local emulator::

    roasproof emulator --port 8765 &
    ROASPROOF_API_KEY=rp_test_emulator ROASPROOF_ENDPOINT=http://127.0.0.1:8765 \
        uvicorn --factory --app-dir examples/fastapi_shop app:create_app --port 8000

Open http://127.0.0.1:8000/?gclid=TeSt-GcLiD&fbclid=IwAR-TeSt: the landing page
loads the emulator's tracking script, which sets the ``_sgnl_vid`` cookie and
records the click ids. ``POST /api/checkout`` fires a ``purchase`` whose
``event_id`` is derived from the order id; the thank-you page renders the
browser pixel's copy with the same id, so ad platforms count one purchase.
"""

from __future__ import annotations

import html
import itertools
import os
import threading
from dataclasses import dataclass, field
from decimal import Decimal

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from roasproof import conversion, make_event_id, track_conversion
from roasproof_starlette import RoasproofMiddleware, VisitorContext, lifespan

PRODUCTS = {1: ("Espresso grinder", Decimal("249.00")), 2: ("Milk jug", Decimal("19.90"))}


class CheckoutForm(BaseModel):
    product_id: int
    quantity: int = Field(default=1, ge=1)
    email: str


class Receipt(BaseModel):
    order_id: int
    event_id: str
    thank_you: str


@dataclass
class Order:
    id: int
    product_id: int
    quantity: int
    email: str
    visitor: dict[str, str] = field(default_factory=dict)  # for offline conversions later

    @property
    def total(self) -> Decimal:
        return PRODUCTS[self.product_id][1] * self.quantity


class OrderBook:
    """The shop's "database": thread-safe, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(20001)
        self.orders: dict[int, Order] = {}

    def place(self, form: CheckoutForm, visitor: dict[str, str]) -> Order:
        with self._lock:
            order = Order(next(self._ids), form.product_id, form.quantity, form.email, visitor)
            self.orders[order.id] = order
        return order


def page(emulator_url: str, body: str) -> HTMLResponse:
    script = f'<script async src="{html.escape(emulator_url)}/t.js"></script>'
    head = f'<meta charset="utf-8"><title>FastAPI shop</title>{script}'
    return HTMLResponse(f"<!doctype html><html><head>{head}</head><body>{body}</body></html>")


def create_app(emulator_url: str | None = None) -> FastAPI:
    """The shop; roasproof's client comes from the ``ROASPROOF_*`` environment variables."""
    emulator = emulator_url or os.environ.get("ROASPROOF_ENDPOINT", "http://127.0.0.1:8765")
    app = FastAPI(lifespan=lifespan())  # flushes and closes the client on shutdown
    app.add_middleware(RoasproofMiddleware)  # ROASPROOF_TRUSTED_PROXIES behind a proxy
    book = OrderBook()

    @app.get("/", response_class=HTMLResponse)
    async def landing() -> HTMLResponse:
        items = "".join(
            f'<li><a href="/products/{pid}">{html.escape(name)}</a> &euro;{price}</li>'
            for pid, (name, price) in PRODUCTS.items()
        )
        return page(emulator, f"<h1>Coffee gear</h1><ul>{items}</ul>")

    @app.get("/products/{product_id}", response_class=HTMLResponse)
    async def product(product_id: int) -> HTMLResponse:
        if product_id not in PRODUCTS:
            raise HTTPException(404)
        name, price = PRODUCTS[product_id]
        return page(emulator, f"<h1>{html.escape(name)}</h1><p>&euro;{price}</p>")

    @app.post("/api/checkout", status_code=201)
    @track_conversion("purchase", currency="EUR")
    async def checkout(form: CheckoutForm, visitor: VisitorContext) -> Receipt:
        if form.product_id not in PRODUCTS:
            raise HTTPException(400, "unknown product")  # an exception: nothing is tracked
        order = book.place(form, visitor.to_dict())
        event_id = make_event_id("purchase", order.id)
        conversion.update(
            event_id=event_id,
            value=order.total,
            user_data={"email": order.email},
            custom_data={"order_number": str(order.id)},
        )
        return Receipt(order_id=order.id, event_id=event_id, thank_you=f"/thank-you/{order.id}")

    @app.post("/api/newsletter", status_code=204)
    @track_conversion("lead", custom_data={"form": "newsletter"})
    def newsletter(email: str) -> None:  # a def endpoint: runs in the threadpool
        conversion.update(user_data={"email": email})

    @app.get("/thank-you/{order_id}", response_class=HTMLResponse)
    async def thank_you(order_id: int) -> HTMLResponse:
        order = book.orders.get(order_id)
        if order is None:
            raise HTTPException(404)
        event_id = make_event_id("purchase", order.id)  # the server's copy uses the same id
        pixel = (
            f'<script>window.fbq && fbq("track", "Purchase", {{value: {order.total}, '
            f'currency: "EUR"}}, {{eventID: "{event_id}"}});</script>'
        )
        body = f'<h1>Thank you! Order #{order.id}</h1>{pixel}<p data-event-id="{event_id}"></p>'
        return page(emulator, body)

    return app
