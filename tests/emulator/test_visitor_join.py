"""The tracking script, the collect endpoint and the visitor_id join."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from roasproof._normalize import hash_email

from .conftest import Running

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def _collect(emulator: Running, body: object, **headers: str) -> dict[str, object]:
    answer = emulator.http.post(
        "/api/v1/collect",
        content=json.dumps(body),
        headers={"Content-Type": "text/plain;charset=UTF-8", "User-Agent": BROWSER, **headers},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    data: dict[str, object] = answer.json()
    return data


def test_collect_records_the_visitor_with_the_request_ip_and_user_agent(
    emulator: Running,
) -> None:
    answer = _collect(emulator, {"visitor_id": "v1", "gclid": "G-1", "url": "https://shop.test/"})
    assert answer == {"visitor_id": "v1", "recorded": ["gclid", "url"]}
    (visitor,) = emulator.http.get("/api/v1/visitors").json()["visitors"]
    assert visitor["gclid"] == "G-1"
    assert visitor["client_ip_address"] == "127.0.0.1"
    assert visitor["client_user_agent"] == BROWSER
    assert visitor["hits"] == 1


def test_collect_hands_out_a_visitor_id_when_none_is_sent(emulator: Running) -> None:
    first = _collect(emulator, {"gclid": "G-1"})["visitor_id"]
    second = _collect(emulator, {})["visitor_id"]
    assert isinstance(first, str)
    assert len(first) == 32
    assert first != second


def test_collect_hashes_an_email_and_ignores_unknown_keys(emulator: Running) -> None:
    _collect(emulator, {"visitor_id": "v2", "email": "Jane@Example.com", "screen": "1920x1080"})
    (visitor,) = emulator.http.get("/api/v1/visitors").json()["visitors"]
    assert visitor["email"] == hash_email("jane@example.com")
    assert "screen" not in visitor


def test_the_latest_click_replaces_the_previous_one(emulator: Running) -> None:
    _collect(emulator, {"visitor_id": "v3", "gclid": "old"})
    _collect(emulator, {"visitor_id": "v3", "gclid": "new", "ttclid": "T"})
    (visitor,) = emulator.http.get("/api/v1/visitors").json()["visitors"]
    assert (visitor["gclid"], visitor["ttclid"], visitor["hits"]) == ("new", "T", 2)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([1], 400, None),
        ({"visitor_id": "bad id with spaces"}, 422, "visitor_id"),
        ({"fbc": "not-a-cookie"}, 422, "fbc"),
        ({"url": "javascript:alert(1)"}, 422, "url"),
    ],
)
def test_collect_refuses_malformed_beacons(
    emulator: Running, body: object, status: int, field: str | None
) -> None:
    answer = emulator.http.post("/api/v1/collect", json=body)
    assert answer.status_code == status
    assert answer.json().get("field") == field
    assert answer.headers["access-control-allow-origin"] == "*"


def test_collect_answers_a_cors_preflight(emulator: Running) -> None:
    answer = emulator.http.options(
        "/api/v1/collect",
        headers={"Origin": "https://shop.test", "Access-Control-Request-Method": "POST"},
    )
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "POST" in answer.headers["access-control-allow-methods"]


def test_the_join_fills_gaps_from_the_visitor_record(emulator: Running) -> None:
    _collect(emulator, {"visitor_id": "v4", "gclid": "G-4", "fbclid": "F4", "ttclid": "T4"})
    emulator.post({"event": "purchase", "user_data": {"visitor_id": "v4"}})
    (record,) = emulator.events()
    assert record["visitor"] == {
        "visitor_id": "v4",
        "found": True,
        "recovered": ["fbclid", "gclid", "ttclid", "client_ip_address", "client_user_agent"],
    }
    assert record["user_data"]["gclid"] == "G-4"
    assert "gclid" not in record["conversion"]["user_data"]  # as received: before the join


def test_explicit_values_win_over_the_visitor_record(emulator: Running) -> None:
    _collect(emulator, {"visitor_id": "v5", "gclid": "from-browser", "email": "a@b.co"})
    user = {"visitor_id": "v5", "gclid": "from-backend", "client_ip_address": "203.0.113.7"}
    emulator.post({"event": "purchase", "user_data": user})
    (record,) = emulator.events()
    assert record["user_data"]["gclid"] == "from-backend"
    assert record["user_data"]["client_ip_address"] == "203.0.113.7"
    assert record["user_data"]["email"] == hash_email("a@b.co")
    assert "gclid" not in record["visitor"]["recovered"]


def test_an_unknown_visitor_is_reported_and_nothing_is_joined(emulator: Running) -> None:
    emulator.post({"event": "lead", "user_data": {"visitor_id": "never-seen"}})
    (record,) = emulator.events()
    assert record["visitor"] == {"visitor_id": "never-seen", "found": False, "recovered": []}


def test_the_visitor_site_key_ties_the_event_to_a_site(emulator: Running) -> None:
    _collect(emulator, {"visitor_id": "v6", "site_key": "shop-eu"})
    emulator.post({"event": "lead", "user_data": {"visitor_id": "v6"}})
    emulator.post({"event": "lead", "site_key": "explicit", "user_data": {"visitor_id": "v6"}})
    first, second = emulator.events()
    assert first["visitor"]["site_key"] == "shop-eu"
    assert "site_key" not in second["visitor"]


def test_an_event_without_visitor_id_has_no_join(emulator: Running) -> None:
    emulator.post({"event": "lead"})
    assert emulator.events()[0]["visitor"] is None


def test_the_tracking_script_is_served_as_javascript(emulator: Running) -> None:
    answer = emulator.http.get("/t.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/javascript")
    assert "_sgnl_vid" in answer.text
    assert "/api/v1/collect" in answer.text
    assert json.dumps(emulator.url + "/t.js") in answer.text


NODE_HARNESS = r"""
const [script, emulator, page, cookies] = process.argv.slice(2);
const jar = new Map(cookies ? cookies.split("; ").map((c) => c.split("=")) : []);
const url = new URL(page);
globalThis.window = globalThis;
globalThis.location = url;
globalThis.document = {
  currentScript: { src: emulator + "/t.js", getAttribute: () => "shop-eu" },
  get cookie() { return [...jar].map(([k, v]) => k + "=" + v).join("; "); },
  set cookie(text) {
    const [pair, ...attributes] = text.split("; ");
    const domain = attributes.find((a) => a.startsWith("domain="));
    if (domain && !domain.slice(7).includes(".")) return;  // a public suffix: refused
    const at = pair.indexOf("=");
    jar.set(pair.slice(0, at), pair.slice(at + 1));
  },
};
Object.defineProperty(globalThis, "navigator", { value: {}, configurable: true });
const realFetch = globalThis.fetch;
globalThis.fetch = (target, options) => realFetch(target, options).then((answer) => {
  console.log(JSON.stringify({ status: answer.status, cookies: document.cookie }));
  return answer;
});
require("vm").runInThisContext(require("fs").readFileSync(script, "utf8"));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run t.js")
@pytest.mark.parametrize("existing", ["", "_sgnl_vid=known-visitor; _fbp=fb.1.1700000000000.42"])
def test_the_tracking_script_run_by_a_javascript_engine_records_the_visit(
    emulator: Running, tmp_path: Path, existing: str
) -> None:
    script = tmp_path / "t.js"
    script.write_text(emulator.http.get("/t.js").text)
    harness = tmp_path / "harness.js"
    harness.write_text(NODE_HARNESS)
    page = "https://shop.example.com/landing?gclid=G-77&fbclid=F77&utm_source=ads"
    done = subprocess.run(
        ["node", str(harness), str(script), emulator.url, page, existing],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    jar = dict(item.split("=", 1) for item in result["cookies"].split("; "))
    (visitor,) = emulator.http.get("/api/v1/visitors").json()["visitors"]
    assert visitor["visitor_id"] == jar["_sgnl_vid"]
    assert (visitor["gclid"], visitor["fbclid"], visitor["site_key"]) == ("G-77", "F77", "shop-eu")
    assert visitor["url"] == page
    assert jar["_fbc"].startswith("fb.1.")
    assert jar["_fbc"].endswith(".F77")
    assert visitor["fbc"] == jar["_fbc"]
    if existing:
        assert visitor["visitor_id"] == "known-visitor"
        assert visitor["fbp"] == "fb.1.1700000000000.42"
