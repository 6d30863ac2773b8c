"""End to end: the example FastAPI shop under uvicorn, against the emulator on loopback.

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
from starlette.types import ASGIApp

import roasproof
from roasproof.emulator import DEFAULT_API_KEY, create_app, run_in_thread

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
UA = "Mozilla/5.0 (Macintosh) e2e-browser/2.0"
GCLID = "EAIaIQ-TeSt_GcLiD"
FBCLID = "IwAR3-TeSt_FbClId"
VISITOR_ID = "0d9c8b7a-6e5f-4a3b-8c2d-1e0f9a8b7c6d"


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
    """What t.js does in the browser: post the visit to the emulator, set the cookies."""
    fbc = f"fb.1.{int(time.time() * 1000)}.{FBCLID}"
    beacon = {"visitor_id": VISITOR_ID, "url": landing_url, "gclid": GCLID, "fbclid": FBCLID}
    response = httpx.post(
        f"{emulator_url}/api/v1/collect",
        content=json.dumps(beacon | {"fbc": fbc}),
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": UA},
    )
    assert response.status_code == 200, response.text
    return {"_sgnl_vid": VISITOR_ID, "_fbc": fbc}


@pytest.mark.slow
def test_purchase_reaches_the_emulator_with_every_identifier(
    serve: Callable[[ASGIApp], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_module = load_example("fastapi_shop")
    with ExitStack() as stack:
        emulator = stack.enter_context(run_in_thread(create_app()))
        monkeypatch.setenv("ROASPROOF_API_KEY", DEFAULT_API_KEY)
        monkeypatch.setenv("ROASPROOF_ENDPOINT", emulator.url)
        monkeypatch.setenv("ROASPROOF_OUTBOX", str(tmp_path / "outbox.sqlite3"))
        monkeypatch.setenv("ROASPROOF_TRUSTED_PROXIES", "1")  # one proxy, appending to XFF
        shop_url = serve(shop_module.create_app())
        browser = httpx.Client(base_url=shop_url, headers={"User-Agent": UA}, timeout=10)
        stack.callback(browser.close)

        landing = browser.get("/", params={"gclid": GCLID, "fbclid": FBCLID})
        assert f'src="{emulator.url}/t.js"' in landing.text
        for name, value in simulate_tracking_script(emulator.url, str(landing.url)).items():
            browser.cookies.set(name, value)

        assert browser.get("/products/2").status_code == 200
        proxy = {"X-Forwarded-For": "6.6.6.6, 198.51.100.23"}  # forged left, real client right
        cart = {"product_id": 2, "quantity": 3, "email": "GRACE.Hopper@Example.com "}
        receipt = browser.post("/api/checkout", json=cart, headers=proxy)
        assert receipt.status_code == 201, receipt.text
        assert receipt.json()["event_id"] == "purchase_20001"
        thank_you = browser.get(receipt.json()["thank_you"])
        assert 'data-event-id="purchase_20001"' in thank_you.text  # the pixel's copy
        signup = browser.post("/api/newsletter", params={"email": "grace@example.com"})
        assert signup.status_code == 204
        assert browser.post("/api/checkout", json=cart | {"product_id": 9}).status_code == 400

        assert roasproof.flush(timeout=20)
        record = httpx.get(f"{emulator.url}/api/v1/events/purchase_20001").json()
        leads = httpx.get(f"{emulator.url}/api/v1/events", params={"event": "lead"}).json()
        purchases = httpx.get(f"{emulator.url}/api/v1/events", params={"event": "purchase"}).json()

    assert purchases["count"] == 1  # the failed checkout fired nothing
    sent = record["conversion"]
    assert sent["value"] == 59.7
    assert sent["currency"] == "EUR"
    assert sent["user_data"]["visitor_id"] == VISITOR_ID
    assert sent["user_data"]["client_ip_address"] == "198.51.100.23"
    assert sent["user_data"]["client_user_agent"] == UA
    assert sent["user_data"]["fbc"].endswith(FBCLID)
    email_hash = hashlib.sha256(b"grace.hopper@example.com").hexdigest()
    assert sent["user_data"]["email"] == email_hash
    joined = record["user_data"]
    assert (joined["gclid"], joined["fbclid"]) == (GCLID, FBCLID)  # via the visitor join
    assert {"gclid", "fbclid"} <= set(record["visitor"]["recovered"])
    [lead] = leads["events"]
    assert lead["conversion"]["custom_data"] == {"form": "newsletter"}
    assert lead["conversion"]["user_data"]["visitor_id"] == VISITOR_ID
