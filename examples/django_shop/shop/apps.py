from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def is_paid(order: Any, created: bool) -> bool:
    """A purchase is an order saved as paid (at checkout, or later by the payment webhook)."""
    return bool(order.status == "paid")


def purchase_fields(order: Any) -> dict[str, Any]:
    return {
        "value": order.total,
        "currency": "EUR",
        "user_data": {"email": order.email, "phone": order.phone or None},
        "custom_data": {"order_number": str(order.pk), "product": order.product},
    }


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self) -> None:
        from roasproof_django import track_model
        from shop.models import Order

        track_model(
            Order,
            event="purchase",
            when=is_paid,
            fields=purchase_fields,
            visitor_field="visitor",
        )
