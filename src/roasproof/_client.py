"""The Client: validate a conversion, build its payload, then send it now or track it durably.

Two ways out, on purpose:

- :meth:`Client.track` is for request handlers. It never touches the network
  and never raises in production: the event goes to the delivery backend
  (the SQLite outbox by default), which retries until the ingest API answers.
- :meth:`Client.send` / :meth:`Client.asend` POST one event right now and raise
  the typed error of the answer. No retries: that is the delivery engine's job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import traceback
import uuid
import weakref
from collections.abc import Collection, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx

from roasproof import _http
from roasproof._config import DeliveredHook, ErrorHook, Settings
from roasproof._delivery._base import Delivery, RejectedSummary
from roasproof._http import DeliveryResult
from roasproof._payload import build_payload, encode_body
from roasproof._plain import plain_body
from roasproof.context import current_context
from roasproof.errors import ConfigurationError, InvalidEvent, RoasproofError
from roasproof.events import Event, make_event

__all__ = ["Client", "ClientOptions"]

logger = logging.getLogger("roasproof")

#: Every live Client, weakly: a forked child gets fresh locks (see _after_fork_in_child).
_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """Give every Client of a forked child a new lock.

    Another thread of the parent may have held a client's lock at the moment of the
    fork; that thread does not exist in the child, so the inherited lock would stay
    held forever and the child's next ``track()`` would deadlock.
    """
    for client in list(_clients):
        client._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class ClientOptions(TypedDict, total=False):
    """Every setting of :class:`Client` and :func:`roasproof.init`; see the configuration page."""

    endpoint: str | None
    strict: bool | None
    enabled: bool | None
    default_phone_region: str | None
    custom_events: Collection[str] | str | None
    outbox: str | os.PathLike[str] | None
    durability: str | None
    senders: str | None
    max_in_flight: int | None
    max_event_age: float | timedelta | None
    connect_timeout: float | None
    read_timeout: float | None
    transport: str | None
    on_error: ErrorHook | None
    on_delivered: DeliveredHook | None


class Client:
    """Sends conversions to the roasproof ingest API.

    Settings come from the arguments, then ``ROASPROOF_*`` environment variables,
    then defaults (see :class:`~roasproof._config.Settings`); invalid ones raise
    :class:`~roasproof.ConfigurationError` here, not at the first purchase.
    ``delivery`` replaces the default durable outbox (``roasproof.testing`` uses
    it to capture payloads).

    .. versionadded:: 0.1.0
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        delivery: Delivery | None = None,
        **settings: Unpack[ClientOptions],
    ) -> None:
        self._settings = Settings.resolve(api_key, **settings)
        self._delivery = delivery
        self._explicit_delivery = delivery is not None
        self._lock = threading.Lock()
        self._counts = {"tracked": 0, "duplicates": 0, "invalid": 0, "errors": 0, "inert": 0}
        self._warned_inert = False
        self._pid = os.getpid()
        self._http: httpx.Client | None = None
        self._ahttp: httpx.AsyncClient | None = None
        _clients.add(self)

    def __repr__(self) -> str:
        settings = self._settings
        key = "<set>" if settings.api_key else "<missing>"
        return (
            f"Client(endpoint={settings.endpoint!r}, api_key={key!r}, "
            f"enabled={settings.enabled!r}, strict={settings.strict!r})"
        )

    @property
    def settings(self) -> Settings:
        """The resolved, validated settings (the API key is masked in their repr)."""
        return self._settings

    # -- payloads --------------------------------------------------------------------

    def _event(self, event: str | Event, fields: dict[str, Any]) -> Event:
        custom = self._settings.custom_events
        return make_event(event, custom_events=custom, **fields)

    def _payload(self, event: Event, phone_region: str | None) -> dict[str, Any]:
        region = phone_region or self._settings.default_phone_region
        return build_payload(event, context=current_context(), default_phone_region=region)

    def build_payload(
        self, event: str | Event, *, phone_region: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """The exact JSON body :meth:`send` would POST, with the current request context.

        Pure: nothing is sent or stored. Raises :class:`~roasproof.InvalidEvent`.
        """
        return self._payload(self._event(event, fields), phone_region)

    # -- direct send -----------------------------------------------------------------

    def _prepare(
        self, event: str | Event, phone_region: str | None, fields: dict[str, Any]
    ) -> tuple[str, dict[str, str], bytes] | DeliveryResult:
        """(url, headers, body) of the POST, or the inert result when disabled."""
        valid = self._event(event, fields)
        if not self._settings.enabled:
            logger.debug("roasproof is disabled; event %r not sent", valid.event_id)
            return DeliveryResult(valid.event_id, 0, ())
        if self._settings.api_key is None:
            raise ConfigurationError(
                "cannot send: no API key. Fix: pass api_key= to Client/init or set "
                "ROASPROOF_API_KEY (create a key on the Setup & API keys page)"
            )
        body = encode_body(self._payload(valid, phone_region))
        headers = _http.request_headers(self._settings.api_key, valid.event_id)
        return _http.events_url(self._settings.endpoint), headers, body

    def _timeout(self) -> httpx.Timeout:
        connect, read = self._settings.connect_timeout, self._settings.read_timeout
        return httpx.Timeout(connect=connect, read=read, write=read, pool=connect)

    def _sync_http(self) -> httpx.Client:
        with self._lock:
            if self._http is not None and self._pid != os.getpid():
                # A forked child must not share the parent's sockets: drop its copies
                # (closing a copy in the child leaves the parent's connection open).
                self._http.close()
                self._http = None
            if self._http is None:
                self._pid = os.getpid()
                self._http = httpx.Client(timeout=self._timeout(), follow_redirects=False)
            return self._http

    def send(
        self, event: str | Event, *, phone_region: str | None = None, **fields: Any
    ) -> DeliveryResult:
        """POST one event now and return the 202's :class:`DeliveryResult`.

        Raises :class:`~roasproof.InvalidEvent` before sending, then the typed
        :class:`~roasproof.DeliveryError` of the answer. Does not retry; sending
        the same event again is safe (same event_id). When disabled
        (``enabled=False``) nothing is sent and ``status_code`` is ``0``.
        """
        prepared = self._prepare(event, phone_region, fields)
        if isinstance(prepared, DeliveryResult):
            return prepared
        url, headers, body = prepared
        event_id = headers["Idempotency-Key"]
        try:
            response = self._sync_http().post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise _http.classify_exception(exc, event_id) from None
        return _outcome(response, event_id)

    async def asend(
        self, event: str | Event, *, phone_region: str | None = None, **fields: Any
    ) -> DeliveryResult:
        """The async twin of :meth:`send`, on an :class:`httpx.AsyncClient`.

        The connection pool belongs to the event loop that first used it; close
        it with :meth:`aclose` (or ``async with``) on that loop.
        """
        prepared = self._prepare(event, phone_region, fields)
        if isinstance(prepared, DeliveryResult):
            return prepared
        url, headers, body = prepared
        event_id = headers["Idempotency-Key"]
        if self._ahttp is None:
            self._ahttp = httpx.AsyncClient(timeout=self._timeout(), follow_redirects=False)
        try:
            response = await self._ahttp.post(url, content=body, headers=headers)
        except httpx.TransportError as exc:
            raise _http.classify_exception(exc, event_id) from None
        return _outcome(response, event_id)

    # -- durable track ---------------------------------------------------------------

    def track(self, event: str | Event, *, phone_region: str | None = None, **fields: Any) -> str:
        """Validate the event, make it durable for background delivery, return its event_id.

        Never touches the network. In production (``strict=False``) it never
        raises: an invalid event is logged at ERROR (field names, no PII), passed
        to ``on_error``, counted and kept as a summary; with ``strict=True`` the
        :class:`~roasproof.InvalidEvent` is raised. Tracking an event_id that is
        already queued is a no-op returning the same id.
        """
        try:
            delivery = self._active_delivery()
            if delivery is not None and (plain := plain_body(event, fields)) is not None:
                # The usual event, validated without building the models (_plain.py).
                event_id, name, body = plain
                fresh = delivery.enqueue(event_id, name, body)
            else:
                valid = self._event(event, fields)
                event_id = valid.event_id
                if delivery is None:
                    self._count("inert")
                    return event_id
                body = encode_body(self._payload(valid, phone_region))
                fresh = delivery.enqueue(event_id, valid.event, body)
        except InvalidEvent as exc:
            if self._settings.strict:
                raise
            return self._rejected(exc, event, fields)
        except Exception as exc:
            if self._settings.strict:
                raise
            return self._failed(exc, event, fields)
        self._count("tracked" if fresh else "duplicates")
        return event_id

    def _active_delivery(self) -> Delivery | None:
        """The delivery backend, created on first use; ``None`` while inert."""
        if self._delivery is not None:
            return self._delivery if self._settings.enabled else None
        if not self._settings.configured:
            self._warn_inert()
            return None
        with self._lock:
            # False only when another thread created it while we waited for the lock.
            if self._delivery is None:  # pragma: no branch
                # Imported late: a client that only sends never loads the engine.
                from roasproof._delivery import create_delivery

                self._delivery = create_delivery(self._settings)
            return self._delivery

    def _warn_inert(self) -> None:
        if not self._settings.enabled:
            return
        if self._settings.strict:
            raise ConfigurationError(
                "cannot track: no API key and strict=True. Fix: pass api_key= or set "
                "ROASPROOF_API_KEY, or set ROASPROOF_ENABLED=false to turn roasproof off"
            )
        if not self._warned_inert:
            self._warned_inert = True
            logger.warning(
                "roasproof is not configured (no API key): events are validated and dropped. "
                "Set ROASPROOF_API_KEY (or pass api_key=), or ROASPROOF_ENABLED=false "
                "to silence this warning"
            )

    def _rejected(self, exc: InvalidEvent, event: str | Event, fields: Mapping[str, Any]) -> str:
        event_id = _given_event_id(event, fields)
        logger.error(
            "roasproof: invalid %r event not tracked (event_id=%s); fix %s: %s",
            exc.event,
            event_id,
            ", ".join(exc.fields),
            exc,
        )
        self._count("invalid")
        summary = RejectedSummary(exc.event, event_id, tuple(exc.fields), str(exc))
        try:
            delivery = self._active_delivery()
            if delivery is not None:
                delivery.record_rejected(summary)
        except Exception as inner:  # the summary is a courtesy; never let it raise
            self._failed(inner, event, fields, report=False)
        self._call_on_error(exc)
        return event_id

    def _failed(
        self,
        exc: Exception,
        event: str | Event,
        fields: Mapping[str, Any],
        *,
        report: bool = True,
    ) -> str:
        """Log an unexpected error without its message (it could hold PII), then report it."""
        event_id = _given_event_id(event, fields)
        where = "".join(traceback.format_tb(exc.__traceback__))
        logger.error(
            "roasproof: internal error (%s) while tracking event_id=%s; the event was not "
            "tracked. This is a bug in roasproof or its delivery backend; traceback:\n%s",
            type(exc).__qualname__,
            event_id,
            where,
        )
        self._count("errors")
        if report:
            self._call_on_error(exc)
        return event_id

    def _call_on_error(self, exc: Exception) -> None:
        hook = self._settings.on_error
        if hook is None:
            return
        try:
            hook(exc)
        except Exception as hook_error:  # a broken hook must not break the host request
            logger.error("roasproof: the on_error hook raised %s", type(hook_error).__qualname__)

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    # -- lifecycle -------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """This client's counters (tracked, duplicates, invalid, errors, inert) + the delivery's."""
        with self._lock:
            counts = dict(self._counts)
        if self._delivery is not None:
            counts.update(self._delivery.stats())
        return counts

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until tracked events are delivered; ``True`` if nothing is left pending."""
        return True if self._delivery is None else self._delivery.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush within ``timeout``, stop background work, close connections.

        Undelivered events stay in the outbox for the next process.
        """
        if self._delivery is not None:
            self._delivery.close(timeout)
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    async def aclose(self, timeout: float | None = None) -> None:
        """The async twin of :meth:`close`; the blocking flush runs in a worker thread."""
        await asyncio.to_thread(self.close, timeout)
        ahttp, self._ahttp = self._ahttp, None
        if ahttp is not None:
            await ahttp.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _outcome(response: httpx.Response, event_id: str) -> DeliveryResult:
    outcome = _http.classify_response(
        response.status_code, response.headers, response.content, event_id
    )
    if isinstance(outcome, RoasproofError):
        raise outcome
    return outcome


def _given_event_id(event: str | Event, fields: Mapping[str, Any]) -> str:
    """The caller's event_id for an event that failed, or a fresh one to return anyway."""
    given = fields.get("event_id")
    if isinstance(given, str) and given:
        return given
    if isinstance(event, Event):
        return event.event_id
    return uuid.uuid4().hex
