"""The HTTP contract: headers, URL, Retry-After and what every answer means."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from email.utils import format_datetime

import aiohttp
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roasproof import _http
from roasproof._http import (
    DeliveryResult,
    Destination,
    classify_exception,
    classify_response,
    events_url,
    parse_retry_after,
    request_headers,
)
from roasproof._version import __version__
from roasproof.errors import (
    AuthenticationFailed,
    EventRejected,
    QuotaExceeded,
    TransientError,
)

NOW = 1_780_000_000.0


def test_events_url_appends_the_ingest_path_once() -> None:
    assert events_url("https://app.roasproof.com") == "https://app.roasproof.com/api/v1/events"
    assert events_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/api/v1/events"


def test_request_headers_carry_bearer_json_user_agent_and_idempotency_key() -> None:
    headers = request_headers("rp_secret", "purchase_1")
    assert headers["Authorization"] == "Bearer rp_secret"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"roasproof-python/{__version__}"
    assert headers["Idempotency-Key"] == "purchase_1"


def test_request_headers_accept_a_custom_user_agent() -> None:
    assert request_headers("k", "e", "custom/1")["User-Agent"] == "custom/1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("120", 120.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-5", 0.0),
        ("999999", 3600.0),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00", None),  # no zone: not an RFC 9110 date
    ],
)
def test_parse_retry_after_reads_seconds_and_rejects_garbage(
    value: str | None, expected: float | None
) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_reads_an_http_date_relative_to_now() -> None:
    moment = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert parse_retry_after(format_datetime(moment, usegmt=True), now=NOW) == 90.0


def test_parse_retry_after_clamps_http_dates_to_the_allowed_window() -> None:
    past = format_datetime(datetime.fromtimestamp(NOW - 50, tz=UTC), usegmt=True)
    far = format_datetime(datetime.fromtimestamp(NOW + 10**6, tz=UTC), usegmt=True)
    assert parse_retry_after(past, now=NOW) == 0.0
    assert parse_retry_after(far, now=NOW) == _http.MAX_RETRY_AFTER


def test_parse_retry_after_uses_the_clock_when_now_is_not_given() -> None:
    soon = format_datetime(datetime.now(UTC).replace(microsecond=0), usegmt=True)
    wait = parse_retry_after(soon)
    assert wait is not None
    assert 0.0 <= wait <= 1.0


@given(st.text())
def test_parse_retry_after_never_leaves_the_window_whatever_the_header(value: str) -> None:
    wait = parse_retry_after(value, now=NOW)
    assert wait is None or 0.0 <= wait <= _http.MAX_RETRY_AFTER


def test_202_with_destinations_is_a_result_listing_them() -> None:
    body = json.dumps(
        {
            "event_id": "e1",
            "destinations": [
                {"destination": "meta", "status": "queued"},
                {"platform": "google"},
                {"name": "tiktok", "status": "skipped"},
                "pinterest",
                {"status": "nameless"},
                42,
            ],
        }
    ).encode()
    result = classify_response(202, {}, body, "e1")
    assert result == DeliveryResult(
        "e1",
        202,
        (
            Destination("meta", "queued"),
            Destination("google", "queued"),
            Destination("tiktok", "skipped"),
            Destination("pinterest", "queued"),
        ),
    )


def test_a_bare_list_body_is_read_as_the_destinations() -> None:
    result = classify_response(202, {}, b'[{"destination": "meta", "status": "queued"}]', "e")
    assert isinstance(result, DeliveryResult)
    assert result.destinations == (Destination("meta", "queued"),)


@pytest.mark.parametrize("body", [b"", b"not json", b"\xff\xfe", b'{"destinations": "x"}', b"3"])
def test_a_2xx_with_an_unexpected_body_is_still_a_success(body: bytes) -> None:
    result = classify_response(200, {}, body, "e")
    assert result == DeliveryResult("e", 200, ())


def test_422_is_event_rejected_naming_the_server_field() -> None:
    body = b'{"error": "validation_failed", "field": "currency", "message": "unknown currency"}'
    error = classify_response(422, {}, body, "purchase_9")
    assert isinstance(error, EventRejected)
    assert error.field == "currency"
    assert error.reason == "unknown currency"
    assert error.status_code == 422
    assert error.event_id == "purchase_9"
    assert "'currency'" in str(error)
    assert "Fix the event" in str(error)


def test_400_without_a_field_uses_the_error_as_reason() -> None:
    error = classify_response(400, {}, b'{"error": "bad json", "field": ""}', "e")
    assert isinstance(error, EventRejected)
    assert error.field is None
    assert error.reason == "bad json"


@pytest.mark.parametrize("status", [404, 409, 410, 413])
def test_other_4xx_are_permanent_rejections(status: int) -> None:
    error = classify_response(status, {}, b"<html>  Not\n Found </html>", "e")
    assert isinstance(error, EventRejected)
    assert error.reason == "<html> Not Found </html>"
    assert error.status_code == status


def test_a_rejection_without_any_body_says_no_reason_was_given() -> None:
    error = classify_response(422, {}, b"", "e")
    assert isinstance(error, EventRejected)
    assert error.reason is None
    assert "no reason given" in str(error)


def test_a_rejection_with_a_json_body_but_no_message_has_no_reason() -> None:
    error = classify_response(422, {}, b'{"field": 7}', "e")
    assert isinstance(error, EventRejected)
    assert (error.field, error.reason) == (None, None)


def test_a_long_server_message_is_shortened() -> None:
    error = classify_response(422, {}, json.dumps({"message": "x" * 5000}).encode(), "e")
    assert isinstance(error, EventRejected)
    assert error.reason is not None
    assert len(error.reason) == 300
    assert error.reason.endswith("...")


@pytest.mark.parametrize(("status", "words"), [(401, "missing or unknown"), (403, "revoked")])
def test_401_and_403_are_authentication_failures_without_the_key(status: int, words: str) -> None:
    error = classify_response(status, {}, b'{"error": "unauthorized"}', "e")
    assert isinstance(error, AuthenticationFailed)
    assert error.status_code == status
    assert words in str(error)
    assert "ROASPROOF_API_KEY" in str(error)


def test_429_is_quota_exceeded_with_retry_after_seconds() -> None:
    error = classify_response(429, {"Retry-After": "30"}, b"", "e")
    assert isinstance(error, QuotaExceeded)
    assert error.retry_after == 30.0
    assert "retry after 30 s" in str(error)


def test_429_reads_retry_after_case_insensitively_from_a_plain_dict() -> None:
    error = classify_response(429, {"content-type": "x", "retry-after": "7"}, b"", "e")
    assert isinstance(error, QuotaExceeded)
    assert error.retry_after == 7.0


def test_429_without_retry_after_has_none() -> None:
    error = classify_response(429, httpx.Headers({"X-Other": "1"}), b"", "e")
    assert isinstance(error, QuotaExceeded)
    assert error.retry_after is None
    assert "retry after" not in str(error)


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504, 599])
def test_408_and_5xx_are_transient_with_retry_after(status: int) -> None:
    error = classify_response(status, {"Retry-After": "2"}, b"oops", "e")
    assert isinstance(error, TransientError)
    assert error.status_code == status
    assert error.retry_after == 2.0
    assert "same event_id is safe" in str(error)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_transient_and_points_at_the_endpoint_setting(status: int) -> None:
    error = classify_response(status, {"Location": "https://elsewhere"}, b"", "e")
    assert isinstance(error, TransientError)
    assert error.retry_after is None
    assert "ROASPROOF_ENDPOINT" in str(error)


def test_an_informational_status_is_transient() -> None:
    assert isinstance(classify_response(102, {}, b"", "e"), TransientError)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("pool"),
        TimeoutError(),
        aiohttp.ServerTimeoutError("slow"),
    ],
)
def test_timeouts_are_transient(exc: BaseException) -> None:
    error = classify_exception(exc, "e1")
    assert isinstance(error, TransientError)
    assert error.event_id == "e1"
    assert error.status_code is None
    assert "timed out" in str(error)
    assert type(exc).__name__ in str(error)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("[Errno 111] Connection refused"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("reset"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(113, "No route to host"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("broken"),
    ],
)
def test_connection_errors_are_transient(exc: BaseException) -> None:
    error = classify_exception(exc, "e1")
    assert isinstance(error, TransientError)
    assert "could not reach" in str(error)


def test_an_unexpected_exception_is_transient_and_named() -> None:
    error = classify_exception(ValueError(""), "e1")
    assert isinstance(error, TransientError)
    assert "failed unexpectedly (ValueError)" in str(error)


def test_classify_exception_works_without_aiohttp_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "aiohttp")
    assert "could not reach" in str(classify_exception(httpx.ConnectError("refused"), "e"))
