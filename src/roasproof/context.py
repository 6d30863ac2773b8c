"""The visitor's request context, bound for the duration of one request.

Adapters bind a :class:`RequestContext` (or a function that builds one) with
:func:`bind_context`; :func:`roasproof.track` reads it with
:func:`current_context` to fill the gaps of a conversion. Binding a function
keeps the middleware cheap: cookies, headers and the query string are only
parsed when a conversion actually fires during the request.

There is exactly one :class:`~contextvars.ContextVar`; it is set with a token
and reset in ``finally``, so nothing leaks from one request into the next,
across threads or across interleaved coroutines.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import asdict, dataclass, fields
from types import TracebackType
from typing import Any, Self

__all__ = ["RequestContext", "bind_context", "current_context"]


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What the visitor's request tells us about who they are.

    Every field is optional. ``visitor_id`` is the ``_sgnl_vid`` cookie set by
    the tracking script; it lets the ingest API merge the identifiers the
    browser saw (click ids, fbc/fbp, IP) into a server-side conversion.
    ``fbc`` is the ``_fbc`` cookie, or built from ``fbclid`` when the cookie is
    absent. None of these values are hashed: ad platforms want them as is.
    """

    visitor_id: str | None = None
    client_ip_address: str | None = None
    client_user_agent: str | None = None
    url: str | None = None
    fbc: str | None = None
    fbp: str | None = None
    fbclid: str | None = None
    gclid: str | None = None
    wbraid: str | None = None
    gbraid: str | None = None
    ttclid: str | None = None

    def to_dict(self) -> dict[str, str]:
        """The non-empty fields, e.g. to keep the visitor's identifiers with an order."""
        return {key: value for key, value in asdict(self).items() if value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a context saved with :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: str(v) for k, v in data.items() if k in known and v})


ContextSource = RequestContext | Callable[[], RequestContext | None]


class _Binding:
    """A bound context, built on first use and then cached.

    ``within_middleware``: bound by roasproof's middleware for a request, or inside
    such a binding; a second copy of the middleware further down passes through.
    """

    __slots__ = ("_source", "_value", "within_middleware")

    def __init__(self, source: ContextSource, within_middleware: bool) -> None:
        self._source = source
        self._value: RequestContext | None = source if isinstance(source, RequestContext) else None
        self.within_middleware = within_middleware

    def resolve(self) -> RequestContext | None:
        if self._value is None and not isinstance(self._source, RequestContext):
            self._value = self._source()
            self._source = self._value or RequestContext()
        return self._value


_current: ContextVar[_Binding | None] = ContextVar("roasproof_request_context", default=None)


def _bind_request(source: ContextSource) -> Token[_Binding | None] | None:
    """Bind ``source`` for one request, as roasproof's middleware does; reset with the token.

    None when a copy of the middleware further up already bound the request (the
    marker travels with the bound context: where that is lost, for example behind
    Starlette's ``BaseHTTPMiddleware``, this copy binds again).
    """
    outer = _current.get()
    if outer is not None and outer.within_middleware:
        return None
    return _current.set(_Binding(source, within_middleware=True))


def current_context() -> RequestContext | None:
    """The context bound for the current request, or ``None`` outside a request."""
    binding = _current.get()
    return None if binding is None else binding.resolve()


class bind_context:  # lowercase: used like a function, as contextlib.suppress is
    """Bind ``source`` as the current request context inside a ``with`` block.

    ``source`` is a :class:`RequestContext`, or a function returning one that
    is called only if something asks for the context (lazy capture). The
    previous context is restored on exit, also when the block raises::

        with bind_context(RequestContext(visitor_id="v1")):
            roasproof.track("lead")
    """

    __slots__ = ("_binding", "_token")

    def __init__(self, source: ContextSource) -> None:
        outer = _current.get()
        self._binding = _Binding(source, outer is not None and outer.within_middleware)
        self._token: Token[_Binding | None] | None = None

    def __enter__(self) -> None:
        self._token = _current.set(self._binding)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
