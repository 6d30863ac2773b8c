"""Middleware placed around ours in the tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import roasproof
from django.http import HttpRequest, HttpResponseBase


class SyncOnlyMiddleware:
    """Plain old-style middleware: sync only, so under ASGI Django hops threads around it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        context = roasproof.current_context()
        response["X-Sync-Saw"] = (context.visitor_id if context else None) or "-"
        return response


class _Tripwire:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise AssertionError(f"request.{self._name}.{attribute} was touched")

    def __bool__(self) -> bool:
        raise AssertionError(f"request.{self._name} was touched")


class TripwireMiddleware:
    """Puts tripwires on request.user and request.session before our middleware runs."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        request.user = _Tripwire("user")  # type: ignore[assignment]
        request.session = _Tripwire("session")  # type: ignore[assignment]
        return self.get_response(request)
