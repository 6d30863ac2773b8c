"""The Flask extension: init_app, configuration, per-app clients, context binding, Jinja global."""

from __future__ import annotations

import logging

import pytest
from flask import Flask, Response, render_template_string, request

import roasproof
from roasproof import (
    ConfigurationError,
    RequestContext,
    conversion,
    current_context,
    make_event_id,
    track_conversion,
)
from roasproof.testing import CapturedEvents
from roasproof_flask import CLIENT_SETTINGS, Roasproof


def context_json() -> dict[str, str]:
    ctx = current_context()
    return {} if ctx is None else ctx.to_dict()


def make_app(**config: object) -> Flask:
    app = Flask(__name__)
    app.config.update(TESTING=True, **config)

    @app.get("/context")
    def show_context() -> dict[str, str]:
        return context_json()

    @app.post("/checkout/<int:order_id>")
    @track_conversion("purchase", currency="EUR")
    def checkout(order_id: int) -> tuple[str, int]:
        conversion.update(event_id=make_event_id("purchase", order_id), value=order_id)
        return "created", 201

    @app.get("/boom")
    def boom() -> str:
        assert current_context() is not None
        raise RuntimeError("view failed")

    return app


@pytest.fixture
def app() -> Flask:
    app = make_app()
    Roasproof(app)
    return app


def test_the_view_sees_the_visitors_context(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "vid-1")
    client.set_cookie("_fbp", "fb.1.1700000000000.123")
    response = client.get(
        "/context?gclid=CjwKCAiA-AbC_dEf&fbclid=IwAR0-XyZ",
        headers={"User-Agent": "Mozilla/5.0 test"},
    )
    data = response.get_json()
    assert data["visitor_id"] == "vid-1"
    assert data["client_ip_address"] == "127.0.0.1"
    assert data["client_user_agent"] == "Mozilla/5.0 test"
    assert data["gclid"] == "CjwKCAiA-AbC_dEf"  # case kept
    assert data["fbclid"] == "IwAR0-XyZ"
    assert data["fbc"].startswith("fb.1.")
    assert data["fbc"].endswith(".IwAR0-XyZ")
    assert data["fbp"] == "fb.1.1700000000000.123"
    assert data["url"] == "http://localhost/context?gclid=CjwKCAiA-AbC_dEf&fbclid=IwAR0-XyZ"


def test_context_is_reset_after_the_request(app: Flask) -> None:
    app.test_client().get("/context")
    assert current_context() is None


def test_context_is_reset_after_an_exception(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="view failed"):
        app.test_client().get("/boom")  # TESTING propagates the exception
    assert current_context() is None
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert app.test_client().get("/boom").status_code == 500
    assert current_context() is None


def test_decorated_route_fires_with_the_visitors_identifiers(
    app: Flask, roasproof_events: CapturedEvents
) -> None:
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "vid-9")
    assert client.post("/checkout/42?gclid=AbC", headers={"User-Agent": "UA"}).status_code == 201
    roasproof_events.assert_tracked(
        "purchase",
        event_id="purchase_42",
        value=42,
        user_data={"visitor_id": "vid-9", "gclid": "AbC", "client_ip_address": "127.0.0.1"},
    )


def test_async_view_keeps_the_context_and_fires(roasproof_events: CapturedEvents) -> None:
    app = make_app()

    @app.post("/async-lead")
    @track_conversion("lead")
    async def async_lead() -> dict[str, str]:
        conversion.update(user_data={"email": "ada@example.com"})
        return context_json()

    Roasproof(app)
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "vid-async")
    assert client.post("/async-lead").get_json()["visitor_id"] == "vid-async"
    roasproof_events.assert_tracked(
        "lead", user_data={"visitor_id": "vid-async", "email": "ada@example.com"}
    )


def test_factory_pattern_registers_state_in_app_extensions_not_on_the_extension() -> None:
    ext = Roasproof()
    app = make_app()
    ext.init_app(app)
    assert not hasattr(ext, "app")
    assert "roasproof" in app.extensions
    for name in (*CLIENT_SETTINGS, "trusted_proxies", "client"):
        assert f"ROASPROOF_{name.upper()}" in app.config


def test_double_initialisation_is_a_clear_error(app: Flask) -> None:
    with pytest.raises(ConfigurationError, match="already initialised on the Flask app") as error:
        Roasproof(app)
    assert "once per app" in str(error.value)


def test_each_app_gets_its_own_client_without_bleeding_configuration() -> None:
    ext = Roasproof()
    shop = make_app(ROASPROOF_API_KEY="key-shop", ROASPROOF_OUTBOX=":memory:")
    blog = make_app(
        ROASPROOF_API_KEY="key-blog", ROASPROOF_STRICT=True, ROASPROOF_OUTBOX=":memory:"
    )
    plain = make_app()
    for app in (shop, blog, plain):
        ext.init_app(app)
    with shop.app_context():
        shop_client = ext.client
        assert shop_client.settings.api_key == "key-shop"
        assert not shop_client.settings.strict
    with blog.app_context():
        assert ext.client.settings.api_key == "key-blog"
        assert ext.client.settings.strict
    with plain.app_context():
        assert ext.client is _default_client()
    with shop.app_context():
        assert ext.client is shop_client


def _default_client() -> roasproof.Client:

    return roasproof.get_client()


def test_decorator_uses_the_apps_own_client_during_its_requests(
    roasproof_events: CapturedEvents,
) -> None:
    own = _capturing_client()
    app = make_app(ROASPROOF_CLIENT=own.client)
    Roasproof(app)
    app.test_client().post("/checkout/7")
    assert [event.event_id for event in own.events] == ["purchase_7"]
    roasproof_events.assert_not_tracked()  # the default client saw nothing


def _capturing_client() -> CapturedEvents:
    from roasproof.testing import _CapturingDelivery

    delivery = _CapturingDelivery()
    return CapturedEvents(roasproof.Client(strict=True, delivery=delivery), delivery)


def test_extension_wide_client_argument_is_used_when_the_app_has_no_client_settings() -> None:
    own = _capturing_client()
    app = make_app()
    ext = Roasproof(app, client=own.client)
    with app.app_context():
        assert ext.client is own.client
    app.test_client().post("/checkout/8")
    own.assert_tracked("purchase", event_id="purchase_8")


def test_app_without_client_settings_uses_the_default_client(
    app: Flask, roasproof_events: CapturedEvents
) -> None:
    app.test_client().post("/checkout/5")
    roasproof_events.assert_tracked("purchase", event_id="purchase_5")


def test_invalid_setting_fails_at_init_app_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="default_phone_region"):
        Roasproof(make_app(ROASPROOF_DEFAULT_PHONE_REGION="Atlantis"))
    with pytest.raises(ConfigurationError, match="trusted_proxies"):
        Roasproof(make_app(ROASPROOF_TRUSTED_PROXIES="not a network"))


def test_client_accessor_outside_an_initialised_app_says_how_to_fix() -> None:
    ext = Roasproof()
    app = make_app()
    with app.app_context(), pytest.raises(ConfigurationError, match="not initialised on the"):
        _ = ext.client


def test_a_client_setting_that_is_not_a_client_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="ROASPROOF_CLIENT is a str"):
        Roasproof(make_app(ROASPROOF_CLIENT="rp_key"))


def test_jinja_global_renders_the_deterministic_event_id(app: Flask) -> None:
    with app.test_request_context():
        rendered = render_template_string("{{ roasproof_event_id('purchase', 10023) }}")
    assert rendered == "purchase_10023" == make_event_id("purchase", 10023)


def test_unconfigured_app_is_inert_no_error_and_one_warning(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        assert app.test_client().post("/checkout/1").status_code == 201
        assert app.test_client().post("/checkout/2").status_code == 201
    assert _default_client().stats()["inert"] == 2
    assert caplog.text.count("not configured") == 1


def test_disabled_app_is_inert_without_warnings(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(ROASPROOF_ENABLED=False, ROASPROOF_API_KEY="key", ROASPROOF_OUTBOX=":memory:")
    ext = Roasproof(app)
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        assert app.test_client().post("/checkout/1").status_code == 201
    with app.app_context():
        assert ext.client.stats()["inert"] == 1
    assert caplog.text == ""


def test_every_hook_of_the_request_sees_the_visitor_and_nothing_stays_bound() -> None:
    # The context is bound around the whole request: hooks registered before the
    # extension, error handlers and teardown functions see the visitor too.
    app = make_app()
    seen: dict[str, str | None] = {}

    def visitor() -> str | None:
        found = current_context()
        return None if found is None else found.visitor_id

    @app.before_request
    def maintenance() -> Response | None:
        seen["before_request"] = visitor()
        if request.path == "/down":
            return Response("down for maintenance", status=503)
        return None

    @app.get("/fails")
    def fails() -> str:
        raise LookupError("no such order")

    @app.errorhandler(LookupError)
    def not_found(error: LookupError) -> tuple[str, int]:
        seen["errorhandler"] = visitor()
        return "not found", 404

    @app.teardown_request
    def teardown(error: BaseException | None) -> None:
        seen["teardown_request"] = visitor()

    Roasproof(app)  # registered after the hooks
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "vid-hooks")
    assert client.get("/down").status_code == 503
    assert seen == {"before_request": "vid-hooks", "teardown_request": "vid-hooks"}
    assert client.get("/fails").status_code == 404
    assert seen["errorhandler"] == "vid-hooks"
    assert current_context() is None


def test_a_request_made_inside_a_request_restores_the_outer_context() -> None:
    app = make_app()

    @app.get("/outer")
    def outer() -> dict[str, object]:
        inner_client = app.test_client()
        inner_client.set_cookie("_sgnl_vid", "inner")
        inner = inner_client.get("/context")
        return {"inner": inner.get_json(), "outer": context_json()}

    Roasproof(app)
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "outer")
    data = client.get("/outer").get_json()
    assert data["inner"]["visitor_id"] == "inner"
    assert data["outer"]["visitor_id"] == "outer"
    assert current_context() is None


def test_context_round_trips_through_to_dict(app: Flask) -> None:
    client = app.test_client()
    client.set_cookie("_sgnl_vid", "vid-2")
    data = client.get("/context").get_json()
    assert RequestContext.from_dict(data).visitor_id == "vid-2"


@pytest.mark.parametrize("proxy_fix_first", [True, False])
def test_proxy_fix_before_or_after_the_extension_gives_the_forwarded_client(
    proxy_fix_first: bool,
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = make_app()
    if proxy_fix_first:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    Roasproof(app)
    if not proxy_fix_first:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    response = app.test_client().get(
        "/context",
        headers={"X-Forwarded-For": "198.51.100.23"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert response.get_json()["client_ip_address"] == "198.51.100.23"
