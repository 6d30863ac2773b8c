"""Build a :class:`~roasproof.RequestContext` from a web request: the adapter module.

This is the one seam between a web framework and roasproof. The ASGI and WSGI
middleware and the Flask, Django and Starlette integrations all use it, and so
can your own adapter: hand it a WSGI environ, an ASGI scope, or plain mappings
(headers, cookies, query string, peer address).

It reads headers, cookies, the query string and the peer address, never the
request body: reading the body consumes a stream the application still needs.

The client IP is the peer address unless you say which proxies to trust
(:func:`parse_trusted_proxies`): any client can send ``X-Forwarded-For``, so
forwarding headers are read only then, and counted from the right, where your
own proxies append to them. A forged left-most entry never wins.

Nothing here raises on malformed input. A bad cookie, query parameter or
header is ignored, so capturing can never break the host's request.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote_plus

from roasproof._proxies import (
    TrustedProxies,
    TrustedProxiesSetting,
    client_ip,
    forwarded_origin,
    parse_trusted_proxies,
    trusts_headers,
)
from roasproof.context import RequestContext

__all__ = [
    "CLICK_ID_PARAMS",
    "VISITOR_COOKIE",
    "TrustedProxies",
    "TrustedProxiesSetting",
    "client_ip",
    "context_from_asgi",
    "context_from_mappings",
    "context_from_wsgi",
    "parse_trusted_proxies",
]

# Documented (and pickled) as part of this public module, not the private one.
TrustedProxies.__module__ = client_ip.__module__ = parse_trusted_proxies.__module__ = __name__

#: The cookie the roasproof tracking script sets; its value is ``visitor_id``.
VISITOR_COOKIE = "_sgnl_vid"
#: Query parameters captured as click ids, case kept.
CLICK_ID_PARAMS = ("fbclid", "gclid", "wbraid", "gbraid", "ttclid")

_COOKIES = (VISITOR_COOKIE, "_fbc", "_fbp")
# One of _COOKIES as a "name=value" pair of a Cookie header: at its start or after a ";",
# the name with whitespace around it (as str.strip() drops it), the value up to the next ";".
_COOKIE_PAIRS = re.compile(r"(?:^|;)\s*(" + "|".join(map(re.escape, _COOKIES)) + r")\s*=([^;]*)")
_MAX_ID = 500  # cookie values and click ids longer than this are junk or an attack
_MAX_USER_AGENT = 1024
_MAX_URL = 8192
_ID = re.compile(rf"[\x21-\x7e]{{1,{_MAX_ID}}}")  # visible ASCII, no spaces
_HOST = re.compile(r"(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_PATH_SAFE = "/!$&'()*+,;=:@~"  # quote() always keeps letters, digits and "_.-~"
_ENCODED_SAFE = _PATH_SAFE + "%?"  # for parts that arrive percent-encoded already
# Text that quote() gives back unchanged, for each ``safe`` it is called with: most paths.
_UNQUOTED = {
    safe: re.compile("[" + re.escape(string.ascii_letters + string.digits + "_.-~" + safe) + "]*")
    for safe in (_PATH_SAFE, _ENCODED_SAFE)
}
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
_HEADER_JOIN = {"cookie": "; "}  # others join with ", " (RFC 9110 5.3)
_WSGI_HEADERS = {
    "user-agent": "HTTP_USER_AGENT",
    "cookie": "HTTP_COOKIE",
    "host": "HTTP_HOST",
    "x-forwarded-for": "HTTP_X_FORWARDED_FOR",
    "forwarded": "HTTP_FORWARDED",
    "x-forwarded-proto": "HTTP_X_FORWARDED_PROTO",
    "x-forwarded-host": "HTTP_X_FORWARDED_HOST",
}
_ASGI_HEADERS = {name.encode(): name for name in _WSGI_HEADERS}


def _attribution_query(query: str) -> str:
    """Keep only the click ids and ``utm_*`` parameters of a query string.

    Other parameters can carry PII (``/thanks?email=...``, magic links, reset
    tokens), and the captured URL is written to the outbox and sent as is; ad
    platforms only need the page and its attribution parameters.
    """
    kept = []
    for pair in query.split("&"):
        name = pair.split("=", 1)[0]
        if name in CLICK_ID_PARAMS or name.startswith("utm_"):
            kept.append(pair)
    return "&".join(kept)


def _quote(text: str, safe: str, encoding: str) -> str:
    """``quote(text, safe, encoding, errors="replace")``, skipped where it changes nothing."""
    if _UNQUOTED[safe].fullmatch(text):
        return text
    return quote(text, safe=safe, encoding=encoding, errors="replace")


def _build_url(scheme: str, host: str | None, path: str, query: str) -> str | None:
    """``path`` is percent-encoded already; ``query`` is raw (as sent)."""
    if not host or not _HOST.fullmatch(host) or scheme not in ("http", "https"):
        return None
    query = _attribution_query(query)
    query = _quote(query, _ENCODED_SAFE, "latin-1")
    return f"{scheme}://{host}{path or '/'}" + (f"?{query}" if query else "")


def _clean_url(value: object) -> str | None:
    """An absolute http(s) URL without whitespace, or None (never fails the event)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if len(value) <= _MAX_URL and _URL.fullmatch(value) else None


def _clean_id(value: object) -> str | None:
    """A cookie value or click id: visible ASCII, at most 500 characters."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value if _ID.fullmatch(value) else None


def _clean_text(value: object, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= limit and value.isprintable() else None


def _parse_cookies(header: str) -> dict[str, str]:
    """The cookies roasproof reads from a ``Cookie`` header; the first valid of duplicates wins.

    Cookie headers carry many cookies (session, consent, analytics): one regular
    expression finds ours among them, instead of splitting every pair in Python.
    """
    found: dict[str, str] = {}
    for name, value in _COOKIE_PAIRS.findall(header):
        if name not in found and (clean := _clean_id(value)):
            found[name] = clean
    return found


def _parse_query(query: str) -> dict[str, str]:
    """The click ids of a raw query string; the first valid value of a key wins."""
    found: dict[str, str] = {}
    for part in query.removeprefix("?").split("&"):
        name, _, value = part.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name, errors="replace")
        if name in CLICK_ID_PARAMS and name not in found:
            clean = _clean_id(unquote_plus(value, errors="replace"))
            if clean:
                found[name] = clean
    return found


def context_from_mappings(
    *,
    headers: Mapping[str, str],
    cookies: Mapping[str, str] | None = None,
    query: str | Mapping[str, str] | None = None,
    peer: str | None = None,
    url: str | None = None,
    trusted_proxies: TrustedProxiesSetting = None,
    now: float | None = None,
) -> RequestContext:
    """Build a context from what any framework's request object exposes.

    ``headers`` has lower-case names (case-insensitive mappings such as
    Django's ``request.headers`` work too). ``cookies`` defaults to parsing the
    ``cookie`` header. Prefer the raw query string for ``query``: it keeps the
    first value of a duplicated parameter. ``url`` is taken as given, so pass
    the framework's own (already proxy-corrected) URL. ``now`` is the time
    used to build ``fbc`` from ``fbclid``, in seconds since the epoch.
    """
    trusted = parse_trusted_proxies(trusted_proxies)
    if type(headers) is dict and not all(name.islower() for name in headers):
        headers = {name.lower(): value for name, value in headers.items()}
    return _context(headers, cookies, query, peer, url, trusted, now)


def _context(
    headers: Mapping[str, str],
    cookies: Mapping[str, str] | None,
    query: str | Mapping[str, str] | None,
    peer: str | None,
    url: str | None,
    trusted: TrustedProxies,
    now: float | None,
) -> RequestContext:
    """:func:`context_from_mappings`, with header names known to be lower case."""
    if cookies is None:
        found = _parse_cookies(headers.get("cookie") or "")
    else:
        found = {name: clean for name in _COOKIES if (clean := _clean_id(cookies.get(name)))}
    if isinstance(query, str):
        clicks = _parse_query(query)
    else:
        query = query or {}
        clicks = {name: clean for name in CLICK_ID_PARAMS if (clean := _clean_id(query.get(name)))}
    fbc = found.get("_fbc")
    if fbc is None and "fbclid" in clicks:
        millis = int((time.time() if now is None else now) * 1000)
        fbc = f"fb.1.{millis}.{clicks['fbclid']}"
    return RequestContext(
        visitor_id=found.get(VISITOR_COOKIE),
        client_ip_address=client_ip(peer, headers, trusted),
        client_user_agent=_clean_text(headers.get("user-agent"), _MAX_USER_AGENT),
        url=_clean_url(url),
        fbc=fbc,
        fbp=found.get("_fbp"),
        **clicks,
    )


def context_from_wsgi(
    environ: Mapping[str, Any], *, trusted_proxies: TrustedProxiesSetting = None
) -> RequestContext:
    """Build a context from a WSGI environ (PEP 3333); the body is never read."""
    trusted = parse_trusted_proxies(trusted_proxies)
    headers = {
        name: value
        for name, key in _WSGI_HEADERS.items()
        if isinstance(value := environ.get(key), str) and value
    }
    peer = environ.get("REMOTE_ADDR") or None
    scheme = str(environ.get("wsgi.url_scheme") or "http")
    host = headers.get("host")
    if not host and environ.get("SERVER_NAME"):
        host = _with_port(str(environ["SERVER_NAME"]), environ.get("SERVER_PORT"), scheme)
    path = _quote(
        f"{environ.get('SCRIPT_NAME') or ''}{environ.get('PATH_INFO') or ''}",
        _PATH_SAFE,
        "latin-1",  # PEP 3333: the raw bytes, decoded as latin-1
    )
    query = str(environ.get("QUERY_STRING") or "")
    return _context_from_request(headers, peer, scheme, host, path, query, trusted)


def context_from_asgi(
    scope: MutableMapping[str, Any], *, trusted_proxies: TrustedProxiesSetting = None
) -> RequestContext:
    """Build a context from an ASGI HTTP scope; ``receive`` is never touched."""
    trusted = parse_trusted_proxies(trusted_proxies)
    headers = _asgi_headers(scope.get("headers") or ())
    client = scope.get("client")
    peer = str(client[0]) if client else None
    scheme = str(scope.get("scheme") or "http")
    host = headers.get("host")
    server = scope.get("server")
    if not host and server:
        host = _with_port(str(server[0]), server[1], scheme)
    raw_path = scope.get("raw_path")
    if isinstance(raw_path, bytes) and raw_path.startswith(b"/"):
        path = _quote(raw_path.decode("latin-1"), _ENCODED_SAFE, "latin-1")
    else:
        path = _quote(str(scope.get("path") or "/"), _PATH_SAFE, "utf-8")
    raw_query = scope.get("query_string") or b""
    # The ASGI spec says bytes; some test clients (Django's AsyncClient) send str.
    query = raw_query if isinstance(raw_query, str) else bytes(raw_query).decode("latin-1")
    return _context_from_request(headers, peer, scheme, host, path, query, trusted)


def _context_from_request(
    headers: dict[str, str],
    peer: str | None,
    scheme: str,
    host: str | None,
    path: str,
    query: str,
    trusted: TrustedProxies,
) -> RequestContext:
    if trusts_headers(peer, trusted):
        forwarded_scheme, forwarded_host = forwarded_origin(headers, trusted)
        scheme = forwarded_scheme or scheme
        host = forwarded_host or host
    url = _build_url(scheme, host, path, query)
    return _context(headers, None, query, peer, url, trusted, None)


def _asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The headers roasproof reads, decoded as latin-1, repeated lines combined in order."""
    headers: dict[str, str] = {}
    for name, value in raw:
        # The ASGI spec has servers lowercase the names: look them up as they are, and
        # lowercase (a copy) only a name that is not.
        if type(name) is bytes and name.islower():
            key = _ASGI_HEADERS.get(name)
        else:
            key = _ASGI_HEADERS.get(bytes(name).lower())
        if key is not None:
            text = bytes(value).decode("latin-1")
            previous = headers.get(key)
            joiner = _HEADER_JOIN.get(key, ", ")
            headers[key] = text if previous is None else f"{previous}{joiner}{text}"
    return headers


def _with_port(host: str, port: object, scheme: str) -> str:
    default = "443" if scheme == "https" else "80"
    if port is None or str(port) == default:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
