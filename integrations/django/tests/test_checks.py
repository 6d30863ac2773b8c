"""System checks: stable ids, a hint for each."""

from __future__ import annotations

from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from roasproof_django import models_tracking
from roasproof_django.checks import MIDDLEWARE_PATH, check_settings
from roasproof_django.models_tracking import TrackedModel

VALID = {"API_KEY": "k", "OUTBOX": ":memory:"}


def ids(**overrides: Any) -> list[str]:
    with override_settings(**overrides):
        messages = check_settings()
    assert all(message.hint for message in messages)
    return [message.id or "" for message in messages]


@pytest.fixture
def missing_model() -> Iterator[None]:
    key = ("shop.missing", "purchase")
    models_tracking._registry[key] = TrackedModel("shop.Missing", "purchase")
    yield
    del models_tracking._registry[key]


def test_the_test_project_is_clean() -> None:
    assert ids() == []
    call_command("check", tags=["roasproof"], verbosity=0)


def test_missing_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ids(ROASPROOF={"OUTBOX": ":memory:"}) == ["roasproof.W001"]
    monkeypatch.setenv("ROASPROOF_API_KEY", "from-env")
    assert ids(ROASPROOF={"OUTBOX": ":memory:"}) == []


def test_middleware_missing_or_listed_twice() -> None:
    assert ids(MIDDLEWARE=[]) == ["roasproof.W002"]
    assert ids(MIDDLEWARE=[MIDDLEWARE_PATH, MIDDLEWARE_PATH]) == ["roasproof.W003"]


@pytest.mark.usefixtures("missing_model")
def test_a_tracked_model_that_does_not_exist() -> None:
    assert ids() == ["roasproof.E001"]


def test_malformed_trusted_proxies() -> None:
    assert ids(ROASPROOF={**VALID, "TRUSTED_PROXIES": "nonsense"}) == ["roasproof.E002"]


def test_the_setting_must_be_a_dict_with_known_keys() -> None:
    assert ids(ROASPROOF="rp_live_key") == ["roasproof.E003"]
    with override_settings(ROASPROOF={**VALID, "API_KYE": "x"}):
        (message,) = check_settings()
    assert message.id == "roasproof.E003"
    assert message.hint == "Did you mean 'API_KEY'?"


def test_values_the_client_rejects() -> None:
    with override_settings(ROASPROOF={**VALID, "ENDPOINT": "http://ingest.example.com"}):
        (message,) = check_settings()
    assert message.id == "roasproof.E004"
    assert "endpoint" in message.msg
    assert "k" not in message.msg.split("'")  # never the key


def test_disabled_skips_everything_but_the_settings_themselves() -> None:
    assert ids(ROASPROOF={"ENABLED": False}, MIDDLEWARE=[]) == []
    assert ids(ROASPROOF={"ENABLED": False, "NOPE": 1}) == ["roasproof.E003"]


def test_errors_block_management_commands_and_warnings_do_not() -> None:
    from django.core.management.base import SystemCheckError

    with (
        override_settings(ROASPROOF={**VALID, "TRUSTED_PROXIES": "x"}),
        pytest.raises(SystemCheckError, match="E002"),
    ):
        call_command("check", tags=["roasproof"])
    with override_settings(ROASPROOF={"OUTBOX": ":memory:"}, MIDDLEWARE=[]):
        call_command("check", tags=["roasproof"], stdout=StringIO(), stderr=StringIO())


def test_levels() -> None:
    with override_settings(ROASPROOF={"OUTBOX": ":memory:"}, MIDDLEWARE=[]):
        levels = {message.id: message.is_serious() for message in check_settings()}
    assert levels == {"roasproof.W001": False, "roasproof.W002": False}
