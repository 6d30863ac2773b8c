from __future__ import annotations

from django.urls import path

from djangotest import views

urlpatterns = [
    path("context/", views.context_view),
    path("acontext/", views.async_context_view),
    path("boom/", views.boom),
    path("stream/", views.streaming),
    path("astream/", views.async_streaming),
    path("body/", views.read_body),
    path("checkout/", views.checkout),
    path("acheckout/", views.async_checkout),
    path("webhook/<int:pk>/", views.payment_webhook),
    path("slow/", views.slow_sync),
    path("aslow/", views.slow_async),
    path("decorated/", views.decorated_checkout),
    path("adecorated/", views.decorated_async_checkout),
    path("decorated-order/", views.decorated_order_checkout),
    path("signup/", views.SignupView.as_view()),
    path("api/lead/", views.LeadAPIView.as_view()),
]
