"""WSGI middleware that binds the request context while the application runs.

Works under any WSGI framework (Flask, Django, Pyramid, Bottle) with no
framework import::

    from roasproof.wsgi import RoasproofMiddleware

    app.wsgi_app = RoasproofMiddleware(app.wsgi_app, trusted_proxies=1)  # Flask
    application = RoasproofMiddleware(get_wsgi_application())            # Django

It binds a *lazy* capture: the environ is only read if a conversion is tracked
during the request, so requests that track nothing pay almost nothing. The
body (``wsgi.input``) is never read.

The context is bound while the application is called and reset when it
returns, also when it raises. A WSGI server iterates the response body after
that, so code running inside a streamed body (a generator response) sees no
context: track conversions in the view, or bind the context yourself with
:func:`roasproof.bind_context` inside the generator.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from roasproof.capture import (
    TrustedProxies,
    TrustedProxiesSetting,
    context_from_wsgi,
    parse_trusted_proxies,
)
from roasproof.context import RequestContext, _bind_request, _current

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["RoasproofMiddleware"]

logger = logging.getLogger("roasproof")


class RoasproofMiddleware:
    """Bind the visitor's :class:`~roasproof.RequestContext` around each WSGI call.

    ``trusted_proxies`` says which forwarding headers to believe when reading
    the client IP (see :func:`roasproof.capture.parse_trusted_proxies`); by
    default ``REMOTE_ADDR`` is used, which is right behind Werkzeug's
    ``ProxyFix`` or a server that already resolved the client. An invalid value
    raises :class:`~roasproof.ConfigurationError` here, at start-up.

    Installing it twice is harmless: an inner copy that finds the context
    already bound by an outer one passes the request straight through.
    """

    __slots__ = ("app", "trusted_proxies")

    def __init__(
        self, app: WSGIApplication, *, trusted_proxies: TrustedProxiesSetting = None
    ) -> None:
        self.app = app
        self.trusted_proxies: TrustedProxies = parse_trusted_proxies(trusted_proxies)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = _bind_request(partial(_capture, environ, self.trusted_proxies))
        if token is None:  # bound further up already
            return self.app(environ, start_response)
        try:
            return self.app(environ, start_response)
        finally:
            _current.reset(token)


def _capture(environ: Mapping[str, Any], trusted: TrustedProxies) -> RequestContext | None:
    """Called on first use of the context; a broken environ costs the context, not the request."""
    try:
        return context_from_wsgi(environ, trusted_proxies=trusted)
    except Exception as exc:  # the host's request must never fail because of us
        logger.warning(
            "roasproof: could not read the request context (%s); "
            "the conversion is sent without the visitor's identifiers",
            type(exc).__name__,
        )
        return None
