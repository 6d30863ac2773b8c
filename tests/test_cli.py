"""The `roasproof` command line, against a real emulator on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from roasproof._cli_events import pretty_json
from roasproof._normalize import hash_email
from roasproof._payload import encode_payload
from roasproof.cli import main
from roasproof.emulator import ChaosConfig, RunningServer, create_app, run_in_thread

KEY = "rp_test_emulator"


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def server() -> Iterator[RunningServer]:
    with run_in_thread(create_app(plan_cap=1, subscription="none")) as running:
        yield running


# -- payload ---------------------------------------------------------------------------


def test_payload_prints_the_exact_body_with_pii_hashed() -> None:
    result = run(
        "payload",
        "purchase",
        "--value",
        "249.00",
        "--currency",
        "EUR",
        "--event-id",
        "purchase_10023",
        "--email",
        "Jane@Example.com",
        "--phone",
        "+359 88 123 4567",
        "--gclid",
        "G-1",
        "--data",
        "order_number=10023",
    )
    assert result.exit_code == 0, result.output
    assert '"value": 249.00' in result.output
    body = json.loads(result.output)
    assert body["event_id"] == "purchase_10023"
    assert body["user_data"]["email"] == hash_email("jane@example.com")
    assert body["user_data"]["gclid"] == "G-1"
    assert body["custom_data"] == {"order_number": "10023"}
    assert "Jane" not in result.output
    assert "88 123" not in result.output


def test_payload_compact_prints_the_bytes_that_would_be_sent() -> None:
    args = ["payload", "lead", "--event-id", "lead_1", "--occurred-at", "2026-07-03T09:41:00Z"]
    result = run(*args, "--compact")
    assert result.exit_code == 0
    expected = {
        "event": "lead",
        "event_id": "lead_1",
        "occurred_at": "2026-07-03T09:41:00Z",
        "action_source": "website",
    }
    assert json.loads(result.output) == json.loads(encode_payload(expected))
    assert " " not in result.output.strip()


def test_payload_reads_an_event_from_json_and_options_override_it(tmp_path: Path) -> None:
    event = {
        "event": "purchase",
        "value": 10.50,
        "currency": "USD",
        "user_data": {"ttclid": "T-1"},
        "custom_data": {"a": "1"},
    }
    path = tmp_path / "order.json"
    path.write_text(json.dumps(event))
    result = run("payload", "--json", str(path), "--currency", "EUR", "--data", "b=2")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert (body["event"], body["value"], body["currency"]) == ("purchase", 10.5, "EUR")
    assert body["user_data"] == {"ttclid": "T-1"}
    assert body["custom_data"] == {"a": "1", "b": "2"}
    from_stdin = run("payload", "lead", "--json", "-", stdin='{"event": "signup"}')
    assert json.loads(from_stdin.output)["event"] == "lead"


def test_payload_highlights_json_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    result = run("payload", "purchase", "--value", "249.00", "--currency", "EUR")
    assert result.exit_code == 0
    assert "\x1b[" in result.output
    assert "249.00" in result.output


def test_pretty_json_refuses_what_json_cannot_write() -> None:
    with pytest.raises(TypeError, match="set is not JSON-serializable"):
        pretty_json({"tags": {"a"}})


def test_payload_uses_the_phone_region_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_DEFAULT_PHONE_REGION", "BG")
    result = run("payload", "lead", "--phone", "088 123 4567", "--compact")
    assert json.loads(result.output)["user_data"]["phone"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["payload", "purchase", "--value", "12,50", "--currency", "EUR"], None, "--value"),
        (["payload", "purchase", "--data", "no-equals"], None, "KEY=VALUE"),
        (["payload"], None, "give the EVENT"),
        (["payload", "--json", "-"], "{broken", "not valid JSON"),
        (["payload", "--json", "-"], "[1]", "one JSON object"),
        (["payload", "purchase", "--currency", "EUX", "--value", "1"], None, "currency"),
        (["payload", "lead", "--ip", "300.1.1.1"], None, "user_data.client_ip_address"),
        (["payload", "lead", "--phone-region", "XX"], None, "default_phone_region"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    args: list[str], stdin: str | None, message: str
) -> None:
    result = run(*args, stdin=stdin)
    assert result.exit_code == 2
    assert message in result.output


# -- send --------------------------------------------------------------------------------


def test_send_delivers_one_event_and_prints_the_destinations(server: RunningServer) -> None:
    result = run(
        "send",
        "lead",
        "--event-id",
        "lead_42",
        "--email",
        "jane@example.com",
        "--api-key",
        KEY,
        "--endpoint",
        server.url,
    )
    assert result.exit_code == 0, result.output
    assert "accepted (202) lead event_id=lead_42" in result.output
    assert "meta (queued), google (queued), tiktok (queued)" in result.output
    events = httpx.get(server.url + "/api/v1/events").json()["events"]
    assert events[0]["conversion"]["user_data"]["email"] == hash_email("jane@example.com")


def test_send_reads_the_same_environment_as_the_library(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROASPROOF_API_KEY", KEY)
    monkeypatch.setenv("ROASPROOF_ENDPOINT", server.url)
    assert run("send", "page_view").exit_code == 0


def test_send_explains_a_rejected_event() -> None:
    with run_in_thread(create_app()) as running:
        result = run("send", "quote_request", "--api-key", KEY, "--endpoint", running.url)
    assert result.exit_code == 1
    assert "rejected the event (field 'event')" in result.output


def test_send_explains_a_refused_key(server: RunningServer) -> None:
    result = run("send", "lead", "--api-key", "wrong", "--endpoint", server.url)
    assert result.exit_code == 1
    assert "the API key was refused" in result.output


def test_send_explains_the_quota_ceiling(server: RunningServer) -> None:
    assert run("send", "lead", "--api-key", KEY, "--endpoint", server.url).exit_code == 0
    result = run("send", "lead", "--api-key", KEY, "--endpoint", server.url)
    assert result.exit_code == 1
    assert "tracked-conversion ceiling" in result.output


def test_send_without_a_key_exits_2() -> None:
    result = run("send", "lead", "--endpoint", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "ROASPROOF_API_KEY" in result.output


def test_send_refuses_plain_http_to_a_remote_host() -> None:
    result = run("send", "lead", "--api-key", KEY, "--endpoint", "http://example.com")
    assert result.exit_code == 2
    assert "endpoint" in result.output


def test_send_with_an_invalid_event_sends_nothing(server: RunningServer) -> None:
    result = run("send", "lead", "--url", "not a url", "--api-key", KEY, "--endpoint", server.url)
    assert result.exit_code == 2
    assert "url" in result.output
    assert httpx.get(server.url + "/api/v1/events").json()["events"] == []


# -- verify ------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_verify_confirms_a_working_key_without_using_the_plan(server: RunningServer) -> None:
    result = run("verify", "--api-key", KEY, "--endpoint", server.url)
    assert result.exit_code == 0, result.output
    assert "accepted the key" in result.output
    assert "meta, google, tiktok" in result.output
    assert httpx.get(server.url + "/api/v1/usage").json()["tracked_conversions"] == 0


def test_verify_explains_a_bad_key(server: RunningServer) -> None:
    result = run("verify", "--api-key", "nope", "--endpoint", server.url)
    assert result.exit_code == 1
    assert "did not accept the check: the API key was refused" in result.output


def test_verify_explains_an_unreachable_endpoint() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    result = run("verify", "--api-key", KEY, "--endpoint", endpoint)
    assert result.exit_code == 1
    assert "could not reach the endpoint" in result.output


def test_verify_explains_a_tls_failure(server: RunningServer) -> None:
    endpoint = server.url.replace("http://", "https://")
    result = run("verify", "--api-key", KEY, "--endpoint", endpoint)
    assert result.exit_code == 1
    assert "TLS connection failed" in result.output


def test_verify_reports_a_server_error_plainly() -> None:
    with run_in_thread(create_app(chaos=ChaosConfig(fail_rate=1.0))) as running:
        result = run("verify", "--api-key", KEY, "--endpoint", running.url)
    assert result.exit_code == 1
    assert "503" in result.output


def test_verify_without_a_key_exits_2() -> None:
    result = run("verify", "--endpoint", "http://127.0.0.1:9")
    assert result.exit_code == 2


# -- emulator and the rest -----------------------------------------------------------------


def test_the_emulator_command_refuses_bad_options_before_starting() -> None:
    result = run("emulator", "--custom-event", "Not Valid")
    assert result.exit_code == 2
    assert "custom event" in result.output


def test_the_emulator_command_serves_until_interrupted(tmp_path: Path) -> None:
    port = _closed_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "roasproof",
            "emulator",
            "--port",
            str(port),
            "--api-key",
            "cli-key",
            "--db",
            str(tmp_path / "e.sqlite3"),
            "--plan-cap",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/api/v1/health")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        answer = httpx.post(
            url + "/api/v1/events",
            json={"event": "lead"},
            headers={"Authorization": "Bearer cli-key"},
        )
        assert answer.status_code == 202
        assert httpx.get(url + "/api/v1/usage").json()["plan_cap"] == 3
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert f"listening on {url}" in output
    assert (tmp_path / "e.sqlite3").exists()


def test_the_emulator_command_runs_in_process_and_stops_on_ctrl_c() -> None:
    port = _closed_port()
    url = f"http://127.0.0.1:{port}"
    seen: list[int] = []

    def use_then_interrupt() -> None:
        for _ in range(200):
            try:
                seen.append(httpx.get(url + "/api/v1/health").status_code)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # what Ctrl+C does

    helper = threading.Thread(target=use_then_interrupt)
    helper.start()
    result = run("emulator", "--port", str(port), "--chaos-fail-first", "1", "--seed", "4")
    helper.join()
    assert result.exit_code == 0, result.output
    assert seen == [200]
    assert "chaos on: first 1 requests fail with 503 (seed 4)" in result.output


def test_help_is_complete_and_version_is_shown() -> None:
    for command in ("emulator", "send", "verify", "payload", "demo"):
        result = run(command, "--help")
        assert result.exit_code == 0
        assert "Usage: " in result.output
    top = run("--help").output
    for command in ("demo", "emulator", "payload", "send", "verify"):
        assert command in top
    assert run("--version").output.startswith("roasproof ")


def test_python_dash_m_runs_the_same_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "roasproof", "--help"], capture_output=True, text=True, check=True
    )
    assert "roasproof demo" in done.stdout
