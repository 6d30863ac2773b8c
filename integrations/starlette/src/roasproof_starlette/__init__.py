"""roasproof for Starlette and FastAPI: capture each visitor's identifiers, close on shutdown.

::

    import roasproof
    from roasproof_starlette import RoasproofMiddleware, lifespan

    roasproof.init()                                    # or ROASPROOF_* env variables
    app = FastAPI(lifespan=lifespan())                  # closes the client on shutdown
    app.add_middleware(RoasproofMiddleware, trusted_proxies=1)

The middleware is the core pure ASGI middleware (:mod:`roasproof.asgi`), not a
``BaseHTTPMiddleware``: the context it binds reaches async endpoints, sync
endpoints in the threadpool, dependencies and background tasks. Lifespan and
websocket scopes pass through untouched; it never reads the body.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from starlette.requests import HTTPConnection

import roasproof
from roasproof.asgi import ASGIApp
from roasproof.asgi import RoasproofMiddleware as _CoreMiddleware
from roasproof.capture import TrustedProxiesSetting, context_from_asgi
from roasproof.context import RequestContext, current_context

__all__ = ["RoasproofMiddleware", "VisitorContext", "__version__", "lifespan", "visitor_context"]

__version__ = "0.1.0"

logger = logging.getLogger("roasproof")
_AppT = TypeVar("_AppT")
Lifespan = Callable[[_AppT], AbstractAsyncContextManager[Any]]
_warned_missing = False


class RoasproofMiddleware(_CoreMiddleware):
    """The core ASGI middleware, with the ``ROASPROOF_*`` environment as defaults.

    ``trusted_proxies`` defaults to ``ROASPROOF_TRUSTED_PROXIES`` (a hop count
    or comma-separated networks), else none: the peer address is the client.
    Listed twice, the inner copy passes through. There is no on/off switch:
    capture is lazy (nothing is parsed unless a conversion is tracked) and a
    disabled client (``ROASPROOF_ENABLED=false``) sends nothing.
    """

    __slots__ = ()

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: TrustedProxiesSetting = None,
    ) -> None:
        if trusted_proxies is None:
            trusted_proxies = os.environ.get("ROASPROOF_TRUSTED_PROXIES") or None
        super().__init__(app, trusted_proxies=trusted_proxies)


async def visitor_context(conn: HTTPConnection) -> RequestContext:
    """The visitor's context: ``Annotated[RequestContext, Depends(visitor_context)]``.

    Reads what :class:`RoasproofMiddleware` bound. Without the middleware it
    captures from the request itself (peer address only, no proxy trust) and
    warns once, since conversions tracked elsewhere would miss the context.
    An ``async def`` on purpose: it runs on the event loop, no thread hop.
    """
    bound = current_context()
    if bound is not None:
        return bound
    global _warned_missing
    if not _warned_missing:
        _warned_missing = True
        logger.warning(
            "roasproof: RoasproofMiddleware is not installed, so conversions tracked in "
            "this app carry no visitor context. Fix: app.add_middleware(RoasproofMiddleware)"
        )
    return context_from_asgi(conn.scope)


try:
    from fastapi import Depends
except ImportError:  # plain Starlette: the alias needs FastAPI's Depends
    pass
else:
    #: ``def checkout(visitor: VisitorContext)``: the visitor's context in a FastAPI endpoint.
    VisitorContext = Annotated[RequestContext, Depends(visitor_context)]


def lifespan(
    inner: Lifespan[_AppT] | None = None,
    *,
    client: roasproof.Client | None = None,
    timeout: float | None = 10.0,
) -> Lifespan[_AppT]:
    """A lifespan that closes the client on shutdown, around your own ``inner`` lifespan.

    ``FastAPI(lifespan=lifespan())`` or ``Starlette(lifespan=lifespan(my_lifespan))``.
    On shutdown, after ``inner`` has finished (it may still track events), the
    client (default: the default client) flushes within ``timeout`` seconds
    and stops; undelivered events stay in the outbox for the next start.
    ``inner``'s state (what it yields) is passed through.
    """

    @asynccontextmanager
    async def run(app: _AppT) -> AsyncIterator[Any]:
        try:
            if inner is None:
                yield None
            else:
                async with inner(app) as state:
                    yield state
        finally:
            if client is not None:
                await client.aclose(timeout)
            else:
                await anyio.to_thread.run_sync(roasproof.close, timeout)

    return run
