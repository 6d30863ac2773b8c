"""Settings of the example shop: the three lines roasproof needs are marked.

Configuration comes from the environment, as in production:

- ``ROASPROOF_API_KEY`` and ``ROASPROOF_ENDPOINT`` (the emulator: ``http://127.0.0.1:8765``),
  read by roasproof as the fallback of the ``ROASPROOF`` dict below;
- ``SHOP_DATABASE`` (SQLite file, default ``db.sqlite3`` here), ``SHOP_TRACKING_SCRIPT``
  (default: ``<endpoint>/t.js``).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("SHOP_SECRET_KEY", "example-shop-not-secret")
DEBUG = os.environ.get("SHOP_DEBUG", "") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
USE_TZ = True
ROOT_URLCONF = "django_shop.urls"
WSGI_APPLICATION = "django_shop.wsgi.application"
ASGI_APPLICATION = "django_shop.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "roasproof_django",  # roasproof (1/3)
    "shop",
]

MIDDLEWARE = [
    "roasproof_django.middleware.RoasproofMiddleware",  # roasproof (2/3)
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# roasproof (3/3): API_KEY, ENDPOINT, OUTBOX... fall back to ROASPROOF_* environment variables.
ROASPROOF: dict[str, object] = {
    "DEFAULT_PHONE_REGION": "US",
}

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.messages.context_processors.messages",
                "shop.views.tracking_script",
            ]
        },
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SHOP_DATABASE", str(BASE_DIR / "db.sqlite3")),
    }
}

# The cart lives in a signed cookie: no session table to migrate.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
MESSAGE_STORAGE = "django.contrib.messages.storage.cookie.CookieStorage"

_endpoint = os.environ.get("ROASPROOF_ENDPOINT", "http://127.0.0.1:8765").rstrip("/")
SHOP_TRACKING_SCRIPT = os.environ.get("SHOP_TRACKING_SCRIPT", f"{_endpoint}/t.js")
