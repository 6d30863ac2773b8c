from __future__ import annotations

from decimal import Decimal

from django.db import models


class Order(models.Model):
    """A shop order; paid either at checkout or later by a webhook."""

    status = models.CharField(max_length=16, default="pending")
    total = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("0.00"))
    email = models.EmailField(blank=True)
    visitor = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "djangotest"


class Lead(models.Model):
    """A second tracked model: its event_id rule is overridden."""

    email = models.EmailField()

    class Meta:
        app_label = "djangotest"
