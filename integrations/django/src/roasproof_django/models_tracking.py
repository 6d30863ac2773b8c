"""Conversions from model saves: ``track_model(Order, event="purchase", when=...)``.

Most Django shops know an order is paid when a row is saved, often by a payment
webhook rather than by the visitor's own request. :func:`track_model` connects a
``post_save`` receiver (with a ``dispatch_uid``, so ``ready()`` running twice
connects once) that:

- skips ``raw=True`` saves (``loaddata`` fixtures are not conversions);
- snapshots the visitor's context *at save time*, when the request is still bound,
  and tracks inside ``transaction.on_commit``: a rolled-back order (outer block or
  savepoint) sends nothing, an autocommit save tracks at once;
- derives the event_id from the primary key (``purchase_42``, the id
  ``{% roasproof_event_id "purchase" order.pk %}`` renders for the pixel), so
  re-saves and status flips never count twice: the outbox and the ingest API both
  refuse an event_id they already hold.

Orders paid outside the visitor's request (webhook, admin, shell, Celery) keep the
visitor with the order: store :func:`capture_visitor` in a ``JSONField`` at
checkout and pass its name as ``visitor_field``. A non-empty stored visitor wins
over the current request, which for a webhook is the payment provider's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import roasproof
from django.db import models, transaction
from django.db.models.signals import post_save
from roasproof.context import RequestContext, bind_context, current_context

from roasproof_django.conf import client_flags

__all__ = ["TrackedModel", "capture_visitor", "event_id_for", "track_model", "tracked_models"]

logger = logging.getLogger("roasproof.django")

When = Callable[[Any, bool], bool]
Fields = Callable[[Any], Mapping[str, Any]]
EventId = Callable[[Any], str]


@dataclass(frozen=True, slots=True)
class TrackedModel:
    """One registration: which saves of ``label`` are an ``event`` conversion."""

    label: str
    event: str
    when: When | None = None
    fields: Fields | None = None
    event_id: EventId | None = None
    visitor_field: str | None = None

    def event_id_of(self, instance: models.Model) -> str:
        if self.event_id is not None:
            return self.event_id(instance)
        return roasproof.make_event_id(self.event, instance.pk)


_registry: dict[tuple[str, str], TrackedModel] = {}


def capture_visitor() -> dict[str, str]:
    """The current visitor's identifiers as a dict for a ``JSONField`` (``{}`` outside a request).

    Holds the ``_sgnl_vid`` visitor id, click ids, IP address and user agent;
    never an email or phone. Store it with the order at checkout so a later
    save (webhook, admin, task) can still attribute the conversion.
    """
    context = current_context()
    return context.to_dict() if context is not None else {}


def track_model(
    model: type[models.Model] | str,
    *,
    event: str = "purchase",
    when: When | None = None,
    fields: Fields | None = None,
    event_id: EventId | None = None,
    visitor_field: str | None = None,
) -> TrackedModel:
    """Track ``event`` whenever a ``model`` row is saved and ``when(instance, created)`` holds.

    ``model`` is a class or an ``"app_label.ModelName"`` label (resolved lazily,
    so settings can name a model before apps are loaded). ``fields(instance)``
    returns the event's fields (``value``, ``currency``, ``user_data``,
    ``custom_data``...). ``event_id(instance)`` overrides the default
    ``make_event_id(event, instance.pk)``, e.g. when two tracked models share
    an event name and could share a primary key. Registering the same model and
    event again replaces the previous registration.
    """
    label = model if isinstance(model, str) else model._meta.label
    spec = TrackedModel(label, event, when, fields, event_id, visitor_field)
    _registry[(label.lower(), event)] = spec
    post_save.connect(
        _receiver,
        sender=model,
        weak=False,
        dispatch_uid=f"roasproof_django.track_model:{label.lower()}",
    )
    return spec


def tracked_models() -> tuple[TrackedModel, ...]:
    """Every registration, for the system checks and the docs."""
    return tuple(_registry.values())


def event_id_for(instance: models.Model, event: str) -> str:
    """The event_id a save of ``instance`` sends for ``event`` (what the pixel must carry)."""
    spec = _registry.get((instance._meta.label_lower, event))
    if spec is None:
        return roasproof.make_event_id(event, instance.pk)
    return spec.event_id_of(instance)


def _receiver(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool,
    using: str,
    **kwargs: Any,
) -> None:
    if raw:
        return
    enabled, strict = client_flags()
    if not enabled:
        return
    label = instance._meta.label_lower
    for (spec_label, _event), spec in list(_registry.items()):
        if spec_label == label:
            _on_save(spec, instance, created, using, strict)


def _on_save(
    spec: TrackedModel, instance: models.Model, created: bool, using: str, strict: bool
) -> None:
    """Decide and snapshot now, in the saving request; track after the commit."""
    try:
        if spec.when is not None and not spec.when(instance, created):
            return
        fields = dict(spec.fields(instance)) if spec.fields is not None else {}
        fields.setdefault("event_id", spec.event_id_of(instance))
        context = _visitor_of(spec, instance)
    except Exception as exc:
        if strict:
            raise
        _log_failure(spec, "preparing", exc)
        return

    def track_after_commit() -> None:
        _track(spec, context, fields, strict)

    # robust: a tracking failure must not stop the host's other on_commit callbacks.
    transaction.on_commit(track_after_commit, using=using, robust=not strict)


def _visitor_of(spec: TrackedModel, instance: models.Model) -> RequestContext | None:
    stored = getattr(instance, spec.visitor_field, None) if spec.visitor_field else None
    if isinstance(stored, Mapping) and stored:
        return RequestContext.from_dict(dict(stored))
    return current_context()


def _track(
    spec: TrackedModel, context: RequestContext | None, fields: dict[str, Any], strict: bool
) -> None:
    # An empty context, not "none bound": the commit may run inside some other request.
    try:
        with bind_context(context or RequestContext()):
            roasproof.track(spec.event, **fields)
    except Exception as exc:
        if strict:
            raise
        _log_failure(spec, "tracking", exc)


def _log_failure(spec: TrackedModel, stage: str, exc: Exception) -> None:
    """Log the failure without PII: roasproof's own messages are PII-free, others are not shown."""
    detail = str(exc) if isinstance(exc, roasproof.RoasproofError) else type(exc).__name__
    logger.error(
        "roasproof: %s the %r conversion of a %s failed (%s); the save itself is unaffected",
        stage,
        spec.event,
        spec.label,
        detail,
    )
