"""A visitor from an ad buys in each example shop; the emulator receives one attributed purchase.

For the Flask, FastAPI and Django shops alike, headless Chromium lands on the shop
with ``?gclid=...&fbclid=...``; the emulator's tracking script (``/t.js``) sets the
``_sgnl_vid`` cookie and records the visitor; the browser adds to cart and checks
out. Then the emulator must hold exactly one purchase carrying:

- the landing page's gclid, recovered through the visitor join (the checkout URL has none),
- an fbc built from the landing page's fbclid (``fb.1.<ms>.<fbclid>``), the visitor's,
- the browser's user agent and IP address,
- the email hashed by the SDK before it left the shop (never plaintext),
- the event_id the thank-you page rendered for the browser pixel (deduplication).

Each shop is a real server process (gunicorn or uvicorn) configured only through
``ROASPROOF_*`` variables, delivering through the durable outbox and background sender.
Each test ends on the emulator's "Conversion events" page and screenshots it;
``E2E_SAVE_DOCS_SCREENSHOT=1`` also writes the Django one to ``docs/_static/conversions.png``.
A shop whose example is not written yet is skipped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from roasproof.emulator.server import RunningServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
EMAIL = "Ada.Lovelace@Example.com"
EMAIL_SHA256 = hashlib.sha256(b"ada.lovelace@example.com").hexdigest()
SCREENSHOT = REPO / "docs" / "_static" / "conversions.png"


@dataclass(frozen=True)
class Shop:
    """How to serve one example shop; ``app`` is the file whose absence skips the shop."""

    name: str
    app: str
    command: Callable[[int], list[str]]
    prepare: Callable[[dict[str, str], Path], None] = field(default=lambda env, tmp: None)
    checkout_api: str | None = None  # a JSON checkout the page calls, instead of a form

    @property
    def directory(self) -> Path:
        return EXAMPLES / f"{self.name}_shop"


def _migrate_django(env: dict[str, str], tmp_path: Path) -> None:
    env["SHOP_DATABASE"] = str(tmp_path / "shop.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=EXAMPLES / "django_shop",
        env=env,
        check=True,
        timeout=60,
    )


def _gunicorn(target: str) -> Callable[[int], list[str]]:
    return lambda port: [
        sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "4", "--no-control-socket",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning", target,
    ]  # fmt: skip


def _uvicorn(target: str, *options: str) -> Callable[[int], list[str]]:
    return lambda port: [
        sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", *options, target,
    ]  # fmt: skip


DJANGO = Shop("django", "manage.py", _uvicorn("django_shop.asgi:application"), _migrate_django)
SHOPS = [
    Shop("flask", "app.py", _gunicorn("app:create_app()")),
    Shop(
        "fastapi", "app.py", _uvicorn("app:create_app", "--factory"), checkout_api="/api/checkout"
    ),
    DJANGO,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=SHOPS, ids=lambda shop: shop.name)
def shop(
    request: pytest.FixtureRequest, shop_env: dict[str, str], tmp_path: Path
) -> Iterator[tuple[str, Shop]]:
    """The shop served by a real server process; yields its base URL and its spec."""
    spec: Shop = request.param
    if not (spec.directory / spec.app).exists():
        pytest.skip(f"examples/{spec.directory.name} is not written yet")
    env = dict(shop_env)
    spec.prepare(env, tmp_path)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.command(port), cwd=spec.directory, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_serving(url, process, log_path)
            yield url, spec
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_serving(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the shop exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url + "/", timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"the shop did not answer within 30s:\n{log.read_text()[-3000:]}")


def _eventually(probe: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def _visitor_cookie(context: Any) -> str | None:
    values = [c["value"] for c in context.cookies() if c["name"] == "_sgnl_vid"]
    return values[0] if values else None


def _recorded_visitor(emulator: RunningServer, visitor_id: str) -> dict[str, Any] | None:
    visitors = httpx.get(emulator.url + "/api/v1/visitors").json()["visitors"]
    found = [v for v in visitors if v.get("visitor_id") == visitor_id and v.get("gclid")]
    return found[0] if found else None


def _purchases(emulator: RunningServer) -> list[dict[str, Any]]:
    answer = httpx.get(emulator.url + "/api/v1/events", params={"event": "purchase"}).json()
    return list(answer["events"])


_FETCH_CHECKOUT = """async ([path, productId, email]) => {
  const answer = await fetch(path, {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({product_id: productId, quantity: 1, email: email}),
  });
  return await answer.json();
}"""


def _buy(page: Any, shop: Shop, *, by_invoice: bool = False) -> None:
    """Landing -> product -> (add to cart) -> checkout -> thank-you page, all in the browser.

    A shop with a JSON checkout (FastAPI) is called by ``fetch`` from its product page, as
    its own front-end would: the request still carries the browser's cookies and user agent.
    """
    page.locator("a[href*='product']").first.click()
    page.wait_for_load_state()
    if shop.checkout_api is not None:
        product_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
        receipt = page.evaluate(_FETCH_CHECKOUT, [shop.checkout_api, product_id, EMAIL])
        page.goto(urljoin(page.url, receipt["thank_you"]))
        return
    add_to_cart = page.locator("#add-to-cart, button:has-text('Add to cart')")
    if add_to_cart.count():
        add_to_cart.first.click()
        page.wait_for_load_state()
    email = page.locator("input[name=email]")
    email.fill(EMAIL)
    if by_invoice:
        page.locator("#pay-by-invoice").check()
    email.evaluate("input => input.form.requestSubmit()")
    page.wait_for_url("**/thank-you/**", timeout=15_000)


def test_a_visitor_from_an_ad_becomes_one_attributed_purchase(
    shop: tuple[str, Shop],
    emulator: RunningServer,
    browser_context: Any,
    tmp_path: Path,
) -> None:
    url, spec = shop
    name = spec.name
    gclid, fbclid = f"Cj0-GcLiD-{name}", f"IwAR-FbClId-{name}"  # case must be kept
    page = browser_context.new_page()
    page.goto(f"{url}/?gclid={gclid}&fbclid={fbclid}")

    visitor_id = _eventually(lambda: _visitor_cookie(browser_context), "the _sgnl_vid cookie")
    visitor = _eventually(lambda: _recorded_visitor(emulator, visitor_id), "the visitor record")
    _buy(page, spec)
    pixel_event_id = page.locator("[data-event-id]").first.get_attribute("data-event-id")
    user_agent = page.evaluate("navigator.userAgent")

    purchases = _eventually(lambda: _purchases(emulator), "the purchase at the emulator")
    time.sleep(0.5)  # a second copy, if any, would arrive now
    purchases = _purchases(emulator)
    assert len(purchases) == 1, [p["event_id"] for p in purchases]
    (record,) = purchases
    user_data = record["user_data"]

    assert pixel_event_id
    assert record["event_id"] == pixel_event_id
    assert record["duplicate"] is False
    assert user_data["visitor_id"] == visitor_id
    assert user_data["gclid"] == gclid
    assert "gclid" in record["visitor"]["recovered"]  # the checkout URL carried no gclid
    assert user_data["fbc"] == visitor["fbc"]
    assert user_data["fbc"].startswith("fb.1.")
    assert user_data["fbc"].endswith("." + fbclid)
    assert user_data["client_user_agent"] == user_agent
    assert user_data["client_ip_address"] == "127.0.0.1"
    assert user_data["email"] == EMAIL_SHA256
    assert "email" not in record["hashed_on_arrival"]  # hashed by the SDK, in the shop

    page.goto(emulator.url + "/")
    page.wait_for_load_state()
    page.screenshot(full_page=True, path=str(tmp_path / f"conversions-{name}.png"))
    if name == "django" and os.environ.get("E2E_SAVE_DOCS_SCREENSHOT"):
        shutil.copyfile(tmp_path / f"conversions-{name}.png", SCREENSHOT)


@pytest.mark.parametrize("shop", [DJANGO], ids=["django"], indirect=True)
def test_an_order_paid_later_by_a_webhook_keeps_the_visitors_identifiers(
    shop: tuple[str, Shop], emulator: RunningServer, browser_context: Any
) -> None:
    """Django: the payment provider's webhook pays the order, outside the visitor's request."""
    url, spec = shop
    gclid = "Cj0-GcLiD-webhook"
    page = browser_context.new_page()
    page.goto(f"{url}/?gclid={gclid}&fbclid=IwAR-webhook")
    visitor_id = _eventually(lambda: _visitor_cookie(browser_context), "the _sgnl_vid cookie")
    _eventually(lambda: _recorded_visitor(emulator, visitor_id), "the visitor record")
    _buy(page, spec, by_invoice=True)
    order = int(page.locator("#order-number").inner_text())
    pixel_event_id = page.locator("[data-event-id]").first.get_attribute("data-event-id")
    user_agent = page.evaluate("navigator.userAgent")
    time.sleep(1.0)
    assert _purchases(emulator) == []  # pending: not a conversion yet

    answer = httpx.post(
        f"{url}/webhooks/payment/",
        json={"order": order, "status": "paid"},
        headers={"X-Webhook-Secret": "whsec_example", "User-Agent": "PaymentProvider/1.0"},
    )
    assert answer.status_code == 200

    (record,) = _eventually(lambda: _purchases(emulator), "the purchase after the webhook")
    user_data = record["user_data"]
    assert record["event_id"] == pixel_event_id == f"purchase_{order}"
    assert user_data["visitor_id"] == visitor_id
    assert user_data["client_user_agent"] == user_agent  # the visitor's, not the provider's
    assert user_data["gclid"] == gclid
    assert user_data["email"] == EMAIL_SHA256
