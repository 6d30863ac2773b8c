"""Pure ASGI middleware that binds the request context for every HTTP request.

Works under any ASGI framework (Starlette, FastAPI, Django's ASGI handler,
Quart, Litestar) with no framework import::

    from roasproof.asgi import RoasproofMiddleware

    app = RoasproofMiddleware(app, trusted_proxies=1)
    # or, in Starlette / FastAPI:
    app.add_middleware(RoasproofMiddleware, trusted_proxies=1)

It is pure ASGI rather than Starlette's ``BaseHTTPMiddleware`` because a
``ContextVar`` set in the latter does not reliably reach the endpoint. It runs
on every request of the host app, so it does almost nothing: it binds a *lazy*
capture, and headers, cookies and the query string are only parsed if a
conversion is tracked during the request. It never touches ``receive`` (the
body) or ``send``. Lifespan and websocket scopes pass through untouched.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

from roasproof.capture import (
    TrustedProxies,
    TrustedProxiesSetting,
    context_from_asgi,
    parse_trusted_proxies,
)
from roasproof.context import RequestContext, _bind_request, _current

__all__ = ["RoasproofMiddleware"]

# The same shapes as Starlette's ``starlette.types``, so type checkers accept
# ``app.add_middleware(RoasproofMiddleware)`` without importing Starlette here.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("roasproof")


class RoasproofMiddleware:
    """Bind the visitor's :class:`~roasproof.RequestContext` around each HTTP request.

    ``trusted_proxies`` says which forwarding headers to believe when reading
    the client IP (see :func:`roasproof.capture.parse_trusted_proxies`); by
    default the peer address is used. An invalid value raises
    :class:`~roasproof.ConfigurationError` here, at start-up.

    Installing it twice is harmless: an inner copy that finds the context
    already bound by an outer one passes the request straight through.
    """

    __slots__ = ("app", "trusted_proxies")

    def __init__(self, app: ASGIApp, *, trusted_proxies: TrustedProxiesSetting = None) -> None:
        self.app = app
        self.trusted_proxies: TrustedProxies = parse_trusted_proxies(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = None
        if scope["type"] == "http":
            token = _bind_request(partial(_capture, scope, self.trusted_proxies))
        if token is None:  # not a request, or bound further up already
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


def _capture(scope: Scope, trusted: TrustedProxies) -> RequestContext | None:
    """Called on first use of the context; a broken scope costs the context, not the request."""
    try:
        return context_from_asgi(scope, trusted_proxies=trusted)
    except Exception as exc:  # the host's request must never fail because of us
        logger.warning(
            "roasproof: could not read the request context (%s); "
            "the conversion is sent without the visitor's identifiers",
            type(exc).__name__,
        )
        return None
