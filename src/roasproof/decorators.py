"""``@track_conversion``: fire a conversion when a view succeeds, never break the view.

The decorator is framework-free: it wraps any sync or async callable (a Flask,
Django or FastAPI view, a Celery task, a plain function) and, once the call
has returned successfully, tracks one conversion through the default client
(or the client given, or the one an adapter bound for the request). The
visitor's identifiers come from the bound request context, so the view does
nothing to get visitor_id, IP, user agent and click ids into the event.

What only the view knows (the order id, the total, the customer's email) is
added from inside the view through :data:`conversion`::

    @app.post("/checkout")
    @track_conversion("purchase", currency="EUR")
    def checkout():
        order = place_order()
        conversion.update(
            event_id=make_event_id("purchase", order.id),
            value=order.total,
            user_data={"email": order.email},
        )
        return redirect(url_for("thank_you", order_id=order.id))

Tracking is best effort from the view's point of view: a failure is logged
(without personal data) and passed to ``on_error``; only strict mode raises,
so tests see the mistake while production checkouts never do.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

from roasproof._api import get_client
from roasproof._client import Client
from roasproof.errors import RoasproofError

__all__ = ["PendingConversion", "ViewCall", "bind_client", "conversion", "track_conversion"]

logger = logging.getLogger("roasproof")

_P = ParamSpec("_P")
_R = TypeVar("_R")
_MERGED = frozenset({"user_data", "custom_data"})
ClientSource = Client | Callable[[], Client | None]


@dataclass(frozen=True, slots=True)
class ViewCall:
    """One successful call of a decorated view, as seen by ``when=`` and field callables.

    ``args`` and ``kwargs`` are what the view was called with (Flask URL
    parameters, a Django ``request``, FastAPI parameters), ``result`` is what it
    returned (a response object, a ``(body, status)`` tuple, a dict, ...).
    """

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    result: Any

    @property
    def status_code(self) -> int | None:
        """The HTTP status of ``result`` if it carries one, else ``None``.

        Understands response objects with an integer ``status_code`` (Flask,
        Django, Starlette) and Flask's ``(body, status)`` / ``(body, status,
        headers)`` tuples, with the status as an int or a string like ``"201 CREATED"``.
        """
        result = self.result
        if isinstance(result, tuple) and len(result) in (2, 3):
            return _as_status(result[1])
        return _as_status(getattr(result, "status_code", None))

    @property
    def ok(self) -> bool:
        """The default ``when=``: no status, or a 2xx/3xx status."""
        status = self.status_code
        return status is None or 200 <= status < 400


def _as_status(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        head = value.strip().split(" ", 1)[0]
        return int(head) if head.isascii() and head.isdigit() else None
    return None


class PendingConversion:
    """The conversion a decorated view will fire when it returns, editable inside the view.

    Reach it through :data:`conversion`; it only exists while a view decorated
    with :func:`track_conversion` runs.
    """

    __slots__ = ("event", "fields", "skipped")

    def __init__(self, event: str) -> None:
        self.event = event
        self.fields: dict[str, Any] = {}
        self.skipped = False

    def update(self, fields: Mapping[str, Any]) -> None:
        """Set fields; ``user_data`` and ``custom_data`` mappings are merged key by key.

        ``None`` removes a field. A value of the wrong type is kept as is, for
        the event's validation to name it when the conversion fires.
        """
        for name, value in fields.items():
            given = _as_mapping(value) if name in _MERGED else None
            if given is not None:
                previous = _as_mapping(self.fields.get(name)) or {}
                self.fields[name] = {**previous, **given}
            elif value is None:
                self.fields.pop(name, None)
            else:
                self.fields[name] = value


_pending: ContextVar[PendingConversion | None] = ContextVar(
    "roasproof_pending_conversion", default=None
)
_bound_client: ContextVar[Client | None] = ContextVar("roasproof_bound_client", default=None)


def _as_mapping(value: object) -> Mapping[str, Any] | None:
    """A dict or a pydantic model (``roasproof.UserData``) as a mapping; else ``None``."""
    if isinstance(value, Mapping):
        return value
    dump = getattr(value, "model_dump", None)
    return cast(Mapping[str, Any], dump(exclude_none=True)) if callable(dump) else None


class _Conversion:
    """The in-view API: ``roasproof.conversion.update(...)`` and ``.skip()``."""

    __slots__ = ()

    @property
    def active(self) -> bool:
        """Whether a view decorated with :func:`track_conversion` is running."""
        return _pending.get() is not None

    def update(
        self,
        *,
        event_id: str | None = None,
        value: object = None,
        currency: str | None = None,
        user_data: Mapping[str, Any] | object = None,
        custom_data: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        """Add fields the view only knows now to the pending conversion; they win.

        ``user_data`` and ``custom_data`` merge key by key with the decorator's.
        Called outside a decorated view this logs a warning (raises in strict
        mode) instead of breaking the view.
        """
        pending = self._pending("update")
        if pending is not None:
            given = {"event_id": event_id, "value": value, "currency": currency}
            given.update(user_data=user_data, custom_data=custom_data, **fields)
            pending.update({k: v for k, v in given.items() if v is not None})

    def skip(self) -> None:
        """Do not fire the conversion for this call (a duplicate order, a free order, ...)."""
        pending = self._pending("skip")
        if pending is not None:
            pending.skipped = True

    @staticmethod
    def _pending(method: str) -> PendingConversion | None:
        pending = _pending.get()
        if pending is None:
            message = (
                f"roasproof.conversion.{method}() was called outside a view decorated with "
                "@track_conversion; decorate the view (below @app.route) or call "
                "roasproof.track() directly"
            )
            if _strict(None, _resolve_client(None)):
                raise RoasproofError(message)
            logger.warning(message)
        return pending


#: Edit the conversion of the decorated view that is running: ``conversion.update(...)``.
conversion = _Conversion()


class bind_client:  # lowercase: used like a function, as bind_context is
    """Make ``client`` the one ``@track_conversion`` uses inside a ``with`` block.

    For adapters that give each app its own client (the Flask extension binds
    the app's client for each of its requests). A ``client=`` passed to the
    decorator still wins.
    """

    __slots__ = ("_client", "_token")

    def __init__(self, client: Client | None) -> None:
        self._client = client
        self._token: Token[Client | None] | None = None

    def __enter__(self) -> None:
        self._token = _bound_client.set(self._client)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _bound_client.reset(self._token)
            self._token = None


def _resolve_client(source: ClientSource | None) -> Client | None:
    """The explicit client, else the bound one, else ``None`` (the default client)."""
    if source is None:
        return _bound_client.get()
    return source if isinstance(source, Client) else source()


def _strict(explicit: bool | None, client: Client | None) -> bool:
    """The decorator's ``strict=``, else the client's setting (default client if none)."""
    if explicit is not None:
        return explicit
    try:
        return (client or get_client()).settings.strict
    except Exception:  # a default client that cannot be built: never break the view for it
        return False


def _describe(exc: BaseException) -> str:
    """Our own errors carry no PII by construction; others may (a KeyError of an email)."""
    if isinstance(exc, RoasproofError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (message not logged: it may contain personal data)"


def _is_resolver(value: object) -> bool:
    return callable(value) and not isinstance(value, type)


@dataclass(frozen=True, slots=True)
class _Tracker:
    """What one ``@track_conversion(...)`` was configured with; fires after a call."""

    event: str
    fields: Mapping[str, Any]
    when: Callable[[ViewCall], bool] | None
    client: ClientSource | None
    strict: bool | None
    on_error: Callable[[Exception], object] | None

    def fire(self, pending: PendingConversion, call: ViewCall, view: Callable[..., Any]) -> None:
        if pending.skipped:
            return
        client: Client | None = None
        try:
            client = _resolve_client(self.client)
            if not (call.ok if self.when is None else self.when(call)):
                return
            resolved = self._resolve(call)
            resolved.update(pending.fields)  # what the view said wins
            self._track(client, resolved.fields)
        except Exception as exc:
            if _strict(self.strict, client):
                raise
            self._report(exc, client, view)

    def _resolve(self, call: ViewCall) -> PendingConversion:
        resolved = PendingConversion(self.event)
        resolved.update(
            {
                name: value(call) if _is_resolver(value) else value
                for name, value in self.fields.items()
            }
        )
        return resolved

    def _track(self, client: Client | None, fields: dict[str, Any]) -> None:
        (client or get_client()).track(self.event, **fields)

    def _report(self, exc: Exception, client: Client | None, view: Callable[..., Any]) -> None:
        name = getattr(view, "__qualname__", repr(view))
        logger.warning(
            "roasproof: the %r conversion of %s was not tracked: %s",
            self.event,
            name,
            _describe(exc),
        )
        try:
            hook = self.on_error or (client or get_client()).settings.on_error
        except Exception:  # a default client that cannot be built: the log line must do
            hook = None
        if hook is not None:
            try:
                hook(exc)
            except Exception as hook_exc:
                logger.warning("roasproof: on_error raised %s", _describe(hook_exc))


def track_conversion(
    event: str,
    *,
    event_id: str | Callable[[ViewCall], str | None] | None = None,
    value: object = None,
    currency: str | Callable[[ViewCall], str | None] | None = None,
    user_data: object = None,
    custom_data: object = None,
    when: Callable[[ViewCall], bool] | None = None,
    client: ClientSource | None = None,
    strict: bool | None = None,
    on_error: Callable[[Exception], object] | None = None,
    **fields: Any,
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Track ``event`` each time the decorated view returns successfully.

    Every field (``event_id``, ``value``, ``currency``, ``user_data``,
    ``custom_data`` and any other :class:`roasproof.Event` field such as
    ``url`` or ``site_key``) is either a static value or a function of one
    :class:`ViewCall` argument, called after the view returned::

        @track_conversion("purchase", value=lambda call: call.result.json["total"])

    Values set inside the view with :data:`conversion` win over these.
    ``when`` decides whether to fire (default :attr:`ViewCall.ok`: no
    exception, and a 2xx/3xx status if the result has one). ``client``
    is a :class:`roasproof.Client` or a function returning one; by default
    the client an adapter bound for the request, else the default client.
    ``strict`` (default: the client's setting) makes tracking failures raise;
    otherwise they are logged without personal data and passed to
    ``on_error`` (default: the client's ``on_error``).

    Async views get an async wrapper and sync views a sync one, so frameworks
    still detect a coroutine function; :func:`functools.wraps` keeps the
    view's name and attributes such as ``csrf_exempt``.
    """
    given = {"event_id": event_id, "value": value, "currency": currency}
    given.update(user_data=user_data, custom_data=custom_data, **fields)
    tracker = _Tracker(
        event=event,
        fields={name: v for name, v in given.items() if v is not None},
        when=when,
        client=client,
        strict=strict,
        on_error=on_error,
    )

    def decorate(view: Callable[_P, _R]) -> Callable[_P, _R]:
        if inspect.iscoroutinefunction(view):
            return cast(Callable[_P, _R], _wrap_async(view, tracker))
        return _wrap_sync(view, tracker)

    return decorate


def _wrap_sync(view: Callable[_P, _R], tracker: _Tracker) -> Callable[_P, _R]:
    @functools.wraps(view)
    def tracked_view(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        pending = PendingConversion(tracker.event)
        token = _pending.set(pending)
        try:
            result = view(*args, **kwargs)
        finally:
            _pending.reset(token)
        tracker.fire(pending, ViewCall(args, kwargs, result), view)
        return result

    return tracked_view


def _wrap_async(
    view: Callable[_P, Coroutine[Any, Any, _R]], tracker: _Tracker
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    @functools.wraps(view)
    async def tracked_view(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        pending = PendingConversion(tracker.event)
        token = _pending.set(pending)
        try:
            result = await view(*args, **kwargs)
        finally:
            _pending.reset(token)
        tracker.fire(pending, ViewCall(args, kwargs, result), view)
        return result

    return tracked_view
