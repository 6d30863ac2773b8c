"""The ROASPROOF dict: lazy, environment fallback, reload on setting_changed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import roasproof
from django.conf import settings
from django.test import override_settings

from roasproof_django import conf
from roasproof_django.conf import client_keys, configure_client, roasproof_settings


@pytest.fixture
def owned_default() -> Iterator[None]:
    """Make the app's own client the default for the test (the capture fixture restores it)."""
    saved = conf._Owner.client
    conf._Owner.client = roasproof.get_client()  # as if the app had built the capturing client
    configure_client()
    yield
    conf._Owner.client = saved


def test_keys_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_DEFAULT_PHONE_REGION", "GB")
    with override_settings(ROASPROOF={"API_KEY": None}):
        assert roasproof_settings.get("DEFAULT_PHONE_REGION") == "GB"
        assert roasproof_settings.api_key is None
        monkeypatch.setenv("ROASPROOF_API_KEY", "from-env")
        assert roasproof_settings.api_key == "from-env"


def test_the_dict_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", "from-env")
    assert roasproof_settings.api_key == "test-key"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, True), (False, False), ("false", False), ("0", False), ("yes", True), (1, True)],
)
def test_enabled_and_strict_read_booleans_like_the_core(value: object, expected: bool) -> None:
    with override_settings(ROASPROOF={"ENABLED": value, "STRICT": value}):
        assert roasproof_settings.enabled is expected
        assert roasproof_settings.strict is (expected if value is not None else False)


def test_a_non_dict_setting_reads_as_empty() -> None:
    with override_settings(ROASPROOF="rp_live_oops"):
        assert roasproof_settings.raw == {}


def test_client_options_leave_out_the_adapters_keys() -> None:
    with override_settings(
        ROASPROOF={"API_KEY": "k", "OUTBOX": None, "TRUSTED_PROXIES": 1, "TRACK_MODELS": []}
    ):
        assert roasproof_settings.client_options() == {"api_key": "k", "outbox": None}


def test_the_parsed_proxies_follow_the_setting() -> None:
    with override_settings(ROASPROOF={"TRUSTED_PROXIES": 1}):
        one = roasproof_settings.trusted_proxies
        assert roasproof_settings.trusted_proxies is one
    with override_settings(ROASPROOF={"TRUSTED_PROXIES": ["10.0.0.0/8"]}):
        assert roasproof_settings.trusted_proxies != one


def test_client_keys_are_the_clients_arguments() -> None:
    keys = client_keys()
    assert keys is not None
    assert {"API_KEY", "ENDPOINT", "STRICT", "ENABLED", "OUTBOX"} <= keys


@pytest.mark.usefixtures("owned_default")
def test_override_settings_reconfigures_the_default_client_and_restores_it() -> None:
    before = roasproof.get_client()
    with override_settings(ROASPROOF={"API_KEY": "k2", "ENDPOINT": "http://127.0.0.1:7"}):
        during = roasproof.get_client()
        assert during is not before
        assert during.settings.endpoint == "http://127.0.0.1:7"
        assert during.settings.api_key == "k2"
    after = roasproof.get_client()
    assert after.settings.endpoint == settings.ROASPROOF["ENDPOINT"]


def test_override_settings_leaves_the_capturing_client_alone() -> None:
    capturing = roasproof.get_client()
    with override_settings(ROASPROOF={"API_KEY": "k2", "OUTBOX": ":memory:"}):
        assert roasproof.get_client() is capturing
    assert roasproof.get_client() is capturing


@pytest.mark.usefixtures("owned_default")
def test_an_invalid_dict_is_logged_not_raised_while_django_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with override_settings(ROASPROOF={"ENDPOINT": "ftp://nope"}):
        pass
    assert "ROASPROOF setting is invalid" in caplog.text
    assert "endpoint" in caplog.text


@pytest.mark.usefixtures("owned_default")
def test_an_invalid_dict_raises_in_strict_mode() -> None:
    with (
        pytest.raises(roasproof.ConfigurationError, match="endpoint"),
        override_settings(ROASPROOF={"ENDPOINT": "ftp://nope", "STRICT": True}),
    ):
        pass
    assert settings.ROASPROOF["ENDPOINT"] == "http://127.0.0.1:9"


def test_without_the_dict_the_environment_alone_configures_the_client() -> None:
    current = roasproof.get_client()
    with override_settings():
        del settings.ROASPROOF
        configure_client()
    assert roasproof.get_client() is current


def test_client_flags_fall_back_to_the_dict_when_the_client_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> None:
        raise roasproof.ConfigurationError("bad environment")

    with override_settings(ROASPROOF={"ENABLED": "off", "STRICT": "yes"}):
        monkeypatch.setattr(roasproof, "get_client", broken)
        assert conf.client_flags() == (False, True)
        monkeypatch.undo()


def test_unknown_keys_are_not_flagged_when_the_clients_arguments_are_unknowable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from roasproof_django.checks import check_settings

    def no_hints(*args: object, **kwargs: object) -> None:
        raise NameError("unresolvable annotation")

    monkeypatch.setattr("typing.get_type_hints", no_hints)
    assert client_keys() is None
    with override_settings(ROASPROOF={"API_KEY": "k", "OUTBOX": ":memory:", "SOMETHING": 1}):
        (message,) = check_settings()
    assert message.id == "roasproof.E004"  # the Client itself refuses the unknown argument
