from __future__ import annotations

from django.urls import path

from shop import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("product/<slug:slug>/", views.product, name="product"),
    path("cart/add/", views.add_to_cart, name="add_to_cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("thank-you/<int:pk>/", views.thank_you, name="thank_you"),
    path("webhooks/payment/", views.payment_webhook, name="payment_webhook"),
]
