"""Settings: arguments, then ROASPROOF_* variables, then defaults; clear errors; no key shown."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

from roasproof._config import DEFAULT_ENDPOINT, UNSET, Settings, default_outbox_path
from roasproof.errors import ConfigurationError

KEY = "rp_live_7f3a9c1e5d2b"


def test_defaults_without_arguments_or_environment(tmp_path: Path) -> None:
    settings = Settings.resolve()
    assert settings.api_key is None
    assert settings.endpoint == DEFAULT_ENDPOINT
    assert settings.strict is False
    assert settings.enabled is True
    assert settings.default_phone_region is None
    assert settings.custom_events is None
    assert settings.outbox == tmp_path / "xdg-state" / "roasproof" / "outbox.sqlite3"
    assert settings.durability == "normal"
    assert settings.senders == "one"
    assert settings.max_in_flight == 32
    assert settings.max_event_age == 6 * 24 * 3600
    assert (settings.connect_timeout, settings.read_timeout) == (3.0, 10.0)
    assert settings.transport == "auto"
    assert settings.on_error is None
    assert settings.on_delivered is None
    assert settings.configured is False


def test_the_dataclass_defaults_match_resolve_without_environment() -> None:
    assert Settings() == Settings.resolve()


def test_default_outbox_path_falls_back_to_local_state_in_home() -> None:
    home = Path.home() / ".local" / "state" / "roasproof" / "outbox.sqlite3"
    assert default_outbox_path({}) == home
    assert default_outbox_path({"XDG_STATE_HOME": "relative/dir"}) == home
    assert default_outbox_path({"XDG_STATE_HOME": "/srv/state"}) == Path(
        "/srv/state/roasproof/outbox.sqlite3"
    )


def test_every_setting_is_read_from_its_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {
        "ROASPROOF_API_KEY": f"  {KEY} ",
        "ROASPROOF_ENDPOINT": "https://ingest.example.com/",
        "ROASPROOF_STRICT": "yes",
        "ROASPROOF_ENABLED": "off",
        "ROASPROOF_DEFAULT_PHONE_REGION": "gb",
        "ROASPROOF_CUSTOM_EVENTS": "quote_request, demo_booked,,",
        "ROASPROOF_OUTBOX": str(tmp_path / "o.db"),
        "ROASPROOF_DURABILITY": "POWER",
        "ROASPROOF_SENDERS": "all",
        "ROASPROOF_MAX_IN_FLIGHT": "8",
        "ROASPROOF_MAX_EVENT_AGE": "3600.5",
        "ROASPROOF_CONNECT_TIMEOUT": "1",
        "ROASPROOF_READ_TIMEOUT": "2.5",
        "ROASPROOF_TRANSPORT": "httpx",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.resolve()
    assert settings.api_key == KEY
    assert settings.endpoint == "https://ingest.example.com"
    assert settings.strict is True
    assert settings.enabled is False
    assert settings.configured is False
    assert settings.default_phone_region == "GB"
    assert settings.custom_events == frozenset({"quote_request", "demo_booked"})
    assert settings.outbox == tmp_path / "o.db"
    assert settings.durability == "power"
    assert settings.senders == "all"
    assert settings.max_in_flight == 8
    assert settings.max_event_age == 3600.5
    assert (settings.connect_timeout, settings.read_timeout) == (1.0, 2.5)
    assert settings.transport == "httpx"


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", "from_env")
    monkeypatch.setenv("ROASPROOF_STRICT", "garbage that is never parsed")
    monkeypatch.setenv("ROASPROOF_OUTBOX", "/env/outbox.db")
    settings = Settings.resolve(KEY, strict=False, outbox=None, enabled=True)
    assert settings.api_key == KEY
    assert settings.strict is False
    assert settings.outbox is None
    assert settings.configured is True


def test_an_explicit_environ_mapping_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", "ignored")
    settings = Settings.resolve(environ={"ROASPROOF_READ_TIMEOUT": "4"})
    assert settings.api_key is None
    assert settings.read_timeout == 4.0


def test_empty_values_fall_back_to_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_ENDPOINT", "   ")
    monkeypatch.setenv("ROASPROOF_OUTBOX", "")
    settings = Settings.resolve(api_key="", default_phone_region="")
    assert settings.endpoint == DEFAULT_ENDPOINT
    assert settings.api_key is None
    assert settings.default_phone_region is None
    assert settings.outbox == default_outbox_path()


@pytest.mark.parametrize("value", [":memory:", None])
def test_memory_outbox_is_none(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is None:
        assert Settings.resolve(outbox=None).outbox is None
    else:
        monkeypatch.setenv("ROASPROOF_OUTBOX", value)
        assert Settings.resolve().outbox is None
        assert Settings.resolve(outbox=value).outbox is None


def test_the_unset_marker_reads_well_in_signatures() -> None:
    assert repr(UNSET) == "UNSET"


def test_outbox_paths_expand_the_home_directory() -> None:
    assert Settings.resolve(outbox="~/x.db").outbox == Path.home() / "x.db"
    assert Settings.resolve(outbox=Path("/a/b.db")).outbox == Path("/a/b.db")


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://[::1]:9000/",
        "http://localhost:8000",
        "http://api.localhost",
        "https://app.roasproof.com/proxy/prefix",
    ],
)
def test_plain_http_is_allowed_only_for_loopback(endpoint: str) -> None:
    assert Settings.resolve(endpoint=endpoint).endpoint == endpoint.rstrip("/")


@pytest.mark.parametrize(
    ("endpoint", "words"),
    [
        ("http://app.roasproof.com", "plain http"),
        ("http://10.0.0.1", "plain http"),
        ("ftp://app.roasproof.com", "not an absolute http(s) URL"),
        ("app.roasproof.com", "not an absolute http(s) URL"),
        ("https://user:pw@app.roasproof.com", "credentials"),
        ("https://app.roasproof.com:99999", "invalid port"),
        ("https://app.roasproof.com?x=1", "query or fragment"),
        ("https://app.roasproof.com/api/v1/events", "includes the /api/v1/events path"),
    ],
)
def test_bad_endpoints_are_refused_with_the_fix(endpoint: str, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve(endpoint=endpoint)
    message = str(caught.value)
    assert words in message
    assert "'endpoint'" in message
    assert "endpoint=" in message
    assert "ROASPROOF_ENDPOINT" in message
    assert "Fix:" in message
    assert "read from the environment" not in message


def test_an_error_from_the_environment_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_ENDPOINT", "http://example.com")
    with pytest.raises(ConfigurationError, match="read from the environment variable"):
        Settings.resolve()


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_truthy_strings(value: str) -> None:
    assert Settings.resolve(strict=value).strict is True  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["0", "false", "No", "off"])
def test_falsy_strings(value: str) -> None:
    assert Settings.resolve(enabled=value).enabled is False  # type: ignore[arg-type]


def test_an_unreadable_boolean_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_STRICT", "maybe")
    with pytest.raises(ConfigurationError, match=r"ROASPROOF_STRICT.*'maybe' is not a boolean"):
        Settings.resolve()


@pytest.mark.parametrize(
    "key", ["Bearer rp_live_123", "rp live", "rp\nlive", "rp\x00live", "rp\u200blive"]
)
def test_malformed_api_keys_are_refused_without_showing_them(key: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve(api_key=key)
    assert "rp_live_123" not in str(caught.value)
    assert "live" not in str(caught.value).replace("ROASPROOF", "")
    assert "ROASPROOF_API_KEY" in str(caught.value)


def test_a_non_string_api_key_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="expected a string, got int"):
        Settings.resolve(api_key=123)  # type: ignore[arg-type]


def test_the_api_key_never_appears_in_repr_or_str() -> None:
    settings = Settings.resolve(KEY)
    assert KEY not in repr(settings)
    assert KEY not in str(settings)
    assert "api_key='<set>'" in repr(settings)
    assert "api_key='<missing>'" in repr(Settings.resolve())
    assert "endpoint='https://app.roasproof.com'" in repr(settings)


def test_phone_regions_are_checked_against_phonenumbers() -> None:
    assert Settings.resolve(default_phone_region=" de ").default_phone_region == "DE"
    with pytest.raises(
        ConfigurationError, match=r"ROASPROOF_DEFAULT_PHONE_REGION.*'ZZ' is not a region"
    ):
        Settings.resolve(default_phone_region="ZZ")


def test_custom_events_accept_a_list_or_a_comma_string() -> None:
    assert Settings.resolve(custom_events=["quote"]).custom_events == frozenset({"quote"})
    assert Settings.resolve(custom_events="a,b").custom_events == frozenset({"a", "b"})
    assert Settings.resolve(custom_events=[]).custom_events == frozenset()


def test_invalid_custom_event_keys_are_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.resolve(custom_events=["ok", "Bad-Key", "9x"])
    assert "'Bad-Key', '9x' not valid event key(s)" in str(caught.value)
    assert "ROASPROOF_CUSTOM_EVENTS" in str(caught.value)


def test_custom_events_must_be_a_collection() -> None:
    with pytest.raises(ConfigurationError, match="expected a list of event keys, got int"):
        Settings.resolve(custom_events=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(("setting", "value"), [("durability", "fsync"), ("senders", "some")])
def test_choices_are_enforced(setting: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{value!r} is not allowed"):
        Settings.resolve(**{setting: value})  # type: ignore[arg-type]


def test_transport_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.resolve(transport="AIOHTTP").transport == "aiohttp"
    with pytest.raises(ConfigurationError, match="'curl' is not allowed"):
        Settings.resolve(transport="curl")


def test_aiohttp_transport_requires_aiohttp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # makes aiohttp unimportable
    with pytest.raises(ConfigurationError, match=r"roasproof\[fast\]"):
        Settings.resolve(transport="aiohttp")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("many", "is not a number"),
        (True, "a boolean is not a number"),
        ([1], "is not a number"),
        (2.5, "not a whole number"),
        (float("inf"), "not a whole number"),
        (0, "out of range"),
        (5000, "out of range"),
    ],
)
def test_max_in_flight_must_be_a_sane_integer(value: object, words: str) -> None:
    with pytest.raises(ConfigurationError, match=words):
        Settings.resolve(max_in_flight=value)  # type: ignore[arg-type]


def test_max_in_flight_accepts_integral_strings_and_floats() -> None:
    assert Settings.resolve(max_in_flight="16").max_in_flight == 16  # type: ignore[arg-type]
    assert Settings.resolve(max_in_flight=4.0).max_in_flight == 4  # type: ignore[arg-type]


@pytest.mark.parametrize("setting", ["max_event_age", "connect_timeout", "read_timeout"])
@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf"), "x"])
def test_durations_must_be_positive_and_finite(setting: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"ROASPROOF_{setting.upper()}"):
        Settings.resolve(**{setting: value})  # type: ignore[arg-type]


def test_max_event_age_accepts_a_timedelta() -> None:
    assert Settings.resolve(max_event_age=timedelta(days=2)).max_event_age == 172800.0


def test_hooks_must_be_callable() -> None:
    def hook(_: object) -> None:
        return None

    assert Settings.resolve(on_error=hook, on_delivered=hook).on_error is hook
    with pytest.raises(ConfigurationError, match=r"'on_delivered'.*expected a callable"):
        Settings.resolve(on_delivered="print")  # type: ignore[arg-type]


def test_settings_are_frozen() -> None:
    settings = Settings.resolve()
    with pytest.raises(AttributeError):
        settings.strict = True  # type: ignore[misc]
