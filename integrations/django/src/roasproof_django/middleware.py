"""Bind the visitor's request context for the duration of each request.

One line in ``MIDDLEWARE``. The middleware is both sync and async capable, the
pattern of Django's own ``MiddlewareMixin``: under ASGI it runs as a coroutine
(no thread hop), under WSGI as a plain call. It binds a *lazy* context: the
cookies, headers and query string are only parsed if something asks for them
(a conversion fired during the request), so requests that track nothing pay
for one ContextVar set and reset.

It reads only the WSGI environ or the ASGI scope. It never touches
``request.user``, ``request.session`` or the body: under ASGI a lazy
``request.user`` raises ``SynchronousOnlyOperation`` and reading the body
here would starve the view.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from roasproof.capture import context_from_asgi, context_from_wsgi
from roasproof.context import RequestContext, bind_context

from roasproof_django.conf import client_flags, roasproof_settings

__all__ = ["RoasproofMiddleware", "context_from_request"]

logger = logging.getLogger("roasproof.django")

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


def context_from_request(request: HttpRequest) -> RequestContext | None:
    """The visitor's context for ``request``, from its ASGI scope or WSGI environ.

    Returns ``None`` (and logs why, once per request) when the trusted proxy
    setting is malformed: a bad setting must never break a checkout; the
    system check ``roasproof.E002`` reports it at deploy time.
    """
    try:
        proxies = roasproof_settings.trusted_proxies
        scope: Any = getattr(request, "scope", None)
        if isinstance(scope, dict):
            return context_from_asgi(scope, trusted_proxies=proxies)
        return context_from_wsgi(request.META, trusted_proxies=proxies)
    except Exception:
        if client_flags()[1]:
            raise
        logger.exception("roasproof: could not capture the request context")
        return None


class RoasproofMiddleware:
    """Make :func:`roasproof.current_context` return this request's visitor."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            # Tell Django (and asgiref) that calling this instance returns a coroutine.
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        get_response: Any = self.get_response
        with bind_context(lambda: context_from_request(request)):
            return get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Any = self.get_response
        with bind_context(lambda: context_from_request(request)):
            return await get_response(request)  # type: ignore[no-any-return]
