"""System checks: configuration mistakes reported by ``manage.py check`` and before ``migrate``.

Checks do not run in the WSGI/ASGI serving path, so the middleware and the
receivers also tolerate every mistake listed here (they log and carry on); the
checks are where a deploy finds out. Errors are settings that cannot work;
warnings are valid set-ups that lose data, but not a broken site: without an API
key roasproof is inert by design (development, CI), so that is a warning and
``manage.py test`` still runs. Ids are stable and documented in
``docs/django.md``; silence one with ``SILENCED_SYSTEM_CHECKS``.

==============  ==========================================================
roasproof.W001  no API key (``ROASPROOF["API_KEY"]`` / ``ROASPROOF_API_KEY``)
roasproof.W002  ``RoasproofMiddleware`` missing from ``MIDDLEWARE``
roasproof.W003  ``RoasproofMiddleware`` listed more than once
roasproof.E001  a tracked model does not exist
roasproof.E002  ``TRUSTED_PROXIES`` is malformed
roasproof.E003  ``ROASPROOF`` is not a dict, or has an unknown key
roasproof.E004  the settings are rejected by :class:`roasproof.Client`
==============  ==========================================================
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import roasproof
from django.apps import apps
from django.conf import settings
from django.core import checks

from roasproof_django.conf import ADAPTER_KEYS, client_keys, roasproof_settings
from roasproof_django.models_tracking import tracked_models

__all__ = ["check_settings"]

MIDDLEWARE_PATH = "roasproof_django.middleware.RoasproofMiddleware"


@checks.register(checks.Tags.compatibility, "roasproof")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Run every roasproof check (registered under the ``roasproof`` tag)."""
    raw = getattr(settings, "ROASPROOF", {})
    if not isinstance(raw, Mapping):
        return [
            checks.Error(
                f"ROASPROOF must be a dict, not {type(raw).__name__}.",
                hint='Write ROASPROOF = {"API_KEY": ..., "ENDPOINT": ...} in your settings.',
                id="roasproof.E003",
            )
        ]
    if not roasproof_settings.enabled:
        return _check_keys(raw)
    return [
        *_check_api_key(),
        *_check_middleware(),
        *_check_models(),
        *_check_proxies(),
        *_check_keys(raw),
    ]


def _check_api_key() -> list[checks.CheckMessage]:
    if roasproof_settings.api_key:
        return []
    return [
        checks.Warning(
            "No roasproof API key is configured: conversions are validated, then dropped.",
            hint='Set ROASPROOF["API_KEY"] or the ROASPROOF_API_KEY environment variable, '
            'or ROASPROOF["ENABLED"] = False where tracking should be off.',
            id="roasproof.W001",
        )
    ]


def _check_middleware() -> list[checks.CheckMessage]:
    count = list(settings.MIDDLEWARE).count(MIDDLEWARE_PATH)
    if count == 1:
        return []
    if count == 0:
        return [
            checks.Warning(
                "RoasproofMiddleware is not in MIDDLEWARE: conversions would carry no "
                "visitor id, IP address, user agent or click ids.",
                hint=f"Add {MIDDLEWARE_PATH!r} to MIDDLEWARE, near the top.",
                id="roasproof.W002",
            )
        ]
    return [
        checks.Warning(
            f"RoasproofMiddleware is listed {count} times in MIDDLEWARE.",
            hint="Keep one entry; the middleware must wrap each request once.",
            id="roasproof.W003",
        )
    ]


def _check_models() -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for spec in tracked_models():
        try:
            apps.get_model(spec.label)
        except (LookupError, ValueError):
            errors.append(
                checks.Error(
                    f"track_model() names the model {spec.label!r}, which does not exist.",
                    hint='Use "app_label.ModelName" of an installed app, e.g. "shop.Order".',
                    obj=spec.label,
                    id="roasproof.E001",
                )
            )
    return errors


def _check_proxies() -> list[checks.CheckMessage]:
    try:
        _ = roasproof_settings.trusted_proxies
    except roasproof.ConfigurationError as exc:
        return [
            checks.Error(
                f'ROASPROOF["TRUSTED_PROXIES"] is malformed: {exc}',
                hint='Use a hop count (1), a list of CIDRs (["10.0.0.0/8"]) or None.',
                id="roasproof.E002",
            )
        ]
    return []


def _check_keys(raw: Mapping[str, Any]) -> list[checks.CheckMessage]:
    keys = client_keys()
    if keys is not None:
        known = keys | ADAPTER_KEYS
        unknown = [key for key in raw if key not in known]
        if unknown:
            return [_unknown_key(key, known) for key in unknown]
    try:
        roasproof.Client(**roasproof_settings.client_options()).close()
    except (roasproof.ConfigurationError, TypeError) as exc:
        return [
            checks.Error(
                f"ROASPROOF is rejected by roasproof.Client: {exc}",
                hint="Fix the named setting; keys are the Client's arguments, upper-cased.",
                id="roasproof.E004",
            )
        ]
    return []


def _unknown_key(key: str, known: frozenset[str]) -> checks.CheckMessage:
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(known))}."
    return checks.Error(f"ROASPROOF has an unknown key {key!r}.", hint=hint, id="roasproof.E003")
