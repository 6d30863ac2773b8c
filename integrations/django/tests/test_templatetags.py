"""{% roasproof_event_id %}: the pixel's event_id is the one the server sends."""

from __future__ import annotations

import pytest
import roasproof
from django.template import Context, Template
from django.test import TestCase

from djangotest.helpers import EventsMixin, ListDelivery
from djangotest.models import Lead, Order


def render(source: str, **context: object) -> str:
    return Template("{% load roasproof %}" + source).render(Context(context))


class TestEventIdTag(EventsMixin, TestCase):
    def test_renders_the_deterministic_id_from_a_key(self) -> None:
        assert render('{% roasproof_event_id "purchase" pk %}', pk=10023) == "purchase_10023"

    def test_matches_what_track_model_sends(self) -> None:
        with self.captureOnCommitCallbacks(execute=True):
            order = Order.objects.create(status="paid")
        rendered = render('{% roasproof_event_id "purchase" order.pk %}', order=order)
        self.events.assert_tracked("purchase", event_id=rendered)
        assert render('{% roasproof_event_id "purchase" order %}', order=order) == rendered

    def test_an_instance_follows_its_models_event_id_rule(self) -> None:
        lead = Lead.objects.create(email="lead@example.com")
        assert render('{% roasproof_event_id "lead" lead %}', lead=lead) == f"lead_{lead.pk}_web"

    def test_output_is_autoescaped(self) -> None:
        assert "<" not in render('{% roasproof_event_id "purchase" key %}', key="<b>")

    def test_a_missing_key_raises_in_strict_mode(self) -> None:
        with pytest.raises(roasproof.InvalidEvent):
            render('{% roasproof_event_id "purchase" order.pk %}')

    def test_a_missing_key_renders_nothing_in_production(self) -> None:
        roasproof.init(strict=False, enabled=True, delivery=ListDelivery())
        with self.assertLogs("roasproof.django", "WARNING"):
            assert render('{% roasproof_event_id "purchase" order.pk %}') == ""
