"""Client: send()/asend() against a real HTTP server on loopback, track() through the seam."""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from roasproof._client import Client, _after_fork_in_child
from roasproof._delivery._base import RejectedSummary
from roasproof._http import DeliveryResult, Destination
from roasproof._payload import encode_payload
from roasproof._version import __version__
from roasproof.context import RequestContext, bind_context
from roasproof.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeliveryError,
    EventRejected,
    InvalidEvent,
    QuotaExceeded,
    TransientError,
)
from roasproof.events import Event, make_event

KEY = "rp_live_SECRET_9f8e7d6c"
EMAIL = "jane.doe@example.com"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


# -- a real ingest server on loopback -------------------------------------------------


@dataclass
class Reply:
    """What the server does with the next requests."""

    status: int = 202
    body: bytes = b'{"destinations": [{"destination": "meta", "status": "queued"}]}'
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: str | None = None  # "before-body" or "after-body": close the socket, no answer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    port: int


class IngestServer:
    """A stdlib HTTP/1.1 server in a thread: keep-alive, scripted replies, records requests."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.requests: list[Received] = []
        self.stopping = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                reply = server.reply
                if reply.drop == "before-body":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append(Received(self.path, headers, body, self.client_address[1]))
                if reply.drop == "after-body":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if reply.delay:
                    server.stopping.wait(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

        return Handler

    def __enter__(self) -> IngestServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server() -> Iterator[IngestServer]:
    with IngestServer() as running:
        yield running


@pytest.fixture
def client(server: IngestServer) -> Iterator[Client]:
    with Client(KEY, endpoint=server.url, outbox=None, read_timeout=0.5) as made:
        yield made


def purchase(**extra: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": "purchase_10023",
        "value": "249.00",
        "currency": "eur",
        "occurred_at": WHEN,
        "user_data": {"email": EMAIL, "client_ip_address": "203.0.113.7"},
    }
    return fields | extra


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- send() -----------------------------------------------------------------------------


def test_send_posts_the_payload_with_auth_headers_and_returns_destinations(
    server: IngestServer, client: Client
) -> None:
    server.reply = Reply(
        body=b'{"destinations": [{"destination": "meta", "status": "queued"},'
        b' {"destination": "google", "status": "queued"}]}'
    )
    result = client.send("purchase", **purchase())
    assert result == DeliveryResult(
        "purchase_10023", 202, (Destination("meta", "queued"), Destination("google", "queued"))
    )
    [request] = server.requests
    assert request.path == "/api/v1/events"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == f"roasproof-python/{__version__}"
    assert request.headers["idempotency-key"] == "purchase_10023"
    assert request.body == encode_payload(client.build_payload("purchase", **purchase()))
    assert EMAIL.encode() not in request.body
    assert b'"value":249.00' in request.body


def test_send_reuses_one_keep_alive_connection(server: IngestServer, client: Client) -> None:
    client.send("lead", event_id="lead_1")
    client.send("lead", event_id="lead_2")
    assert len({request.port for request in server.requests}) == 1


def test_a_forked_child_opens_its_own_connection(server: IngestServer, client: Client) -> None:
    client.send("lead", event_id="lead_1")
    client._pid = -1  # as if this client had been created in the parent of a fork
    client.send("lead", event_id="lead_2")
    assert len({request.port for request in server.requests}) == 2


def test_send_fills_gaps_from_the_request_context(server: IngestServer, client: Client) -> None:
    context = RequestContext(visitor_id="vid_1", client_ip_address="198.51.100.4", gclid="G1")
    with bind_context(context):
        client.send("purchase", **purchase())
    sent = json.loads(server.requests[0].body)
    assert sent["user_data"]["visitor_id"] == "vid_1"
    assert sent["user_data"]["gclid"] == "G1"
    assert sent["user_data"]["client_ip_address"] == "203.0.113.7"  # explicit value wins


def test_send_uses_the_per_event_phone_region(server: IngestServer, client: Client) -> None:
    payload = client.build_payload("lead", phone_region="US", user_data={"phone": "(650)555-1212"})
    client.send("lead", phone_region="US", user_data={"phone": "(650)555-1212"})
    sent = json.loads(server.requests[0].body)
    assert sent["user_data"]["phone"] == payload["user_data"]["phone"]
    assert "650" not in server.requests[0].body.decode().replace(sent["user_data"]["phone"], "")


def test_send_accepts_an_event_instance(server: IngestServer, client: Client) -> None:
    event = make_event("signup", event_id="signup_7", occurred_at=WHEN)
    assert client.send(event).event_id == "signup_7"
    assert server.requests[0].body == encode_payload(client.build_payload(event))


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "checks"),
    [
        (400, b'{"error": "malformed"}', {}, EventRejected, {"reason": "malformed"}),
        (
            422,
            b'{"error": "invalid", "field": "currency", "message": "unknown currency"}',
            {},
            EventRejected,
            {"field": "currency", "reason": "unknown currency"},
        ),
        (401, b"", {}, AuthenticationFailed, {}),
        (403, b"", {}, AuthenticationFailed, {}),
        (429, b"", {"Retry-After": "30"}, QuotaExceeded, {"retry_after": 30.0}),
        (500, b"boom", {}, TransientError, {"retry_after": None}),
        (503, b"", {"Retry-After": "5"}, TransientError, {"retry_after": 5.0}),
    ],
)
def test_send_raises_the_typed_error_of_each_status(
    server: IngestServer,
    client: Client,
    status: int,
    body: bytes,
    headers: dict[str, str],
    error: type[DeliveryError],
    checks: dict[str, object],
) -> None:
    server.reply = Reply(status=status, body=body, headers=headers)
    with pytest.raises(error) as caught:
        client.send("purchase", **purchase())
    assert caught.value.status_code == status
    assert caught.value.event_id == "purchase_10023"
    for name, expected in checks.items():
        assert getattr(caught.value, name) == expected
    assert KEY not in str(caught.value)


def test_429_with_an_http_date_retry_after(server: IngestServer, client: Client) -> None:
    later = datetime.now(UTC) + timedelta(seconds=120)
    server.reply = Reply(status=429, headers={"Retry-After": format_datetime(later, usegmt=True)})
    with pytest.raises(QuotaExceeded) as caught:
        client.send("lead")
    assert caught.value.retry_after is not None
    assert 100 <= caught.value.retry_after <= 120


def test_a_slow_server_is_a_transient_read_timeout(server: IngestServer, client: Client) -> None:
    server.reply = Reply(delay=5.0)
    with pytest.raises(TransientError, match=r"timed out.*ReadTimeout") as caught:
        client.send("lead", event_id="lead_slow")
    assert caught.value.event_id == "lead_slow"
    assert caught.value.status_code is None


@pytest.mark.parametrize("when", ["before-body", "after-body"])
def test_a_dropped_connection_is_transient(server: IngestServer, client: Client, when: str) -> None:
    server.reply = Reply(drop=when)
    with pytest.raises(TransientError, match="could not reach the ingest API"):
        client.send("lead", user_data={"email": EMAIL})


def test_a_refused_connection_is_transient() -> None:
    refused = Client(KEY, endpoint=f"http://127.0.0.1:{closed_port()}", outbox=None)
    with refused, pytest.raises(TransientError, match="ConnectError"):
        refused.send("lead")


def test_send_validates_before_touching_the_network(server: IngestServer, client: Client) -> None:
    with pytest.raises(InvalidEvent):
        client.send("purchase", value="12", currency=None)
    assert server.requests == []


def test_send_without_an_api_key_is_a_configuration_error(server: IngestServer) -> None:
    keyless = Client(endpoint=server.url, outbox=None)
    with keyless, pytest.raises(ConfigurationError, match="ROASPROOF_API_KEY"):
        keyless.send("lead")
    assert server.requests == []


def test_a_disabled_client_sends_nothing(server: IngestServer) -> None:
    with Client(KEY, endpoint=server.url, enabled=False, outbox=None) as off:
        result = off.send("lead", event_id="lead_off")
    assert result == DeliveryResult("lead_off", 0, ())
    assert server.requests == []


def test_the_api_key_never_appears_in_repr_errors_or_logs(
    server: IngestServer, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert KEY not in repr(client)
    assert "api_key='<set>'" in repr(client)
    assert KEY not in repr(client.settings)
    texts = []
    for status in (202, 401, 403, 422, 429, 500):
        server.reply = Reply(status=status, body=b'{"error": "x", "field": "event"}')
        try:
            client.send("lead")
        except DeliveryError as error:
            texts += [str(error), repr(error)]
    server.reply = Reply(drop="after-body")
    with pytest.raises(TransientError) as caught:
        client.send("lead")
    texts.append(str(caught.value))
    assert caplog.text
    assert KEY not in caplog.text
    assert all(KEY not in text for text in texts)


# -- asend() ----------------------------------------------------------------------------


async def test_asend_posts_the_same_request_as_send(server: IngestServer) -> None:
    async with Client(KEY, endpoint=server.url, outbox=None) as aclient:
        result = await aclient.asend("purchase", **purchase())
        await aclient.asend("lead", event_id="lead_2")
        expected = encode_payload(aclient.build_payload("purchase", **purchase()))
    assert result.destinations == (Destination("meta", "queued"),)
    assert server.requests[0].body == expected
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert server.requests[0].headers["idempotency-key"] == "purchase_10023"
    assert len({request.port for request in server.requests}) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (422, EventRejected),
        (401, AuthenticationFailed),
        (429, QuotaExceeded),
        (503, TransientError),
    ],
)
async def test_asend_raises_the_typed_error(
    server: IngestServer, status: int, error: type[DeliveryError]
) -> None:
    server.reply = Reply(status=status, body=b'{"field": "value", "message": "too big"}')
    async with Client(KEY, endpoint=server.url, outbox=None) as aclient:
        with pytest.raises(error):
            await aclient.asend("lead")


async def test_asend_timeouts_drops_and_refusals_are_transient(server: IngestServer) -> None:
    server.reply = Reply(delay=5.0)
    async with Client(KEY, endpoint=server.url, outbox=None, read_timeout=0.3) as aclient:
        with pytest.raises(TransientError, match="ReadTimeout"):
            await aclient.asend("lead")
        server.reply = Reply(drop="after-body")
        with pytest.raises(TransientError, match="could not reach"):
            await aclient.asend("lead")
    async with Client(KEY, endpoint=f"http://127.0.0.1:{closed_port()}", outbox=None) as gone:
        with pytest.raises(TransientError, match="ConnectError"):
            await gone.asend("lead")


async def test_asend_when_disabled_sends_nothing(server: IngestServer) -> None:
    async with Client(KEY, endpoint=server.url, outbox=None, enabled=False) as off:
        assert (await off.asend("lead")).status_code == 0
    assert server.requests == []


# -- track() through the Delivery seam ----------------------------------------------------


class RecordingDelivery:
    """A Delivery that keeps what it is given, in memory (the seam, not a mock of our code)."""

    def __init__(self, *, fail_with: Exception | None = None) -> None:
        self.events: dict[str, tuple[str, bytes]] = {}
        self.rejected: list[RejectedSummary] = []
        self.fail_with = fail_with
        self.closed_with: list[float | None] = []

    def enqueue(self, event_id: str, event: str, body: bytes) -> bool:
        if self.fail_with is not None:
            raise self.fail_with
        if event_id in self.events:
            return False
        self.events[event_id] = (event, body)
        return True

    def record_rejected(self, summary: RejectedSummary) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.rejected.append(summary)

    def flush(self, timeout: float | None = None) -> bool:
        return timeout != 0

    def close(self, timeout: float | None = None) -> None:
        self.closed_with.append(timeout)

    def stats(self) -> Mapping[str, int]:
        return {"pending": len(self.events), "delivered": 0}


@pytest.fixture
def delivery() -> RecordingDelivery:
    return RecordingDelivery()


@pytest.fixture
def errors() -> list[Exception]:
    return []


@pytest.fixture
def tracker(delivery: RecordingDelivery, errors: list[Exception]) -> Client:
    return Client(KEY, delivery=delivery, on_error=errors.append)


def test_track_enqueues_the_encoded_payload_and_returns_the_event_id(
    tracker: Client, delivery: RecordingDelivery
) -> None:
    with bind_context(RequestContext(visitor_id="vid_9")):
        event_id = tracker.track("purchase", **purchase())
        expected = encode_payload(tracker.build_payload("purchase", **purchase()))
    assert event_id == "purchase_10023"
    assert delivery.events == {"purchase_10023": ("purchase", expected)}
    assert b"vid_9" in expected
    assert EMAIL.encode() not in expected


def test_track_generates_an_event_id_when_none_is_given(
    tracker: Client, delivery: RecordingDelivery
) -> None:
    first, second = tracker.track("page_view"), tracker.track("page_view")
    assert first != second
    assert set(delivery.events) == {first, second}


def test_tracking_the_same_event_id_twice_is_a_no_op(
    tracker: Client, delivery: RecordingDelivery
) -> None:
    assert tracker.track("lead", event_id="lead_5") == "lead_5"
    assert tracker.track("lead", event_id="lead_5", value="1", currency="USD") == "lead_5"
    assert len(delivery.events) == 1
    assert tracker.stats() == {
        "tracked": 1,
        "duplicates": 1,
        "invalid": 0,
        "errors": 0,
        "inert": 0,
        "pending": 1,
        "delivered": 0,
    }


def test_track_accepts_an_event_instance(tracker: Client, delivery: RecordingDelivery) -> None:
    event = Event(event="signup", event_id="signup_3")
    assert tracker.track(event) == "signup_3"
    assert delivery.events["signup_3"][0] == "signup"


def test_an_invalid_event_in_production_is_logged_reported_and_kept_without_pii(
    tracker: Client,
    delivery: RecordingDelivery,
    errors: list[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad: dict[str, Any] = {
        "user_data": {"email": EMAIL, "client_ip_address": "x"},
        "value": "-3",
        "currency": "EUR",
    }
    with caplog.at_level(logging.ERROR, logger="roasproof"):
        event_id = tracker.track("purchase", event_id="purchase_77", **bad)
    assert event_id == "purchase_77"
    assert delivery.events == {}
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.name == "roasproof"
    assert "user_data.client_ip_address" in record.getMessage()
    assert EMAIL not in caplog.text
    [error] = errors
    assert isinstance(error, InvalidEvent)
    [summary] = delivery.rejected
    assert summary.event == "purchase"
    assert summary.event_id == "purchase_77"
    assert "user_data.client_ip_address" in summary.fields
    assert EMAIL not in summary.message
    assert tracker.stats()["invalid"] == 1


def test_an_invalid_event_without_an_id_still_returns_one(tracker: Client) -> None:
    event_id = tracker.track("Not An Event")
    assert isinstance(event_id, str)
    assert len(event_id) == 32


def test_an_invalid_event_instance_returns_its_own_id(tracker: Client) -> None:
    event = Event(event="my_custom", event_id="custom_1")
    strict = Client(KEY, delivery=RecordingDelivery(), custom_events=["other"])
    assert strict.track(event) == "custom_1"
    assert tracker.track(event) == "custom_1"


def test_strict_mode_raises_invalid_events(delivery: RecordingDelivery) -> None:
    strict = Client(KEY, delivery=delivery, strict=True)
    with pytest.raises(InvalidEvent) as caught:
        strict.track("purchase", value="10")
    assert "currency" in str(caught.value)
    assert delivery.rejected == []


def test_an_unexpected_error_never_raises_and_its_message_is_not_logged(
    errors: list[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    boom = RuntimeError(f"disk full while writing {EMAIL}")
    client = Client(KEY, delivery=RecordingDelivery(fail_with=boom), on_error=errors.append)
    with caplog.at_level(logging.ERROR, logger="roasproof"):
        assert client.track("lead", event_id="lead_1") == "lead_1"
    assert errors == [boom]
    assert "RuntimeError" in caplog.text
    assert EMAIL not in caplog.text
    assert client.stats()["errors"] == 1


def test_an_unexpected_error_raises_in_strict_mode() -> None:
    client = Client(KEY, delivery=RecordingDelivery(fail_with=OSError("disk")), strict=True)
    with pytest.raises(OSError, match="disk"):
        client.track("lead")


def test_a_failing_rejected_summary_is_counted_not_raised(errors: list[Exception]) -> None:
    client = Client(KEY, delivery=RecordingDelivery(fail_with=OSError()), on_error=errors.append)
    client.track("purchase", value="5")
    assert [type(error) for error in errors] == [InvalidEvent]
    assert client.stats()["errors"] == 1
    assert client.stats()["invalid"] == 1


def test_a_raising_on_error_hook_does_not_break_the_caller(
    delivery: RecordingDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(exc: Exception) -> None:
        raise ValueError("hook bug")

    client = Client(KEY, delivery=delivery, on_error=hook)
    client.track("purchase", value="5", event_id="p1")
    assert "on_error hook raised ValueError" in caplog.text


def test_without_an_api_key_track_is_inert_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = Client(outbox=None)
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        assert client.track("lead", event_id="lead_1") == "lead_1"
        client.track("lead")
    [warning] = caplog.records
    assert "not configured" in warning.getMessage()
    assert client.stats()["inert"] == 2
    assert client.flush() is True
    client.close()


def test_without_an_api_key_invalid_events_are_still_reported(errors: list[Exception]) -> None:
    client = Client(on_error=errors.append)
    client.track("purchase", value="5")
    assert len(errors) == 1
    assert client.stats()["invalid"] == 1


def test_strict_mode_without_an_api_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="ROASPROOF_API_KEY"):
        Client(strict=True).track("lead")


def test_a_disabled_client_is_inert_and_silent(
    delivery: RecordingDelivery, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(KEY, delivery=delivery, enabled=False, strict=True)
    other = Client(enabled=False, strict=True)
    assert client.track("lead", event_id="lead_1") == "lead_1"
    assert other.track("lead", event_id="lead_2") == "lead_2"
    assert delivery.events == {}
    assert caplog.records == []


def test_an_explicit_delivery_needs_no_api_key(delivery: RecordingDelivery) -> None:
    assert Client(delivery=delivery).track("lead", event_id="lead_1") == "lead_1"
    assert "lead_1" in delivery.events


def test_flush_and_close_go_to_the_delivery(tracker: Client, delivery: RecordingDelivery) -> None:
    assert tracker.flush() is True
    assert tracker.flush(timeout=0) is False
    with tracker:
        pass
    tracker.close(timeout=2.0)
    assert delivery.closed_with == [None, 2.0]


async def test_aclose_closes_the_delivery_off_the_event_loop(
    tracker: Client, delivery: RecordingDelivery
) -> None:
    async with tracker:
        pass
    await tracker.aclose(timeout=1.0)
    assert delivery.closed_with == [None, 1.0]


# -- the default delivery engine, end to end -------------------------------------------


@pytest.mark.parametrize("durable", [True, False])
def test_track_creates_the_default_delivery_lazily_and_it_delivers(
    server: IngestServer, tmp_path: Path, durable: bool
) -> None:
    outbox = tmp_path / "outbox.sqlite3" if durable else None
    client = Client(KEY, endpoint=server.url, outbox=outbox)
    assert client.flush(timeout=0) is True  # nothing created yet
    assert not (tmp_path / "outbox.sqlite3").exists()
    try:
        event_id = client.track("purchase", **purchase())
        expected = encode_payload(client.build_payload("purchase", **purchase()))
        assert client.flush(timeout=10) is True
    finally:
        client.close(timeout=5)
    [request] = server.requests
    assert event_id == "purchase_10023"
    assert request.body == expected
    assert request.headers["idempotency-key"] == event_id
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert client.stats()["tracked"] == 1
    written = b"".join(path.read_bytes() for path in tmp_path.glob("outbox.sqlite3*"))
    assert bool(written) is durable
    assert KEY.encode() not in written
    assert EMAIL.encode() not in written


def test_concurrent_first_tracks_share_one_delivery(server: IngestServer) -> None:
    client = Client(KEY, endpoint=server.url, outbox=None)
    with client._lock:  # every thread passes the unlocked check, then queues on the lock
        threads = [
            threading.Thread(target=client.track, args=("lead",), kwargs={"event_id": f"l{i}"})
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    try:
        assert client.flush(timeout=10) is True
    finally:
        client.close(timeout=5)
    assert sorted(request.headers["idempotency-key"] for request in server.requests) == [
        "l0",
        "l1",
        "l2",
        "l3",
    ]
    assert client.stats()["tracked"] == 4


def test_a_child_forked_while_another_thread_holds_the_lock_can_track(
    tracker: Client, delivery: RecordingDelivery
) -> None:
    # Deterministic: the client's own lock is held by another thread at the moment of the
    # fork. (Forking while other threads run arbitrary code can also inherit locks held
    # inside third-party libraries; that is fork's hazard, not what this test checks.)
    tracker.track("lead", event_id="before_the_fork")
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:  # as if caught inside _count() at the moment of the fork
        with tracker._lock:
            held.set()
            release.wait(10)

    threads = [threading.Thread(target=hold_the_lock)]
    for thread in threads:
        thread.start()
    held.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:  # a deadlocked child prints where it hangs and exits, never runs pytest on
            faulthandler.dump_traceback_later(10, exit=True)
            before = tracker.stats()["tracked"]
            ok = tracker.track("lead", event_id="from_the_child") == "from_the_child"
            ok = ok and "from_the_child" in delivery.events
            code = 0 if ok and tracker.stats()["tracked"] == before + 1 else 1
        finally:
            os._exit(code)
    release.set()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 20
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked")
    assert os.waitstatus_to_exitcode(done[1]) == 0
    assert "from_the_child" not in delivery.events
    assert tracker.track("lead", event_id="from_the_parent") == "from_the_parent"


def test_the_fork_hook_gives_every_client_a_fresh_lock(tracker: Client) -> None:
    inherited = tracker._lock
    inherited.acquire()  # held by a thread that does not exist in the child
    try:
        _after_fork_in_child()
        assert tracker._lock is not inherited
        assert not tracker._lock.locked()
    finally:
        inherited.release()
