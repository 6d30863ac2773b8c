"""The WSGI middleware, driven by Werkzeug's test client and a threaded server on loopback."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import pytest
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.test import Client

from roasproof import ConfigurationError, RequestContext, bind_context, current_context
from roasproof.context import _current
from roasproof.wsgi import RoasproofMiddleware

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

REAL = "203.0.113.7"
PROXY = "10.0.0.2"
SPOOF = {"X-Forwarded-For": f"6.6.6.6, {REAL}"}


@pytest.fixture(autouse=True)
def _nothing_left_bound() -> Iterator[None]:
    yield
    assert current_context() is None
    assert _current.get() is None


def snapshot() -> dict[str, str]:
    context = current_context()
    return {} if context is None else context.to_dict()


def capture_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Reads the context twice around a short sleep, so threaded requests interleave."""
    first = snapshot()
    time.sleep(random.random() / 200)
    body = json.dumps({**snapshot(), "first": first}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def get(app: WSGIApplication, path: str = "/", peer: str = REAL, **headers: str) -> Any:
    client = Client(app, use_cookies=False)  # keep our Cookie header as sent
    response = client.get(
        path, headers=headers, environ_base={"REMOTE_ADDR": peer}, base_url="https://shop.example"
    )
    return response.json


# --- capture ------------------------------------------------------------------------------------


def test_wsgi_request_sees_the_visitors_context() -> None:
    seen = get(
        RoasproofMiddleware(capture_app),
        "/thank-you?gclid=G-1",
        Cookie="_sgnl_vid=v1; _fbc=fb.1.1.x",
        **{"User-Agent": "Mozilla/5.0"},
    )
    assert seen == {
        "visitor_id": "v1",
        "client_ip_address": REAL,
        "client_user_agent": "Mozilla/5.0",
        "url": "https://shop.example/thank-you?gclid=G-1",
        "fbc": "fb.1.1.x",
        "gclid": "G-1",
        "first": seen["first"],
    }
    assert seen["first"] == {key: value for key, value in seen.items() if key != "first"}


def test_context_is_unbound_after_the_app_returns() -> None:
    get(RoasproofMiddleware(capture_app), Cookie="_sgnl_vid=v1")
    assert current_context() is None


def test_context_reset_after_the_app_raises() -> None:
    def boom(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert current_context() is not None
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        RoasproofMiddleware(boom)({"REMOTE_ADDR": REAL}, lambda *args: lambda data: None)
    assert current_context() is None
    assert _current.get() is None


def test_response_iterable_is_returned_unchanged() -> None:
    body = iter([b"a", b"b"])

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return body

    assert RoasproofMiddleware(app)({}, lambda *args: lambda data: None) is body


def test_streamed_body_runs_after_the_context_is_reset() -> None:
    """Documented: track in the view; a generator body sees a defined absence, not stale data."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return (json.dumps(snapshot()).encode() for _ in range(1))

    assert get(RoasproofMiddleware(app), Cookie="_sgnl_vid=v1") == {}


def test_request_body_is_left_for_the_app_to_read() -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        length = int(environ["CONTENT_LENGTH"])
        body = environ["wsgi.input"].read(length)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"body": body.decode(), **snapshot()}).encode()]

    response = Client(RoasproofMiddleware(app)).post("/", data=b"order=10023")
    assert response.get_json() == {"body": "order=10023", "url": "http://localhost/"}


class RecordingEnviron(dict[str, Any]):
    """An environ that remembers every key read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def test_nothing_is_read_from_the_environ_unless_the_app_asks() -> None:
    def quiet(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return []

    def asks(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert current_context() is not None
        return []

    environ = RecordingEnviron(REMOTE_ADDR=REAL, HTTP_COOKIE="_sgnl_vid=v1")
    RoasproofMiddleware(quiet)(environ, lambda *args: lambda data: None)
    assert environ.read == []
    RoasproofMiddleware(asks)(environ, lambda *args: lambda data: None)
    assert "HTTP_COOKIE" in environ.read


def test_broken_environ_costs_the_context_not_the_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[object] = []

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        seen.append(current_context())
        return []

    with caplog.at_level(logging.WARNING, logger="roasproof"):
        RoasproofMiddleware(app)({"REMOTE_ADDR": 12345}, lambda *args: lambda data: None)
    assert seen == [None]
    assert "could not read the request context (TypeError)" in caplog.text


# --- proxies and installation -------------------------------------------------------------


def test_forwarding_headers_ignored_without_trusted_proxies() -> None:
    assert get(RoasproofMiddleware(capture_app), peer=PROXY, **SPOOF)["client_ip_address"] == PROXY


@pytest.mark.parametrize("trusted", [1, ["10.0.0.0/8"]])
def test_trusted_proxies_take_the_entry_our_proxy_appended(trusted: Any) -> None:
    app = RoasproofMiddleware(capture_app, trusted_proxies=trusted)
    assert get(app, peer=PROXY, **SPOOF)["client_ip_address"] == REAL


def test_proxyfix_recipe_gives_the_real_client_with_default_settings() -> None:
    app = ProxyFix(RoasproofMiddleware(capture_app), x_for=1, x_proto=1, x_host=1)
    seen = get(
        app,
        "/a",
        peer=PROXY,
        **SPOOF,
        **{"X-Forwarded-Proto": "https", "X-Forwarded-Host": "shop.example"},
    )
    assert seen["client_ip_address"] == REAL
    assert seen["url"] == "https://shop.example/a"


def test_invalid_trusted_proxies_fail_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        RoasproofMiddleware(capture_app, trusted_proxies=-1)


def test_installed_twice_the_outer_copy_wins_and_the_inner_passes_through() -> None:
    app = RoasproofMiddleware(RoasproofMiddleware(capture_app), trusted_proxies=1)
    assert get(app, peer=PROXY, **SPOOF)["client_ip_address"] == REAL


def test_a_context_bound_between_two_copies_is_kept_by_the_inner_one() -> None:
    def binding(app: WSGIApplication) -> WSGIApplication:
        def bound(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            with bind_context(RequestContext(visitor_id="from-the-app")):
                return app(environ, start_response)

        return bound

    app = RoasproofMiddleware(binding(RoasproofMiddleware(capture_app)))
    assert get(app, Cookie="_sgnl_vid=from-the-cookie")["visitor_id"] == "from-the-app"


# --- a real threaded server on loopback -------------------------------------------------------


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def server_url() -> Iterator[str]:
    app = RoasproofMiddleware(capture_app, trusted_proxies=["127.0.0.1/32"])
    server = make_server("127.0.0.1", 0, app, ThreadingServer, QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_threaded_server_requests_never_see_each_others_context(server_url: str) -> None:
    def one(number: int) -> Any:
        headers = {"Cookie": f"_sgnl_vid=v{number}", **SPOOF}
        return client.get(f"/p?ttclid=t{number}", headers=headers).json()

    with httpx.Client(base_url=server_url) as client, ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(120)))
    for number, seen in enumerate(results):
        expected = (f"v{number}", f"t{number}", REAL)
        assert (seen["visitor_id"], seen["ttclid"], seen["client_ip_address"]) == expected
        assert seen["first"]["visitor_id"] == f"v{number}"
