"""Settings of the test project: SQLite as "default", PostgreSQL as "postgres".

The PostgreSQL alias exists when the server on 127.0.0.1:5432 answers, and
always under ``CI=true``: there its absence must fail the run, not skip tests.
"""

from __future__ import annotations

import os
import socket
from typing import Any

SECRET_KEY = "roasproof-django-tests"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
ROOT_URLCONF = "djangotest.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "rest_framework",
    "roasproof_django",
    "djangotest",
]

MIDDLEWARE = [
    "roasproof_django.middleware.RoasproofMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]

ROASPROOF = {
    "API_KEY": "test-key",
    "ENDPOINT": "http://127.0.0.1:9",
    "OUTBOX": ":memory:",
}


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


POSTGRES = os.environ.get("CI") == "true" or _postgres_up()

DATABASES: dict[str, dict[str, Any]] = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
}
if POSTGRES:
    DATABASES["postgres"] = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "127.0.0.1",
        "PORT": "5432",
        "USER": "postgres",
        "NAME": "test",
        "TEST": {"NAME": f"test_roasproof_django_{os.getpid()}"},
    }
