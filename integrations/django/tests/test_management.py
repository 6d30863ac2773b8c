"""manage.py roasproof check|send|outbox: the core command line with the site's settings."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import httpx
import pytest
import roasproof
from django.core.management import CommandError, call_command
from django.test import override_settings
from roasproof.emulator.app import create_app
from roasproof.emulator.ingest import DEFAULT_API_KEY
from roasproof.emulator.server import RunningServer, run_in_thread

from roasproof_django.management.commands.roasproof import _settings_as_env


@pytest.fixture
def emulator() -> Iterator[RunningServer]:
    app = create_app()
    with run_in_thread(app) as server:
        yield server
    app.state.emulator.store.close()  # its in-memory SQLite would warn on Python 3.13


@pytest.fixture
def site_settings(emulator: RunningServer) -> Iterator[None]:
    site = {"API_KEY": DEFAULT_API_KEY, "ENDPOINT": emulator.url, "OUTBOX": ":memory:"}
    with override_settings(ROASPROOF=site):
        yield


@pytest.mark.usefixtures("site_settings")
def test_send_delivers_a_test_event_with_the_sites_settings(emulator: RunningServer) -> None:
    out = StringIO()
    call_command(
        "roasproof", "send", "purchase", "--value", "1.00", "--currency", "EUR",
        "--event-id", "manage_py_1", stdout=out,
    )  # fmt: skip
    received = httpx.get(emulator.url + "/api/v1/events/manage_py_1").json()
    assert received["event"] == "purchase"
    assert "manage_py_1" in out.getvalue()
    assert "ROASPROOF_API_KEY" not in os.environ  # the environment is restored


@pytest.mark.usefixtures("site_settings")
def test_check_runs_the_system_checks_then_verifies_key_and_endpoint() -> None:
    out = StringIO()
    call_command("roasproof", "check", stdout=out)
    assert "System check identified no issues" in out.getvalue()


def test_a_wrong_key_fails_the_command(emulator: RunningServer) -> None:
    site = {"API_KEY": "rp_wrong", "ENDPOINT": emulator.url, "OUTBOX": ":memory:"}
    with override_settings(ROASPROOF=site), pytest.raises(CommandError):
        call_command("roasproof", "check", stdout=StringIO(), stderr=StringIO())


def test_settings_become_the_environment_of_the_command_line() -> None:
    site = {
        "API_KEY": "k",
        "STRICT": True,
        "CUSTOM_EVENTS": ["quote", "demo"],
        "MAX_IN_FLIGHT": 4,
        "TRUSTED_PROXIES": 1,
        "ON_ERROR": print,
        "OUTBOX": None,
    }
    with override_settings(ROASPROOF=site):
        assert _settings_as_env() == {
            "ROASPROOF_API_KEY": "k",
            "ROASPROOF_STRICT": "true",
            "ROASPROOF_CUSTOM_EVENTS": "quote,demo",
            "ROASPROOF_MAX_IN_FLIGHT": "4",
        }


def test_unknown_subcommands_are_refused() -> None:
    with pytest.raises(CommandError):
        call_command("roasproof", "emulator")


@pytest.mark.usefixtures("site_settings")
def test_usage_errors_fail_with_clicks_message() -> None:
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("roasproof", "send", "--no-such-option", stdout=StringIO(), stderr=err)
    assert "--no-such-option" in err.getvalue()


@pytest.mark.usefixtures("site_settings")
def test_the_callers_environment_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", "outer-key")
    call_command("roasproof", "send", "--help", stdout=StringIO())
    assert os.environ["ROASPROOF_API_KEY"] == "outer-key"


def test_without_the_command_line_extra_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "roasproof.cli", None)
    with pytest.raises(CommandError, match=r"roasproof-django\[cli\]"):
        call_command("roasproof", "send", "purchase")


def test_outbox_status_reads_the_sites_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    site = {"API_KEY": "k", "ENDPOINT": "http://127.0.0.1:9", "OUTBOX": str(outbox)}
    client = roasproof.Client(**{k.lower(): v for k, v in site.items()})  # type: ignore[arg-type]
    client.track("lead", event_id="lead_outbox_1")
    client.close(timeout=0)
    out = StringIO()
    with override_settings(ROASPROOF=site):
        call_command("roasproof", "outbox", "status", stdout=out)
    assert str(outbox) in out.getvalue()
    assert "pending   1" in out.getvalue()
