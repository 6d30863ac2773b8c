"""Module-level functions (``roasproof.track(...)``) backed by one default :class:`Client`.

Most applications need one client per process. :func:`init` configures it at
start-up; without it, the first call builds one from the ``ROASPROOF_*``
environment variables, so ``roasproof.track("lead")`` works with no set-up code
at all (and stays inert, with one warning, when no API key is configured).
"""

from __future__ import annotations

import threading
from typing import Any, Unpack

from roasproof._client import Client, ClientOptions
from roasproof._delivery._base import Delivery
from roasproof._http import DeliveryResult
from roasproof.events import Event

__all__ = ["asend", "build_payload", "close", "flush", "get_client", "init", "send", "track"]

_lock = threading.Lock()
_default: Client | None = None


def init(
    api_key: str | None = None,
    *,
    delivery: Delivery | None = None,
    **settings: Unpack[ClientOptions],
) -> Client:
    """Configure the default client used by the module-level functions, and return it.

    Takes the same settings as :class:`Client`. Calling it again replaces the
    default client and closes the previous one (its undelivered events stay in
    the outbox and are delivered by the new one when it shares the file).
    """
    global _default
    client = Client(api_key, delivery=delivery, **settings)
    with _lock:
        previous, _default = _default, client
    if previous is not None:
        previous.close()
    return client


def get_client() -> Client:
    """The default client; built from the environment if :func:`init` was never called."""
    global _default
    with _lock:
        if _default is None:
            _default = Client()
        return _default


def track(event: str | Event, **fields: Any) -> str:
    """:meth:`Client.track` on the default client: durable, never raises in production."""
    return get_client().track(event, **fields)


def send(event: str | Event, **fields: Any) -> DeliveryResult:
    """:meth:`Client.send` on the default client: POST now, raise the typed error."""
    return get_client().send(event, **fields)


async def asend(event: str | Event, **fields: Any) -> DeliveryResult:
    """:meth:`Client.asend` on the default client."""
    return await get_client().asend(event, **fields)


def build_payload(event: str | Event, **fields: Any) -> dict[str, Any]:
    """:meth:`Client.build_payload` on the default client: the exact JSON body, nothing sent."""
    return get_client().build_payload(event, **fields)


def flush(timeout: float | None = None) -> bool:
    """Wait until the default client's tracked events are delivered; ``True`` if none is left."""
    client = _default
    return True if client is None else client.flush(timeout)


def close(timeout: float | None = None) -> None:
    """Close the default client (flushing within ``timeout``) and forget it.

    A later module-level call builds a fresh default client.
    """
    global _default
    with _lock:
        client, _default = _default, None
    if client is not None:
        client.close(timeout)
