"""roasproof for Django: visitor capture middleware, conversions from model saves, checks.

Set-up::

    INSTALLED_APPS = [..., "roasproof_django"]
    MIDDLEWARE = ["roasproof_django.middleware.RoasproofMiddleware", ...]
    ROASPROOF = {"API_KEY": env("ROASPROOF_API_KEY")}

then, in an ``AppConfig.ready()``::

    from roasproof_django import track_model
    track_model(Order, event="purchase", when=lambda order, created: order.paid)

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from roasproof_django.models_tracking import (
    TrackedModel,
    capture_visitor,
    event_id_for,
    track_model,
    tracked_models,
)

__version__ = "0.1.0"

__all__ = [
    "TrackedModel",
    "__version__",
    "capture_visitor",
    "event_id_for",
    "track_model",
    "tracked_models",
]
