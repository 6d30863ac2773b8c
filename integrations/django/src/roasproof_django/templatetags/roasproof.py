"""``{% load roasproof %}``: the event_id the browser pixel must carry.

The server's copy of a purchase and the pixel's copy deduplicate only if both
carry the same event_id. Render it from the same rule the server uses::

    {% load roasproof %}
    <script>
      fbq("track", "Purchase", {...}, {eventID: "{% roasproof_event_id "purchase" order.pk %}"});
    </script>

Given a model instance instead of a key (``{% roasproof_event_id "purchase" order %}``)
it uses that model's ``track_model(..., event_id=...)`` rule when one is registered.
"""

from __future__ import annotations

import logging

import roasproof
from django import template
from django.db import models

from roasproof_django.conf import client_flags
from roasproof_django.models_tracking import event_id_for

register = template.Library()
logger = logging.getLogger("roasproof.django")


@register.simple_tag
def roasproof_event_id(event: str, key: object) -> str:
    """``make_event_id(event, key)``, e.g. ``purchase_10023``; autoescaped like any simple tag.

    A missing key (``order`` not in the context) renders an empty string and
    logs a warning, as template errors do; in strict mode (tests) it raises.
    """
    try:
        if isinstance(key, models.Model):
            return event_id_for(key, str(event))
        return roasproof.make_event_id(str(event), key)
    except roasproof.InvalidEvent as exc:
        if client_flags()[1]:
            raise
        logger.warning("roasproof_event_id rendered nothing: %s", exc)
        return ""
