"""Views the tests drive through the WSGI test client and the ASGI async client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any, ClassVar

import roasproof
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from roasproof import conversion, track_conversion

from djangotest.models import Order
from roasproof_django import capture_visitor


def _context() -> dict[str, Any]:
    context = roasproof.current_context()
    return {"bound": context is not None, **(context.to_dict() if context else {})}


def context_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_context())


async def async_context_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(_context())


def streaming(request: HttpRequest) -> StreamingHttpResponse:
    def body() -> Iterator[bytes]:
        yield json.dumps(_context()).encode()  # runs after the middleware returned

    return StreamingHttpResponse(body(), content_type="application/json")


async def async_streaming(request: HttpRequest) -> StreamingHttpResponse:
    async def body() -> AsyncIterator[bytes]:
        yield json.dumps(_context()).encode()

    return StreamingHttpResponse(body(), content_type="application/json")


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("boom")


def read_body(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"length": len(request.body), **_context()})


@csrf_exempt
def checkout(request: HttpRequest) -> JsonResponse:
    status = request.POST.get("status", "paid")
    order = Order.objects.create(
        status=status,
        total=Decimal(request.POST.get("total", "49.90")),
        email=request.POST.get("email", ""),
        visitor=capture_visitor(),
    )
    if request.POST.get("fail"):
        raise RuntimeError("payment step failed after the order was saved")
    return JsonResponse({"order": order.pk})


@csrf_exempt
async def async_checkout(request: HttpRequest) -> JsonResponse:
    order = await Order.objects.acreate(
        status="paid", total=Decimal("19.00"), email="ada@example.com", visitor=capture_visitor()
    )
    return JsonResponse({"order": order.pk})


@csrf_exempt
def payment_webhook(request: HttpRequest, pk: int) -> JsonResponse:
    """The payment provider's server calls this: its request is not the visitor's."""
    order = Order.objects.get(pk=pk)
    order.status = "paid"
    order.save()
    return JsonResponse({"order": order.pk, **_context()})


async def slow_async(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(float(request.GET.get("delay", "0")))
    roasproof.track("lead", event_id=f"lead_{request.GET['n']}")
    return JsonResponse(_context())


def slow_sync(request: HttpRequest) -> JsonResponse:
    time.sleep(float(request.GET.get("delay", "0")))
    roasproof.track("lead", event_id=f"lead_{request.GET['n']}")
    return JsonResponse(_context())


@track_conversion("purchase", currency="EUR")
@csrf_exempt  # below the decorator: its attribute must survive functools.wraps
def decorated_checkout(request: HttpRequest) -> JsonResponse:
    conversion.update(event_id=roasproof.make_event_id("purchase", 7), value=Decimal("7.00"))
    return JsonResponse({"ok": True})


@csrf_exempt
@track_conversion("purchase", currency="EUR")
def decorated_order_checkout(request: HttpRequest) -> JsonResponse:
    """A decorator and track_model on the same checkout: one purchase, not two."""
    order = Order.objects.create(status="paid", total=Decimal("12.00"), visitor=capture_visitor())
    conversion.update(event_id=roasproof.make_event_id("purchase", order.pk), value=order.total)
    return JsonResponse({"order": order.pk})


@track_conversion("purchase", currency="EUR")
async def decorated_async_checkout(request: HttpRequest) -> JsonResponse:
    await asyncio.sleep(0)
    conversion.update(event_id=roasproof.make_event_id("purchase", 8), value=Decimal("8.00"))
    return JsonResponse({"ok": True})


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(track_conversion("signup"), name="post")
class SignupView(View):
    def post(self, request: HttpRequest) -> JsonResponse:
        conversion.update(event_id="signup_cbv")
        return JsonResponse({"ok": True})


class LeadAPIView(APIView):
    authentication_classes: ClassVar[list[Any]] = []
    permission_classes: ClassVar[list[Any]] = []

    @method_decorator(track_conversion("lead"))
    def post(self, request: Request) -> Response:
        conversion.update(event_id="lead_drf", user_data={"email": request.data["email"]})
        return Response({"ok": True}, status=201)
