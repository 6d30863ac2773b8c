"""The pitfalls every Flask tracker meets: threads, proxies, odd cookies, streaming, bodies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from flask import Flask, Response, request, stream_with_context

import roasproof
from roasproof import bind_context, conversion, current_context, make_event_id, track_conversion
from roasproof.testing import CapturedEvents
from roasproof_flask import Roasproof


def visitor() -> dict[str, str]:
    ctx = current_context()
    return {} if ctx is None else ctx.to_dict()


def make_app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)

    @app.get("/context")
    def show_context() -> dict[str, str]:
        return visitor()

    Roasproof(app)
    return app


def raw_get(app: Flask, path: str, **headers: str) -> dict[str, str]:
    """GET with headers exactly as given (the test client's cookie jar is off)."""
    response = app.test_client(use_cookies=False).get(path, headers=headers)
    data: dict[str, str] = response.get_json()
    return data


def test_threaded_server_requests_never_see_each_others_identifiers(
    serve: Callable[..., str], roasproof_events: CapturedEvents
) -> None:
    app = make_app()

    @app.post("/checkout/<int:order_id>")
    @track_conversion("purchase", currency="EUR")
    def checkout(order_id: int) -> dict[str, object]:
        before = visitor()
        time.sleep(0.02)  # let the other threads interleave
        conversion.update(event_id=make_event_id("purchase", order_id), value=order_id)
        return {"before": before, "after": visitor()}

    url = serve(app)

    def buy(n: int) -> dict[str, dict[str, str]]:
        headers = {"Cookie": f"_sgnl_vid=vid-{n}", "X-Forwarded-For": f"198.51.100.{n}"}
        response = httpx.post(f"{url}/checkout/{n}?gclid=G-{n}", headers=headers, timeout=10)
        data: dict[str, dict[str, str]] = response.json()
        return data

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(buy, range(1, 25)))
    for n, result in enumerate(results, start=1):
        assert result["before"] == result["after"]
        assert result["before"]["visitor_id"] == f"vid-{n}"
        assert result["before"]["gclid"] == f"G-{n}"
        roasproof_events.assert_tracked(
            "purchase",
            event_id=f"purchase_{n}",
            value=n,
            user_data={
                "visitor_id": f"vid-{n}",
                "gclid": f"G-{n}",
                "client_ip_address": "127.0.0.1",
            },
        )


FORGED = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}  # the client wrote 6.6.6.6; our proxy appended


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        (None, "127.0.0.1"),  # no trust configured: the peer, never the header
        (1, "203.0.113.7"),  # one proxy: the right-most entry
        ("1", "203.0.113.7"),
        (["127.0.0.0/8"], "203.0.113.7"),  # trusted networks: walk from the right
        ("127.0.0.1/32, 10.0.0.0/8", "203.0.113.7"),
    ],
)
def test_forged_left_most_forwarded_for_is_ignored(trusted: object, expected: str) -> None:
    app = make_app(ROASPROOF_TRUSTED_PROXIES=trusted)
    assert raw_get(app, "/context", **FORGED)["client_ip_address"] == expected


def test_trusted_networks_that_exclude_the_peer_ignore_the_header() -> None:
    app = make_app(ROASPROOF_TRUSTED_PROXIES=["10.0.0.0/8"])
    assert raw_get(app, "/context", **FORGED)["client_ip_address"] == "127.0.0.1"


def test_trusted_proxies_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROASPROOF_TRUSTED_PROXIES", "1")
    assert raw_get(make_app(), "/context", **FORGED)["client_ip_address"] == "203.0.113.7"


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("_sgnl_vid=first; _sgnl_vid=second", "first"),
        ('_sgnl_vid="quoted-id"', "quoted-id"),
        ("=; ;;; _sgnl_vid=ok-1; junk", "ok-1"),
        ("_sgnl_vid=" + "x" * 5000, None),  # oversized: dropped, the request still works
        ("_sgnl_vid=has space", None),
        ("_sgnl_vid=", None),
        ("_sgnl_vid=\x7fcontrol", None),
        ("garbage without equals sign", None),
    ],
)
def test_malformed_duplicated_and_oversized_cookies(cookie: str, expected: str | None) -> None:
    data = raw_get(make_app(), "/context", Cookie=cookie)
    assert data.get("visitor_id") == expected
    assert data["client_ip_address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gclid=CjwKCAiA-MiXeD_CaSe", "CjwKCAiA-MiXeD_CaSe"),  # click ids keep their case
        ("gclid=first&gclid=second", "first"),
        ("gclid=&gclid=second", "second"),
        ("gclid=" + "a" * 5000, None),
        ("gclid=%E2%9C%93bad", None),  # not visible ASCII
        ("gclid=%ZZ%", "%ZZ%"),  # malformed escapes survive as text
        ("GCLID=upper-key", None),  # parameter names are case-sensitive
    ],
)
def test_malformed_duplicated_and_oversized_query_values(query: str, expected: str | None) -> None:
    assert raw_get(make_app(), f"/context?{query}").get("gclid") == expected


def test_streamed_body_without_stream_with_context_sees_no_context() -> None:
    app = make_app()
    seen: list[object] = []

    @app.get("/stream")
    def stream() -> Response:
        def body() -> Iterator[str]:
            seen.append(current_context())
            yield "chunk"

        return Response(body())

    client = app.test_client(use_cookies=False)
    assert client.get("/stream", headers={"Cookie": "_sgnl_vid=v"}).data == b"chunk"
    assert seen == [None]  # a defined absence, never another request's visitor
    assert current_context() is None


def test_stream_with_context_body_sees_its_own_context_or_none() -> None:
    """Flask 3.1.0 keeps the request (and our binding) for a stream_with_context body;
    3.1.3 tears it down first. Either way: this visitor or nobody, never another one."""
    app = make_app()

    @app.get("/stream")
    def stream() -> Response:
        def body() -> Iterator[str]:
            yield request.path  # the request is back ...
            yield visitor().get("visitor_id", "|none")  # ... roasproof's context is not

        return Response(stream_with_context(body()))

    client = app.test_client(use_cookies=False)
    body = client.get("/stream", headers={"Cookie": "_sgnl_vid=v"}).data
    assert body in (b"/stream|none", b"/streamv")
    assert current_context() is None


def test_documented_recipe_tracks_from_a_streamed_body(roasproof_events: CapturedEvents) -> None:
    app = make_app()

    @app.get("/stream")
    def stream() -> Response:
        ctx = current_context()  # taken while the view runs

        def body() -> Iterator[str]:
            yield "working..."
            with bind_context(ctx):  # type: ignore[arg-type]
                roasproof.track("lead")
            yield "done"

        return Response(body())

    client = app.test_client(use_cookies=False)
    assert client.get("/stream", headers={"Cookie": "_sgnl_vid=v-stream"}).data == b"working...done"
    roasproof_events.assert_tracked("lead", user_data={"visitor_id": "v-stream"})
    assert current_context() is None


def test_handler_that_reads_the_body_still_works(roasproof_events: CapturedEvents) -> None:
    app = make_app()

    @app.post("/orders")
    @track_conversion("purchase", currency="EUR")
    def orders() -> tuple[dict[str, object], int]:
        payload = request.get_json()
        raw = request.get_data()
        conversion.update(value=payload["total"], event_id=f"purchase_{payload['id']}")
        return {"received": len(raw)}, 201

    response = app.test_client().post("/orders", json={"id": 3, "total": "12.50"})
    assert response.status_code == 201
    assert response.get_json()["received"] > 0
    roasproof_events.assert_tracked("purchase", event_id="purchase_3", value="12.50")


def test_error_status_from_a_decorated_view_fires_nothing(roasproof_events: CapturedEvents) -> None:
    app = make_app()

    @app.post("/checkout")
    @track_conversion("purchase", value=1, currency="EUR")
    def checkout() -> tuple[str, int]:
        return "payment declined", 402

    assert app.test_client().post("/checkout").status_code == 402
    roasproof_events.assert_not_tracked()
