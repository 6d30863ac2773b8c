"""End to end: the example Flask shop, served for real, against the emulator on loopback.

A visitor lands from an ad (gclid + fbclid), the tracking script reports the
visit to the emulator, the visitor buys, and the purchase that reaches the
emulator carries the visitor id, the real client IP behind one proxy, the user
agent, the hashed email, and (through the visitor join) the landing's click ids.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from roasproof.emulator import DEFAULT_API_KEY, create_app, run_in_thread

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
UA = "Mozilla/5.0 (X11; Linux x86_64) e2e-browser/1.0"
GCLID = "CjwKCAiA-TeSt_GcLiD"
FBCLID = "IwAR2-TeSt_FbClId"


def load_example(name: str) -> ModuleType:
    """Import ``examples/<name>/app.py`` as the module ``<name>_app``."""
    module_name = f"{name}_app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, EXAMPLES / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def simulate_tracking_script(emulator_url: str, landing_url: str) -> dict[str, str]:
    """What t.js does in the browser: pick a visitor id, post the visit, set the cookies."""
    visitor_id = "5b0c7a6e-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    fbc = f"fb.1.{int(time.time() * 1000)}.{FBCLID}"
    beacon = {"visitor_id": visitor_id, "url": landing_url, "gclid": GCLID, "fbclid": FBCLID}
    response = httpx.post(
        f"{emulator_url}/api/v1/collect",
        content=json.dumps(beacon | {"fbc": fbc}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA},
    )
    assert response.status_code == 200, response.text
    return {"_sgnl_vid": visitor_id, "_fbc": fbc}


@pytest.mark.slow
def test_purchase_reaches_the_emulator_with_every_identifier(
    serve: Callable[..., str], tmp_path: Path
) -> None:
    shop_module = load_example("flask_shop")
    with ExitStack() as stack:
        emulator = stack.enter_context(run_in_thread(create_app()))
        shop = shop_module.create_app(
            {
                "ROASPROOF_API_KEY": DEFAULT_API_KEY,
                "ROASPROOF_ENDPOINT": emulator.url,
                "ROASPROOF_OUTBOX": str(tmp_path / "outbox.sqlite3"),
                "ROASPROOF_TRUSTED_PROXIES": 1,  # one proxy in front, appending to XFF
                "EMULATOR_URL": emulator.url,
            }
        )
        shop_url = serve(shop)
        browser = httpx.Client(base_url=shop_url, headers={"User-Agent": UA}, timeout=10)
        stack.callback(browser.close)

        landing = browser.get("/", params={"gclid": GCLID, "fbclid": FBCLID})
        assert f'src="{emulator.url}/t.js"' in landing.text
        assert httpx.get(f"{emulator.url}/t.js").status_code == 200
        for name, value in simulate_tracking_script(emulator.url, str(landing.url)).items():
            browser.cookies.set(name, value)

        assert browser.get("/products/1").status_code == 200
        proxy = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}  # forged left, real client right
        form = {"product_id": "1", "quantity": "2", "email": " Ada.Lovelace@Example.com "}
        checkout = browser.post("/checkout", data=form, headers=proxy)
        assert checkout.status_code == 302
        thank_you = browser.get(checkout.headers["location"])
        assert 'data-event-id="purchase_10023"' in thank_you.text  # the pixel's copy

        with shop.app_context():
            client = shop_module.roasproof_ext.client
            assert client.flush(timeout=20)
            client.close()
        record = httpx.get(f"{emulator.url}/api/v1/events/purchase_10023").json()
        bad = browser.post("/checkout", data={"product_id": "99", "email": "x@example.com"})
        assert bad.status_code == 400

    sent = record["conversion"]
    assert sent["event"] == "purchase"
    assert sent["value"] == 498.0
    assert sent["currency"] == "EUR"
    assert sent["custom_data"] == {"order_number": "10023"}
    assert sent["user_data"]["visitor_id"] == "5b0c7a6e-1f2d-4c3b-9a8e-7d6c5b4a3f21"
    assert sent["user_data"]["client_ip_address"] == "203.0.113.7"
    assert sent["user_data"]["client_user_agent"] == UA
    assert sent["user_data"]["fbc"].endswith(FBCLID)
    email_hash = hashlib.sha256(b"ada.lovelace@example.com").hexdigest()
    assert sent["user_data"]["email"] == email_hash
    assert "gclid" not in sent["user_data"]  # the checkout URL has none ...
    joined = record["user_data"]
    assert joined["gclid"] == GCLID  # ... the visitor join recovers the landing's
    assert joined["fbclid"] == FBCLID
    assert {"gclid", "fbclid"} <= set(record["visitor"]["recovered"])
    assert record["visitor"]["found"] is True
