"""The ``ROASPROOF`` settings dict, read at access time.

Everything is read when it is used, never at import time, so ``override_settings``
and settings changed by a test runner are always seen. Each key falls back to the
``ROASPROOF_<KEY>`` environment variable, the same names the core library and the
``roasproof`` command line read, so one deployment can configure all three.

``TRUSTED_PROXIES`` and ``TRACK_MODELS`` belong to the adapter; every other key
is passed, lower-cased, to :func:`roasproof.init` (``API_KEY`` becomes
``api_key``), so a new core setting works here without a release of this
package. The default client is (re)built from the dict when the app is ready
and whenever ``ROASPROOF`` changes, so ``override_settings(ROASPROOF=...)``
reconfigures it and restores it afterwards.
"""

from __future__ import annotations

import inspect
import logging
import os
import typing
from collections.abc import Mapping
from typing import Any

import roasproof
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from roasproof.capture import TrustedProxies, parse_trusted_proxies

__all__ = [
    "ADAPTER_KEYS",
    "RoasproofSettings",
    "client_flags",
    "client_keys",
    "configure_client",
    "roasproof_settings",
]

logger = logging.getLogger("roasproof.django")

ADAPTER_KEYS = frozenset({"TRUSTED_PROXIES", "TRACK_MODELS"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class RoasproofSettings:
    """Typed, lazy view of ``settings.ROASPROOF`` with environment fallback."""

    def __init__(self) -> None:
        self._proxies: tuple[object, TrustedProxies] | None = None

    @property
    def raw(self) -> Mapping[str, Any]:
        """The dict as configured; anything that is not a dict reads as empty (E003 says why)."""
        value = getattr(settings, "ROASPROOF", None)
        return value if isinstance(value, Mapping) else {}

    def get(self, key: str) -> Any:
        """``ROASPROOF[key]`` if set (not ``None``), else ``$ROASPROOF_<key>``, else ``None``."""
        value = self.raw.get(key)
        return os.environ.get(f"ROASPROOF_{key}") if value is None else value

    @property
    def enabled(self) -> bool:
        """``False``: the client is inert (validates, sends nothing); checks E003/E004 only."""
        return _as_bool(self.get("ENABLED"), default=True)

    @property
    def strict(self) -> bool:
        """In strict mode errors in tracking code raise instead of being logged."""
        return _as_bool(self.get("STRICT"), default=False)

    @property
    def api_key(self) -> str | None:
        value = self.get("API_KEY")
        return str(value) if value else None

    @property
    def trusted_proxies(self) -> TrustedProxies:
        """Parsed once per configured value; raises ConfigurationError when malformed."""
        value = self.get("TRUSTED_PROXIES")
        cached = self._proxies
        if cached is None or cached[0] != value:
            cached = (value, parse_trusted_proxies(value))
            self._proxies = cached
        return cached[1]

    def client_options(self) -> dict[str, Any]:
        """The keys meant for :class:`roasproof.Client`, as keyword arguments.

        ``None`` is passed through: for the core it means "use the environment
        variable", except ``OUTBOX: None``, the in-memory queue, as in ``init()``.
        """
        return {key.lower(): value for key, value in self.raw.items() if key not in ADAPTER_KEYS}

    def reload(self) -> None:
        """Forget parsed values; called when ``ROASPROOF`` changes."""
        self._proxies = None


def _as_bool(value: object, *, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE
    return bool(value)


roasproof_settings = RoasproofSettings()


def client_keys() -> frozenset[str] | None:
    """The keys :class:`roasproof.Client` accepts (upper-cased), or ``None`` if unknowable.

    Its explicit parameters, plus the keys of the ``TypedDict`` its ``**settings`` unpack.
    """
    try:
        parameters = inspect.signature(roasproof.Client).parameters.values()
        names = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        for parameter in parameters:
            if parameter.kind is parameter.VAR_KEYWORD:
                hints = typing.get_type_hints(roasproof.Client.__init__)
                names.update(typing.get_args(hints[parameter.name])[0].__annotations__)
        return frozenset(name.upper() for name in names)
    except Exception:  # introspection is a nicety for the E003 check, never a failure
        return None


class _Owner:
    """The default client this app built, so a reload replaces only a client it owns."""

    client: roasproof.Client | None = None


def configure_client() -> None:
    """(Re)build the default client from ``ROASPROOF``; without the dict, env alone configures it.

    Once the app has built a default client, one someone else installed since
    (the ``roasproof_events`` test fixture, the project's own ``roasproof.init()``)
    is left alone, when ``ROASPROOF`` changes and when ``ready()`` runs again.
    A malformed dict is logged, not raised: this runs while Django starts, and
    ``manage.py check`` (roasproof.E003/E004) reports it with a hint.
    """
    if not hasattr(settings, "ROASPROOF"):
        return
    try:
        owned = _Owner.client
        if owned is not None and roasproof.get_client() is not owned:
            return
        _Owner.client = roasproof.init(**roasproof_settings.client_options())
    except (roasproof.ConfigurationError, TypeError) as exc:
        if roasproof_settings.strict:
            raise
        logger.error("roasproof: the ROASPROOF setting is invalid (%s); run manage.py check", exc)


def client_flags() -> tuple[bool, bool]:
    """``(enabled, strict)`` of the client in use: the capturing test client is strict."""
    try:
        client_settings = roasproof.get_client().settings
        return bool(client_settings.enabled), bool(client_settings.strict)
    except Exception:  # a broken environment: fall back to the dict, checks say more
        return roasproof_settings.enabled, roasproof_settings.strict


@receiver(setting_changed, dispatch_uid="roasproof_django.conf.reload")
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROASPROOF":
        roasproof_settings.reload()
        configure_client()
