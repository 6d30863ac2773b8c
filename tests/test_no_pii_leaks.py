"""End to end: plaintext PII and the API key never reach logs, disk, CLI output or errors.

Drives :meth:`roasproof.Client.track` with distinctive raw values through every path a
conversion can take (valid, invalid with ``strict=False``, duplicate, dead-lettered by a
real 422 from the emulator), then searches every place a value could land for them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import roasproof
from roasproof.cli import main
from roasproof.emulator import RunningServer, create_app, run_in_thread

API_KEY = "rp_test_Zq7LeakCanaryKey0042"
EMAIL = "Leak.Canary+zq7@Example.com"
PHONE = "+359 88 765 4321"
EXTERNAL_ID = "cust-zq7-canary-0042"
BAD_EMAIL = "leak.canary.zq7.at.example.com"  # no "@": rejected by the SDK
BAD_PHONE = "call zq7 leakcanary"  # no digits: rejected by the SDK

# Each secret as it might be written: raw, normalized, digits-only (phones).
SECRETS = {
    "api key": [API_KEY],
    "email": [EMAIL, EMAIL.lower(), "leak.canary"],
    "phone": [PHONE, "359887654321", "887654321"],
    "external id": [EXTERNAL_ID],
    "bad email": [BAD_EMAIL, "leak.canary.zq7"],
    "bad phone": [BAD_PHONE, "leakcanary"],
}


def assert_clean(where: str, text: str | bytes) -> None:
    haystack = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    flat = re.sub(r"\s+", "", haystack).lower()
    for name, forms in SECRETS.items():
        for form in forms:
            squashed = re.sub(r"\s+", "", form).lower()
            assert squashed not in flat, f"plaintext {name} ({form!r}) found in {where}"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    store = tmp_path / "emulator.sqlite3"
    with run_in_thread(create_app(api_keys=[API_KEY], db_path=store)) as running:
        yield running, store


def user_data(email: str = EMAIL, phone: str = PHONE) -> dict[str, str]:
    return {"email": email, "phone": phone, "external_id": EXTERNAL_ID}


def test_no_plaintext_pii_or_api_key_leaks_on_any_path(
    emulator: tuple[RunningServer, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, emulator_store = emulator
    outbox = tmp_path / "outbox.sqlite3"
    reported: list[Exception] = []
    caplog.set_level(logging.DEBUG)

    client = roasproof.Client(
        API_KEY,
        endpoint=server.url,
        outbox=outbox,
        default_phone_region="BG",
        on_error=reported.append,
    )
    with client:
        # valid, then the same event_id again (duplicate)
        for _ in range(2):
            client.track(
                "purchase",
                event_id="purchase_zq1",
                value="10.00",
                currency="EUR",
                user_data=user_data(),
            )
        # invalid in the SDK (strict=False): a bad email, a missing currency
        client.track("lead", event_id="lead_zq2", user_data=user_data(email=BAD_EMAIL))
        # a bad phone is dropped with a warning; the event goes on without it
        client.track("lead", event_id="lead_zq3", user_data=user_data(phone=BAD_PHONE))
        client.track("purchase", event_id="purchase_zq4", value="5", user_data=user_data())
        # valid for the SDK, refused with a 422 by the emulator: dead-lettered
        client.track("quote_request", event_id="quote_zq5", user_data=user_data())
        assert client.flush(timeout=10)
        # while the client is open, recent commits still sit in the -wal file
        # (and track()'s records sit in the journal segment this process writes)
        live = {
            path.name: path.read_bytes()
            for path in [*tmp_path.glob("outbox.sqlite3*"), *tmp_path.glob("*.journal/*")]
            if path.is_file()
        }
        stats = client.stats()
        assert repr(client)
        assert_clean("repr(client)", repr(client) + str(client.settings))

    assert stats["duplicates"] == 1
    assert stats["invalid"] == 2
    assert len(reported) == 3  # the two invalid events and the dead letter

    assert_clean("the log records", caplog.text)
    for record in caplog.records:
        assert_clean("a log record's args", repr(record.args))
    for exc in reported:
        assert_clean("an on_error exception", f"{exc!s} {exc!r} {exc.args!r}")

    assert "outbox.sqlite3-wal" in live
    assert any(name.endswith(".log") for name in live)  # a journal segment was searched
    for name, data in live.items():
        assert_clean(f"{name} (open)", data)
    sqlite_files = sorted(path for path in tmp_path.rglob("*.sqlite3*") if path.is_file())
    assert outbox in sqlite_files
    assert emulator_store in sqlite_files
    for path in sqlite_files:
        assert_clean(str(path.name), path.read_bytes())
    # the search is meaningful: the dead letter's body holds the email's hash
    digest = hashlib.sha256(EMAIL.lower().encode()).hexdigest().encode()
    assert digest in b"".join(live.values()) + outbox.read_bytes()

    runner = CliRunner()
    outputs: list[str] = []
    for args in (["status"], ["status", "--json"], ["dead"], ["dead", "--json"], ["rejected"]):
        result = runner.invoke(main, ["outbox", "--outbox", str(outbox), *args])
        assert result.exit_code == 0, result.output
        assert_clean(f"`roasproof outbox {' '.join(args)}`", result.output)
        outputs.append(result.output)
    assert "quote_zq5" in outputs[2]  # the dead letter is there, just without PII
    assert "lead_zq2" in outputs[4]


@pytest.mark.parametrize(
    "fields",
    [
        {"user_data": user_data(email=BAD_EMAIL)},
        {"value": "5", "user_data": user_data()},
        {"user_data": {**user_data(), "emial": EMAIL}},
        {"user_data": {"email": ["not", "a", EMAIL]}},
        {"email": EMAIL},
    ],
    ids=["bad-email", "no-currency", "typo", "wrong-type", "misplaced"],
)
def test_strict_errors_do_not_carry_plaintext_pii(
    fields: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = roasproof.Client(API_KEY, strict=True, outbox=None, default_phone_region="BG")
    with client, pytest.raises(roasproof.InvalidEvent) as caught:
        client.track("lead", event_id="lead_zq6", **fields)
    exc = caught.value
    assert_clean("the InvalidEvent", f"{exc!s} {exc!r} {exc.args!r} {exc.__cause__!r}")
    assert_clean("the log records", caplog.text)
