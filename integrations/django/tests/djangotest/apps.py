from __future__ import annotations

from typing import Any

from django.apps import AppConfig


def order_is_paid(order: Any, created: bool) -> bool:
    return bool(order.status == "paid")


def order_fields(order: Any) -> dict[str, Any]:
    return {
        "value": order.total,
        "currency": "EUR",
        "user_data": {"email": order.email} if order.email else {},
        "custom_data": {"order_number": str(order.pk)},
    }


class DjangoTestConfig(AppConfig):
    name = "djangotest"

    def ready(self) -> None:
        from djangotest.models import Lead, Order
        from roasproof_django import track_model

        track_model(
            Order,
            event="purchase",
            when=order_is_paid,
            fields=order_fields,
            visitor_field="visitor",
        )
        track_model(
            Lead,
            event="lead",
            when=lambda lead, created: created,
            event_id=lambda lead: f"lead_{lead.pk}_web",
        )
