from __future__ import annotations

from decimal import Decimal

from django.db import models


class Order(models.Model):
    """An order. ``visitor`` keeps the visitor's identifiers from checkout for a later payment."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PAID = "paid"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    product = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField(default=1)
    total = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    email = models.EmailField()
    phone = models.CharField(max_length=32, blank=True)
    visitor = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Order {self.pk} ({self.status})"
