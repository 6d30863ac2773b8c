"""The app config: ready() wiring, TRACK_MODELS from settings, idempotent re-runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.test import TestCase, override_settings

from djangotest.helpers import EventsMixin
from djangotest.models import Lead, Order
from roasproof_django import models_tracking, tracked_models
from roasproof_django.apps import register_from_settings


def lead_fields(lead: Any) -> dict[str, Any]:
    return {"user_data": {"email": lead.email}}


def always(instance: Any, created: bool) -> bool:
    return True


@pytest.fixture
def registry() -> Iterator[None]:
    saved = dict(models_tracking._registry)
    yield
    models_tracking._registry.clear()
    models_tracking._registry.update(saved)


@pytest.mark.usefixtures("registry")
class TestReady(EventsMixin, TestCase):
    def test_running_ready_again_connects_each_receiver_once(self) -> None:
        apps.get_app_config("roasproof").ready()
        apps.get_app_config("djangotest").ready()
        with self.captureOnCommitCallbacks(execute=True):
            Order.objects.create(status="paid")
        assert len(self.events.events) == 1
        assert self.events.client.stats()["duplicates"] == 0

    def test_track_models_from_settings_with_dotted_paths(self) -> None:
        entry = {
            "model": "djangotest.Lead",
            "event": "signup",
            "when": "test_apps.always",
            "fields": "test_apps.lead_fields",
        }
        with override_settings(ROASPROOF={"API_KEY": "k", "TRACK_MODELS": [entry]}):
            apps.get_app_config("roasproof").ready()
        assert any(spec.event == "signup" for spec in tracked_models())
        with self.captureOnCommitCallbacks(execute=True):
            lead = Lead.objects.create(email="new@example.com")
        self.events.assert_tracked(
            "signup", event_id=f"signup_{lead.pk}", user_data={"email": "new@example.com"}
        )
        self.events.assert_tracked("lead", event_id=f"lead_{lead.pk}_web")

    def test_a_malformed_entry_is_improperly_configured(self) -> None:
        with pytest.raises(ImproperlyConfigured, match="model"):
            register_from_settings({"event": "purchase"})
        with pytest.raises(ImproperlyConfigured, match="cannot be imported"):
            register_from_settings({"model": "djangotest.Order", "when": "nowhere.is_paid"})
