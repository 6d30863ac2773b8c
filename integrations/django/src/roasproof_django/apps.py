"""The app config: ``INSTALLED_APPS += ["roasproof_django"]`` wires everything in ``ready()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

__all__ = ["RoasproofConfig"]


class RoasproofConfig(AppConfig):
    """Registers the system checks, the settings reload and ``ROASPROOF["TRACK_MODELS"]``."""

    name = "roasproof_django"
    label = "roasproof"
    verbose_name = "roasproof"

    def ready(self) -> None:
        # Importing registers the checks and the setting_changed receiver.
        from roasproof_django import checks  # noqa: F401
        from roasproof_django.conf import configure_client, roasproof_settings

        configure_client()
        for entry in roasproof_settings.raw.get("TRACK_MODELS") or ():
            register_from_settings(entry)


def register_from_settings(entry: Mapping[str, Any]) -> None:
    """One ``TRACK_MODELS`` entry: ``{"model": "shop.Order", "event": "purchase", ...}``.

    ``when``, ``fields`` and ``event_id`` are callables or their dotted paths.
    ``ready()`` may run more than once (test runners do that); registering
    again replaces the entry and connects the receiver once.
    """
    from roasproof_django.models_tracking import track_model

    if not isinstance(entry, Mapping) or "model" not in entry:
        raise ImproperlyConfigured(
            'Each ROASPROOF["TRACK_MODELS"] entry must be a dict with a "model" key, '
            'e.g. {"model": "shop.Order", "event": "purchase", "when": "shop.tracking.is_paid"}.'
        )
    options = {key: _callable(key, entry.get(key)) for key in ("when", "fields", "event_id")}
    track_model(
        str(entry["model"]),
        event=str(entry.get("event", "purchase")),
        visitor_field=entry.get("visitor_field"),
        **options,
    )


def _callable(key: str, value: object) -> Callable[..., Any] | None:
    if value is None or callable(value):
        return value
    try:
        found: Callable[..., Any] = import_string(str(value))
    except ImportError as exc:
        raise ImproperlyConfigured(
            f'ROASPROOF["TRACK_MODELS"] {key}={value!r} cannot be imported ({exc}); '
            "give the dotted path of a function, e.g. 'shop.tracking.is_paid'."
        ) from None
    return found
