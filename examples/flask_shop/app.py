"""A tiny Flask shop wired to roasproof: landing page, product page, checkout, thank-you page.

Run it against the local emulator::

    roasproof emulator --port 8765 &
    ROASPROOF_API_KEY=rp_test_emulator ROASPROOF_ENDPOINT=http://127.0.0.1:8765 \
        flask --app examples/flask_shop/app.py run

Open http://127.0.0.1:5000/?gclid=TeSt-GcLiD&fbclid=IwAR-TeSt: the landing page
loads the emulator's tracking script, which sets the ``_sgnl_vid`` cookie and
records the click ids. Buy something: the checkout view fires a ``purchase``
whose ``event_id`` is derived from the order id, and the thank-you page
renders the browser pixel's copy with the same id, so ad platforms count one.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import Flask, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from roasproof import conversion, make_event_id, track_conversion
from roasproof_flask import Roasproof

PRODUCTS = {1: ("Espresso grinder", Decimal("249.00")), 2: ("Milk jug", Decimal("19.90"))}

roasproof_ext = Roasproof()


@dataclass(frozen=True)
class Order:
    id: int
    product_id: int
    quantity: int
    email: str

    @property
    def total(self) -> Decimal:
        return PRODUCTS[self.product_id][1] * self.quantity


class OrderBook:
    """The shop's "database": thread-safe, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(10023)
        self._orders: dict[int, Order] = {}

    def place(self, product_id: int, quantity: int, email: str) -> Order:
        with self._lock:
            order = Order(next(self._ids), product_id, quantity, email)
            self._orders[order.id] = order
        return order

    def get(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The app factory: ``ROASPROOF_*`` settings come from ``config`` or the environment."""
    app = Flask(__name__)
    app.config["EMULATOR_URL"] = os.environ.get("ROASPROOF_ENDPOINT", "http://127.0.0.1:8765")
    app.config.update(config or {})
    app.extensions["orders"] = orders = OrderBook()
    roasproof_ext.init_app(app)

    @app.get("/")
    def landing() -> str:
        return render_template("landing.html", products=PRODUCTS)

    @app.get("/products/<int:product_id>")
    def product(product_id: int) -> str:
        if product_id not in PRODUCTS:
            abort(404)
        name, price = PRODUCTS[product_id]
        return render_template("product.html", product_id=product_id, name=name, price=price)

    @app.post("/checkout")
    @track_conversion("purchase", currency="EUR")
    def checkout() -> Response:
        product_id = request.form.get("product_id", type=int)
        if product_id not in PRODUCTS:
            abort(400)  # an exception: no conversion is fired
        order = orders.place(
            product_id, request.form.get("quantity", 1, type=int), request.form["email"]
        )
        conversion.update(
            event_id=make_event_id("purchase", order.id),
            value=order.total,
            user_data={"email": order.email},
            custom_data={"order_number": str(order.id)},
        )
        return redirect(url_for("thank_you", order_id=order.id))

    @app.get("/thank-you/<int:order_id>")
    def thank_you(order_id: int) -> str:
        order = orders.get(order_id) or abort(404)
        return render_template("thank_you.html", order=order)

    return app
