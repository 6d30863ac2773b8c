"""``GET /t.js``: the tracking script a shop embeds on its pages.

It runs on the *shop's* origin (``<script src="http://127.0.0.1:8765/t.js"
data-site-key="...">``), so the cookies it writes with ``document.cookie`` are
first-party cookies of the shop:

* ``_sgnl_vid``, the visitor id, created once and kept for 13 months. The
  shop's backend reads it at checkout and sends it as ``user_data.visitor_id``;
  that one value lets the ingest API join the browser's identifiers to the
  server-side conversion (see the guide's "visitor_id join").
* ``_fbc``, built from ``fbclid`` when the landing URL has one and the cookie
  is absent, exactly as Meta's pixel does (``fb.1.<ms>.<fbclid>``).

Cookies go on the widest domain the browser accepts (``example.com`` for
``shop.example.com``), like Meta's pixel, so every subdomain sees them.

The script then posts the visitor id, the landing URL, the click ids found in
the query string (``fbclid``, ``gclid``, ``wbraid``, ``gbraid``, ``ttclid``)
and the ``_fbc``/``_fbp`` cookies to ``POST /api/v1/collect`` on the
emulator's origin. It sends ``text/plain`` so the cross-origin request is a
"simple" CORS request (no preflight); the endpoint records the visitor with
the request's IP address and user agent.
"""

from __future__ import annotations

import json

__all__ = ["TRACKING_SCRIPT", "render_script"]

#: The script, with ``__SCRIPT_URL__`` standing for its own URL on the emulator.
TRACKING_SCRIPT = r"""/* roasproof tracking script (local emulator) */
(function () {
  "use strict";
  var script = document.currentScript;
  var endpoint = new URL("/api/v1/collect", (script && script.src) || __SCRIPT_URL__).href;
  var siteKey = script ? script.getAttribute("data-site-key") : null;
  var CLICK_IDS = ["fbclid", "gclid", "wbraid", "gbraid", "ttclid"];

  function readCookie(name) {
    var parts = document.cookie ? document.cookie.split(/;\s*/) : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (eq > 0 && parts[i].slice(0, eq) === name) {
        return decodeURIComponent(parts[i].slice(eq + 1));
      }
    }
    return null;
  }

  // A first-party cookie on the widest domain the browser accepts: "example.com" is
  // tried before "shop.example.com"; a public suffix such as "com" is refused by the
  // browser. An IP address or "localhost" gets a host-only cookie.
  function writeCookie(name, value, days) {
    var pair = name + "=" + encodeURIComponent(value);
    var attributes = "; path=/; max-age=" + days * 86400 + "; SameSite=Lax" +
      (location.protocol === "https:" ? "; Secure" : "");
    var host = location.hostname;
    if (!/^[\d.]+$/.test(host) && host.indexOf(":") < 0) {
      var labels = host.split(".");
      for (var i = labels.length - 2; i >= 0; i--) {
        document.cookie = pair + attributes + "; domain=" + labels.slice(i).join(".");
        if (readCookie(name) === value) return;
      }
    }
    document.cookie = pair + attributes;
  }

  function newId() {
    if (window.crypto && window.crypto.randomUUID) return window.crypto.randomUUID();
    return Date.now().toString(36) + "." + Math.random().toString(36).slice(2);
  }

  var visitorId = readCookie("_sgnl_vid");
  if (!visitorId) {
    visitorId = newId();
    writeCookie("_sgnl_vid", visitorId, 395);
  }
  var data = { visitor_id: visitorId, url: location.href };
  if (siteKey) data.site_key = siteKey;
  var params = new URLSearchParams(location.search);
  CLICK_IDS.forEach(function (key) {
    var value = params.get(key);
    if (value) data[key] = value;
  });
  var fbc = readCookie("_fbc");
  if (!fbc && data.fbclid) {
    fbc = "fb.1." + Date.now() + "." + data.fbclid;
    writeCookie("_fbc", fbc, 90);
  }
  if (fbc) data.fbc = fbc;
  var fbp = readCookie("_fbp");
  if (fbp) data.fbp = fbp;

  // text/plain keeps this a CORS "simple request": no preflight, works from any shop origin.
  var body = JSON.stringify(data);
  var type = "text/plain;charset=UTF-8";
  if (navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([body], { type: type }))) {
    return;
  }
  if (window.fetch) {
    window.fetch(endpoint, {
      method: "POST", body: body, headers: { "Content-Type": type },
      keepalive: true, credentials: "omit", mode: "cors"
    }).catch(function () {});
  }
})();
"""


def render_script(origin: str) -> str:
    """The script served by an emulator at ``origin`` (``http://127.0.0.1:8765``).

    The origin is only a fallback: the script prefers its own ``src`` URL, which
    is right even behind a proxy.
    """
    return TRACKING_SCRIPT.replace("__SCRIPT_URL__", json.dumps(origin.rstrip("/") + "/t.js"))
