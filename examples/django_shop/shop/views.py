"""Landing -> product -> cart -> checkout -> thank-you, and the payment provider's webhook.

The views never call roasproof: the purchase is sent by ``track_model`` (see
``apps.py``) when an order is saved as paid and the transaction commits; the
middleware supplies the visitor. The checkout keeps the visitor with the order
(``capture_visitor()``) so a payment confirmed later by the webhook is still
attributed to the ad click that brought the visitor.
"""

from __future__ import annotations

import hmac
import json
import os
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from roasproof_django import capture_visitor
from shop.models import Order

PRODUCTS = {
    "espresso-machine": {"name": "Espresso machine", "price": Decimal("249.00")},
    "coffee-beans": {"name": "Coffee beans, 1 kg", "price": Decimal("24.90")},
}
WEBHOOK_SECRET = os.environ.get("SHOP_WEBHOOK_SECRET", "whsec_example")


def tracking_script(request: HttpRequest) -> dict[str, Any]:
    """Template context: the tracking script URL every page loads."""
    return {"tracking_script": settings.SHOP_TRACKING_SCRIPT}


def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "shop/landing.html", {"products": PRODUCTS})


def product(request: HttpRequest, slug: str) -> HttpResponse:
    if slug not in PRODUCTS:
        raise Http404("no such product")
    return render(request, "shop/product.html", {"slug": slug, "product": PRODUCTS[slug]})


@require_POST
def add_to_cart(request: HttpRequest) -> HttpResponse:
    slug = request.POST.get("product", "")
    if slug not in PRODUCTS:
        return HttpResponseBadRequest("unknown product")
    request.session["cart"] = {"product": slug, "quantity": 1}
    return redirect("checkout")


def checkout(request: HttpRequest) -> HttpResponse:
    cart = request.session.get("cart")
    if not cart:
        return redirect("landing")
    item = PRODUCTS[cart["product"]]
    total = item["price"] * cart["quantity"]
    if request.method != "POST":
        return render(request, "shop/checkout.html", {"item": item, "total": total})
    paid_now = request.POST.get("payment", "card") == "card"
    with transaction.atomic():
        order = Order.objects.create(
            product=cart["product"],
            quantity=cart["quantity"],
            total=total,
            email=request.POST["email"],
            phone=request.POST.get("phone", ""),
            status=Order.Status.PAID if paid_now else Order.Status.PENDING,
            visitor=capture_visitor(),  # for a payment confirmed later, outside this request
        )
    del request.session["cart"]
    request.session["order"] = order.pk
    return redirect("thank_you", pk=order.pk)


def thank_you(request: HttpRequest, pk: int) -> HttpResponse:
    if request.session.get("order") != pk:
        raise Http404("not your order")
    order = get_object_or_404(Order, pk=pk)
    return render(request, "shop/thank_you.html", {"order": order})


@csrf_exempt
@require_POST
def payment_webhook(request: HttpRequest) -> HttpResponse:
    """The payment provider confirms a payment: ``{"order": 12, "status": "paid"}``.

    This request comes from the provider's servers, not from the visitor; the
    purchase is attributed with the visitor stored on the order at checkout.
    """
    given = request.headers.get("X-Webhook-Secret", "")
    if not hmac.compare_digest(given, WEBHOOK_SECRET):
        return HttpResponse(status=403)
    try:
        data = json.loads(request.body)
        pk, status = int(data["order"]), str(data["status"])
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest('expected {"order": <id>, "status": "paid"}')
    with transaction.atomic():
        order = get_object_or_404(Order.objects.select_for_update(), pk=pk)
        if status == "paid" and order.status != Order.Status.PAID:
            order.status = Order.Status.PAID
            order.save(update_fields=["status"])
    return JsonResponse({"order": order.pk, "status": order.status})
