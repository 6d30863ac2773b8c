"""From `roasproof emulator` options to an app, and the start-up banner."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from roasproof.emulator import DEFAULT_API_KEY, ChaosConfig, Emulator
from roasproof.emulator.options import (
    api_keys_from,
    build_emulator,
    chaos_from,
    mask_key,
    print_banner,
)
from roasproof.errors import ConfigurationError

BASE: dict[str, Any] = {"host": "127.0.0.1", "port": 8765}


def test_keys_default_to_the_emulator_key_plus_the_configured_one() -> None:
    assert api_keys_from((), {}) == (DEFAULT_API_KEY,)
    assert api_keys_from((), {"ROASPROOF_API_KEY": "rp_live_abcdef123456"}) == (
        DEFAULT_API_KEY,
        "rp_live_abcdef123456",
    )
    assert api_keys_from(("a", "b"), {"ROASPROOF_API_KEY": "ignored"}) == ("a", "b")


def test_a_real_key_is_masked_in_the_banner() -> None:
    assert mask_key(DEFAULT_API_KEY) == DEFAULT_API_KEY
    assert mask_key("rp_live_abcdef123456") == "rp_l…3456"
    assert mask_key("short") == "………"


def test_options_configure_the_app(tmp_path: Path) -> None:
    options = BASE | {
        "api_keys": ("k1",),
        "custom_events": ("quote_request:billable",),
        "destinations": ("meta",),
        "plan_cap": 5,
        "no_subscription": True,
        "db": tmp_path / "e.sqlite3",
        "chaos_fail_rate": 0.5,
        "seed": 9,
    }
    app, keys = build_emulator(options, {})
    emulator: Emulator = app.state.emulator
    assert keys == ("k1",)
    assert emulator.custom_events == {"quote_request": True}
    assert emulator.destinations == ("meta",)
    assert (emulator.plan.cap, emulator.plan.subscription) == (5, "none")
    assert emulator.store.path == str(tmp_path / "e.sqlite3")
    assert app.state.chaos.config == ChaosConfig(fail_rate=0.5, seed=9)


def test_defaults_give_a_well_behaved_trial_workspace() -> None:
    app, keys = build_emulator(BASE, {})
    assert keys == (DEFAULT_API_KEY,)
    assert app.state.emulator.plan.subscription == "trial"
    assert app.state.emulator.destinations == ("meta", "google", "tiktok")
    assert chaos_from(BASE) == ChaosConfig()


@pytest.mark.parametrize("custom", [("Quote Request",), ("purchase",), ("quote:free",), ("",)])
def test_a_malformed_custom_event_is_a_configuration_error(custom: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError, match="custom event"):
        build_emulator(BASE | {"custom_events": custom}, {})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"api_keys": ("",)}, "api_keys"), ({"destinations": ("snapchat",)}, "snapchat")],
)
def test_bad_workspace_settings_are_configuration_errors(
    kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Emulator(**kwargs)


def _banner(options: dict[str, Any], keys: tuple[str, ...]) -> str:
    out = io.StringIO()
    print_banner(Console(file=out, width=200), options, keys)
    return out.getvalue()


def test_the_banner_says_where_and_how_to_point_the_sdk() -> None:
    text = _banner(BASE, (DEFAULT_API_KEY, "rp_live_abcdef123456"))
    assert "http://127.0.0.1:8765" in text
    assert "export ROASPROOF_ENDPOINT=http://127.0.0.1:8765" in text
    assert "rp_live_abcdef123456" not in text
    assert "rp_l…3456" in text
    assert "memory" in text
    assert "chaos" not in text


def test_the_banner_describes_chaos_and_warns_about_public_hosts() -> None:
    options = BASE | {
        "host": "0.0.0.0",
        "chaos_fail_first": 2,
        "chaos_fail_rate": 0.25,
        "chaos_retry_after": 3.0,
        "chaos_latency": 0.5,
        "chaos_drop_rate": 0.1,
        "chaos_drop_after_processing": True,
        "chaos_down_after": 10.0,
        "chaos_down_for": 5.0,
        "seed": 1,
    }
    text = _banner(options, (DEFAULT_API_KEY,))
    for part in (
        "first 2 requests fail with 503",
        "25% fail",
        "Retry-After 3s",
        "+0.5s latency",
        "10% connections dropped after processing",
        "down (close) from 10s for 5s",
        "(seed 1)",
        "reachable from other machines",
    ):
        assert part in text
    assert "http://[::1]:8765" in _banner(BASE | {"host": "::1"}, (DEFAULT_API_KEY,))


def test_the_banner_describes_an_outage_alone() -> None:
    text = _banner(BASE | {"chaos_down_for": 5.0, "chaos_down_mode": "503"}, (DEFAULT_API_KEY,))
    assert "chaos on: down (503) from 0s for 5s" in text
