"""The adapter module: trusted proxies, client IP, cookies, query, URL and the three builders.

Client IP tables are written from the attacker's side: the left part of every forwarding
header is what a client sent, the right part what our proxies appended. Nothing a client
sends on the left may ever win.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from roasproof import ConfigurationError, RequestContext, capture
from roasproof import _proxies as proxies
from roasproof.capture import (
    CLICK_ID_PARAMS,
    VISITOR_COOKIE,
    TrustedProxies,
    TrustedProxiesSetting,
    client_ip,
    context_from_asgi,
    context_from_mappings,
    context_from_wsgi,
    parse_trusted_proxies,
)

REAL = "203.0.113.7"
PROXY = "10.0.0.2"
NOW = 1_700_000_000.123


@pytest.fixture(autouse=True)
def _fresh_warning() -> Iterator[None]:
    """The misconfiguration warning fires once per process; each test starts before it."""
    proxies._warn_untrusted_forwarding.cache_clear()
    yield
    proxies._warn_untrusted_forwarding.cache_clear()


def ip(peer: str | None, trusted: TrustedProxiesSetting = None, **headers: str) -> str | None:
    names = {key.replace("_", "-"): value for key, value in headers.items()}
    return client_ip(peer, names, parse_trusted_proxies(trusted))


# --- parse_trusted_proxies ----------------------------------------------------------------


@pytest.mark.parametrize("value", [None, 0, "", "0", "  ", [], ()])
def test_trusted_proxies_empty_settings_trust_no_header(value: Any) -> None:
    assert not parse_trusted_proxies(value).enabled


@pytest.mark.parametrize(("value", "hops"), [(1, 1), (3, 3), ("2", 2), (" 2 ", 2)])
def test_trusted_proxies_hop_count_from_int_or_env_string(value: Any, hops: int) -> None:
    assert parse_trusted_proxies(value) == TrustedProxies(hops=hops)


@pytest.mark.parametrize(
    "value",
    [
        ["10.0.0.0/8", "2001:db8::/32", "192.168.1.7"],
        ("10.0.0.0/8", "2001:db8::/32", "192.168.1.7"),
        "10.0.0.0/8, 2001:db8::/32 ,192.168.1.7,",
    ],
)
def test_trusted_proxies_networks_from_list_or_comma_string(value: Any) -> None:
    parsed = parse_trusted_proxies(value)
    assert parsed.networks == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("192.168.1.7/32"),
    )
    assert parsed.hops == 0
    assert parsed.enabled


def test_trusted_proxies_network_with_host_bits_is_accepted() -> None:
    assert parse_trusted_proxies(["10.1.2.3/8"]).networks == (ipaddress.ip_network("10.0.0.0/8"),)


def test_trusted_proxies_instance_is_returned_unchanged() -> None:
    trusted = TrustedProxies(hops=2, header="forwarded")
    assert parse_trusted_proxies(trusted) is trusted


def test_trusted_proxies_header_choice_is_kept() -> None:
    assert parse_trusted_proxies(1, header="forwarded").header == "forwarded"
    assert parse_trusted_proxies(None).header == "x-forwarded-for"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (-1, "-1 is not a hop count"),
        (True, "a bool is not a hop count"),
        (1.5, "a float is not a hop count"),
        (b"10.0.0.0/8", "a bytes is not a hop count"),
        ({"10.0.0.0/8"}, "a set is not a hop count"),
        ("proxy.internal", "'proxy.internal' is not an IP address or CIDR network"),
        (["10.0.0.0/33"], "'10.0.0.0/33' is not an IP address or CIDR network"),
        ([10], "10 is not a network"),
        ("*", "'*' would trust every address"),
        (["*"], "'*' would trust every address"),
    ],
)
def test_trusted_proxies_bad_setting_names_the_field_and_the_fix(value: Any, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_trusted_proxies(value)
    message = str(caught.value)
    assert message.startswith("trusted_proxies: ")
    assert says in message
    assert "trusted_proxies=1" in message
    assert "trusted_proxies=['10.0.0.0/8']" in message
    assert isinstance(caught.value, ValueError)


def test_trusted_proxies_rejects_hops_and_networks_together() -> None:
    networks = (ipaddress.ip_network("10.0.0.0/8"),)
    with pytest.raises(ConfigurationError, match="either a hop count or networks, not both"):
        TrustedProxies(hops=1, networks=networks)


def test_trusted_proxies_rejects_unknown_header() -> None:
    with pytest.raises(ConfigurationError, match="header 'x-real-ip' is not supported"):
        TrustedProxies(hops=1, header="x-real-ip")  # type: ignore[arg-type]


def test_trusted_proxies_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TrustedProxies().hops = 3  # type: ignore[misc]


# --- client_ip without trust --------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        (REAL, REAL),
        ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:203.0.113.7", REAL),
        ("::FFFF:cb00:7107", REAL),
        ("fe80::1%eth0", "fe80::1"),
        (f" {REAL} ", REAL),
        (None, None),
        ("", None),
        ("unix:", None),
        ("unix:/run/app.sock", None),
        ("testclient", None),
        ("999.1.1.1", None),
        ("010.1.1.1", None),
        ("[2001:db8::1", None),
        ("1" * 100, None),
    ],
)
def test_client_ip_is_the_normalized_peer_without_trust(peer: str | None, expected: str) -> None:
    assert ip(peer) == expected
    assert client_ip(peer, {}, None) == expected


def test_client_ip_ignores_forwarding_headers_without_trust() -> None:
    assert ip(REAL, x_forwarded_for="6.6.6.6", forwarded="for=6.6.6.6") == REAL


def test_client_ip_warns_once_when_a_non_public_peer_forwards_without_trust(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        assert ip(PROXY, x_forwarded_for=REAL) == PROXY
        assert ip("127.0.0.1", forwarded=f"for={REAL}") == "127.0.0.1"
        assert ip("100.64.0.1", x_forwarded_for=REAL) == "100.64.0.1"
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "trusted_proxies is not set" in message
    assert REAL not in message
    assert PROXY not in message


@pytest.mark.parametrize(
    ("peer", "headers"),
    [("8.8.8.8", {"x-forwarded-for": "6.6.6.6"}), (PROXY, {}), (None, {"x-forwarded-for": REAL})],
)
def test_client_ip_does_not_warn_for_public_peers_or_plain_requests(
    caplog: pytest.LogCaptureFixture, peer: str | None, headers: dict[str, str]
) -> None:
    with caplog.at_level(logging.WARNING, logger="roasproof"):
        client_ip(peer, headers, None)
    assert caplog.records == []


# --- client_ip with a hop count -----------------------------------------------------------


@pytest.mark.parametrize(
    ("hops", "xff", "expected"),
    [
        (1, REAL, REAL),
        (1, f"6.6.6.6, {REAL}", REAL),
        (1, f"10.0.0.9, 6.6.6.6,{REAL}", REAL),
        (2, f"6.6.6.6, {REAL}, 10.0.0.3", REAL),
        (2, REAL, REAL),  # shorter than the hop count: every entry came from our proxies
        (3, f"{REAL}, 10.0.0.3", REAL),
        (1, f"6.6.6.6, {REAL}:4711", REAL),
        (1, "6.6.6.6, [2001:db8::17]:4711", "2001:db8::17"),
        (1, "6.6.6.6, 2001:DB8::17", "2001:db8::17"),
        (1, "6.6.6.6, ::ffff:203.0.113.7", REAL),
        (1, f'6.6.6.6, "{REAL}"', REAL),
        (1, f"6.6.6.6,, {REAL} ,", REAL),
        (1, "6.6.6.6, unknown", None),
        (1, f"{REAL}, garbage", None),
        (2, f"6.6.6.6, _hidden, {REAL}", None),
    ],
)
def test_client_ip_hop_count_takes_the_nth_entry_from_the_right(
    hops: int, xff: str, expected: str | None
) -> None:
    assert ip(PROXY, hops, x_forwarded_for=xff) == expected
    assert ip(REAL, hops, x_forwarded_for=xff) == expected  # the peer is not checked


@pytest.mark.parametrize("xff", ["", "   ", " , ,"])
def test_client_ip_empty_forwarded_for_falls_back_to_the_peer(xff: str) -> None:
    assert ip(PROXY, 1, x_forwarded_for=xff) == PROXY
    assert ip(PROXY, 1) == PROXY


def test_client_ip_multiple_forwarded_for_lines_combined_in_order() -> None:
    headers = {"x-forwarded-for": f"6.6.6.6, 7.7.7.7, {REAL}"}  # lines joined with ", "
    assert client_ip(PROXY, headers, TrustedProxies(hops=1)) == REAL
    assert client_ip(PROXY, headers, TrustedProxies(hops=2)) == "7.7.7.7"


# --- client_ip with trusted networks ------------------------------------------------------

NETS = ["10.0.0.0/8", "2001:db8:ffff::/48"]


@pytest.mark.parametrize(
    ("peer", "xff", "expected"),
    [
        (PROXY, REAL, REAL),
        (PROXY, f"6.6.6.6, {REAL}", REAL),
        (PROXY, f"10.6.6.6, {REAL}", REAL),  # a forged "trusted" address on the left
        (PROXY, f"6.6.6.6, {REAL}, 10.0.0.3, 10.0.0.4", REAL),
        (PROXY, "10.0.0.5, 10.0.0.6", "10.0.0.5"),  # internal traffic: every hop is ours
        (PROXY, f"6.6.6.6, {REAL}, unknown, 10.0.0.3", None),  # the walk stops at junk
        ("2001:db8:ffff::1", "6.6.6.6, 2001:db8::99, 2001:db8:ffff::2", "2001:db8::99"),
        ("::ffff:10.0.0.2", f"6.6.6.6, {REAL}", REAL),
        (None, f"6.6.6.6, {REAL}", REAL),  # UNIX socket: only a local proxy can connect
        ("unix:", f"6.6.6.6, {REAL}", REAL),
        (REAL, "6.6.6.6", REAL),  # not our proxy: its header is the client's own words
        ("198.51.100.1", f"6.6.6.6, {PROXY}", "198.51.100.1"),
    ],
)
def test_client_ip_networks_walk_from_the_right_skipping_trusted_hops(
    peer: str | None, xff: str, expected: str | None
) -> None:
    assert ip(peer, NETS, x_forwarded_for=xff) == expected


def test_client_ip_networks_without_header_is_the_peer() -> None:
    assert ip(PROXY, NETS) == PROXY
    assert ip(None, NETS) is None


# --- RFC 7239 Forwarded -------------------------------------------------------------------


def fwd(value: str, hops: int = 1, peer: str = PROXY) -> str | None:
    return client_ip(peer, {"forwarded": value}, TrustedProxies(hops=hops, header="forwarded"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
        ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
        ('For="[2001:db8:cafe::17]"', "2001:db8:cafe::17"),
        ('for="192.0.2.43:47011"', "192.0.2.43"),
        (f"for=6.6.6.6, for={REAL}", REAL),
        (f"for=6.6.6.6;by=x ,  for={REAL};proto=https", REAL),
        (f'for="6.6.6.6, for=7.7.7.7";by=x, for={REAL}', REAL),  # quoted commas stay inside
        (f'for="\\"6.6.6.6\\"", for={REAL}', REAL),
        (f"for=6.6.6.6,,  , for={REAL}", REAL),
        ("for=unknown", None),
        ("for=_hidden", None),
        ('for="_gazonk"', None),
        (f"for=6.6.6.6, proto=https;by={REAL}", None),  # the nearest hop gave no address
        (f'for=6.6.6.6, for="x, for={REAL}', None),  # an unterminated quote swallows ours
        ('for=6.6.6.6, for="x\\', None),
        (f"for={REAL};for=6.6.6.6", REAL),  # a repeated parameter: the first one counts
    ],
)
def test_forwarded_header_parsed_with_quoting_and_tokens(value: str, expected: str | None) -> None:
    assert fwd(value) == expected


def test_forwarded_header_hop_count_and_networks() -> None:
    value = f'for=6.6.6.6, for="{REAL}:1234", for={PROXY}'
    assert fwd(value, hops=2) == REAL
    trusted = TrustedProxies(networks=(ipaddress.ip_network("10.0.0.0/8"),), header="forwarded")
    assert client_ip(PROXY, {"forwarded": value}, trusted) == REAL


def test_forwarded_and_forwarded_for_are_never_mixed() -> None:
    headers = {"x-forwarded-for": "6.6.6.6", "forwarded": "for=7.7.7.7"}
    assert client_ip(PROXY, headers, TrustedProxies(hops=1)) == "6.6.6.6"
    assert client_ip(PROXY, headers, TrustedProxies(hops=1, header="forwarded")) == "7.7.7.7"
    assert client_ip(PROXY, {"forwarded": "for=7.7.7.7"}, TrustedProxies(hops=1)) == PROXY


# --- properties: a forged left part never wins --------------------------------------------


@given(st.text(max_size=300))
@example('"')
@example("for=")
@example("\\")
@example(",,,;;;")
def test_forged_prefix_never_beats_the_entry_our_proxy_appended(forged: str) -> None:
    assert ip(PROXY, 1, x_forwarded_for=f"{forged}, {REAL}") == REAL
    assert ip(PROXY, NETS, x_forwarded_for=f"{forged}, {REAL}") == REAL
    assert fwd(f"{forged}, for={REAL}") in (REAL, None)  # None only if it opened a quote


@given(st.text(max_size=200), st.sampled_from([0, 1, 2]), st.one_of(st.none(), st.text()))
def test_client_ip_never_raises_and_returns_an_address(
    header: str, hops: int, peer: str | None
) -> None:
    for name in ("x-forwarded-for", "forwarded"):
        trusted = TrustedProxies(hops=hops, header=name)
        result = client_ip(peer, {name: header}, trusted)
        assert result is None or ipaddress.ip_address(result)


# --- cookies ------------------------------------------------------------------------------


def ctx(**kwargs: Any) -> RequestContext:
    kwargs.setdefault("headers", {})
    kwargs.setdefault("now", NOW)
    return context_from_mappings(**kwargs)


def test_cookies_visitor_fbc_fbp_read_from_the_cookie_header() -> None:
    header = "session=s3cr3t; _sgnl_vid=v-123; _fbc=fb.1.1600000000000.AbC; _fbp=fb.1.1.99"
    captured = ctx(headers={"cookie": header})
    assert captured.visitor_id == "v-123"
    assert captured.fbc == "fb.1.1600000000000.AbC"
    assert captured.fbp == "fb.1.1.99"
    assert "s3cr3t" not in repr(captured)


@pytest.mark.parametrize(
    ("header", "visitor"),
    [
        ("_sgnl_vid=first; _sgnl_vid=second", "first"),
        ("_sgnl_vid=; _sgnl_vid=second", "second"),
        ('_sgnl_vid="quoted"', "quoted"),
        ("  _sgnl_vid  =  padded  ", "padded"),
        (";;;=;_sgnl_vid;_sgnl_vid=ok", "ok"),
        ("_sgnl_vid=has space", None),
        ("_sgnl_vid=caf\u00e9", None),
        ("_sgnl_vid=" + "v" * 500, "v" * 500),
        ("_sgnl_vid=" + "v" * 501, None),
        ("_SGNL_VID=other-case", None),
        ("_sgnl_vid=a=b", "a=b"),
        ("garbage", None),
        ("", None),
    ],
)
def test_cookie_parsing_edge_cases(header: str, visitor: str | None) -> None:
    assert ctx(headers={"cookie": header}).visitor_id == visitor


def _cookies_pair_by_pair(header: str) -> dict[str, str | None]:
    """The cookie header read as browsers write it: split at ";", then at the first "="."""
    found: dict[str, str | None] = {}
    for part in header.split(";"):
        name, _, value = part.partition("=")
        name = name.strip()
        if name in ("_sgnl_vid", "_fbc", "_fbp") and name not in found:
            kept = ctx(cookies={name: value})
            if value := {"_sgnl_vid": kept.visitor_id, "_fbc": kept.fbc, "_fbp": kept.fbp}[name]:
                found[name] = value
    return found


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["_sgnl_vid", "_fbc", "_fbp", "session", "x_fbc", "_fbc_x", ""]),
            st.text(st.sampled_from(list(' \t\u3000\x1c=;"ab')), max_size=3),
            st.text(st.sampled_from(list(' \t\u00a0=;"ab1.')), max_size=8),
        ).map(lambda pair: f"{pair[1]}{pair[0]}{pair[1][::-1]}={pair[2]}"),
        max_size=6,
    ).map(";".join)
)
@example("_fbc; _fbc=ok")
@example("a=_fbc=no; _fbp =\u3000yes ")
def test_the_cookie_header_is_read_as_split_pair_by_pair(header: str) -> None:
    captured = ctx(headers={"cookie": header})
    read = {"_sgnl_vid": captured.visitor_id, "_fbc": captured.fbc, "_fbp": captured.fbp}
    assert {name: value for name, value in read.items() if value} == _cookies_pair_by_pair(header)


def test_cookie_mapping_replaces_the_cookie_header() -> None:
    captured = ctx(
        headers={"cookie": "_sgnl_vid=from-header"},
        cookies={VISITOR_COOKIE: "from-mapping", "_fbp": "x" * 501},
    )
    assert captured.visitor_id == "from-mapping"
    assert captured.fbp is None


# --- query string -------------------------------------------------------------------------


def test_click_ids_from_the_query_string_keep_their_case() -> None:
    query = "fbclid=IwAR2xYz&gclid=EAIaIQobChMI&wbraid=Wb-1&gbraid=0AAAA_x&ttclid=E.C.P.Ab&q=shoes"
    captured = ctx(query=query)
    assert captured.fbclid == "IwAR2xYz"
    assert captured.gclid == "EAIaIQobChMI"
    assert captured.wbraid == "Wb-1"
    assert captured.gbraid == "0AAAA_x"
    assert captured.ttclid == "E.C.P.Ab"


@pytest.mark.parametrize(
    ("query", "gclid"),
    [
        ("gclid=first&gclid=second", "first"),
        ("gclid=&gclid=second", "second"),
        ("gclid=" + "g" * 501 + "&gclid=ok", "ok"),
        ("gclid=" + "g" * 500, "g" * 500),
        ("?gclid=abc", "abc"),
        ("g%63lid=encoded-key", "encoded-key"),
        ("gclid=a%2Fb%3D", "a/b="),
        ("gclid=a+b", None),  # a space is not part of any click id
        ("gclid=%ff%fe", None),
        ("GCLID=upper-key", None),
        ("gclid", None),
        ("&&&=&gclid=x;y", "x;y"),
        ("", None),
    ],
)
def test_query_parsing_edge_cases(query: str, gclid: str | None) -> None:
    assert ctx(query=query).gclid == gclid


def test_query_mapping_is_read_by_name() -> None:
    captured = ctx(query={"gclid": "abc", "ttclid": " ", "fbclid": "x" * 501})
    assert (captured.gclid, captured.ttclid, captured.fbclid) == ("abc", None, None)


def test_fbc_built_from_fbclid_when_the_cookie_is_absent() -> None:
    assert ctx(query="fbclid=IwAR2xYz").fbc == "fb.1.1700000000123.IwAR2xYz"


def test_fbc_cookie_wins_over_fbclid() -> None:
    captured = ctx(headers={"cookie": "_fbc=fb.1.1.old"}, query="fbclid=new")
    assert captured.fbc == "fb.1.1.old"
    assert captured.fbclid == "new"


def test_fbc_built_when_the_cookie_is_unusable() -> None:
    captured = ctx(headers={"cookie": "_fbc=bad value"}, query="fbclid=new")
    assert captured.fbc == "fb.1.1700000000123.new"


def test_fbc_uses_the_current_time_by_default() -> None:
    fbc = context_from_mappings(headers={}, query="fbclid=x").fbc
    assert fbc is not None
    millis = int(fbc.split(".")[2])
    assert abs(millis / 1000 - __import__("time").time()) < 60


# --- headers, url -------------------------------------------------------------------------


def test_mappings_capture_user_agent_ip_and_url() -> None:
    captured = ctx(
        headers={"user-agent": " Mozilla/5.0 (X11) ", "x-forwarded-for": f"6.6.6.6, {REAL}"},
        peer=PROXY,
        url="https://shop.example/thank-you?order=1",
        trusted_proxies=1,
    )
    assert captured == RequestContext(
        client_ip_address=REAL,
        client_user_agent="Mozilla/5.0 (X11)",
        url="https://shop.example/thank-you?order=1",
    )


def test_mappings_with_capitalized_header_names_are_understood() -> None:
    captured = ctx(headers={"User-Agent": "UA", "Cookie": "_sgnl_vid=v1"})
    assert (captured.client_user_agent, captured.visitor_id) == ("UA", "v1")


@pytest.mark.parametrize(
    ("user_agent", "kept"),
    [("Mozilla/5.0", True), ("", False), ("u" * 1025, False), ("bad\x00ua", False)],
)
def test_user_agent_junk_is_dropped(user_agent: str, kept: bool) -> None:
    captured = ctx(headers={"user-agent": user_agent})
    assert (captured.client_user_agent == user_agent) is kept


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://shop.example/a?b=c", True),
        ("HTTP://shop.example", True),
        ("javascript:alert(1)", False),
        ("/relative/path", False),
        ("https://shop.example/a b", False),
        ("https://shop.example/" + "a" * 8200, False),
    ],
)
def test_url_must_be_absolute_http(url: str, kept: bool) -> None:
    assert (ctx(url=url).url == url) is kept


def test_mappings_with_nothing_give_an_empty_context() -> None:
    assert ctx() == RequestContext()
    assert ctx().to_dict() == {}


@given(
    cookie=st.text(max_size=300),
    query=st.text(max_size=300),
    user_agent=st.text(max_size=50),
    url=st.text(max_size=50),
)
@example(cookie='_sgnl_vid="', query="fbclid=%", user_agent="\udc80", url="http://\udc80")
@example(cookie="_fbc=\udc80", query="gclid=%ED%A0%80", user_agent="", url="")
def test_cookie_and_query_parsing_never_raises(
    cookie: str, query: str, user_agent: str, url: str
) -> None:
    headers = {"cookie": cookie, "user-agent": user_agent}
    captured = ctx(headers=headers, query=query, url=url)
    for name in (*CLICK_ID_PARAMS, "visitor_id", "fbp"):
        value = getattr(captured, name)
        assert value is None or (0 < len(value) <= 500 and value.isascii() and " " not in value)


# --- WSGI environ -------------------------------------------------------------------------


def environ(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/thank-you",
        "QUERY_STRING": "gclid=G1&fbclid=F1",
        "SERVER_NAME": "internal",
        "SERVER_PORT": "8000",
        "REMOTE_ADDR": PROXY,
        "HTTP_HOST": "shop.example",
        "HTTP_USER_AGENT": "Mozilla/5.0",
        "HTTP_COOKIE": "_sgnl_vid=v1; _fbp=fb.1.1.2",
        "wsgi.url_scheme": "http",
    }
    base.update(extra)
    return {key: value for key, value in base.items() if value is not None}


def test_wsgi_environ_captures_everything() -> None:
    captured = context_from_wsgi(environ())
    assert captured.visitor_id == "v1"
    assert captured.fbp == "fb.1.1.2"
    assert captured.client_ip_address == PROXY
    assert captured.client_user_agent == "Mozilla/5.0"
    assert captured.url == "http://shop.example/thank-you?gclid=G1&fbclid=F1"
    assert (captured.gclid, captured.fbclid) == ("G1", "F1")
    assert captured.fbc is not None
    assert captured.fbc.endswith(".F1")


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({"HTTP_HOST": None}, "http://internal:8000/thank-you"),
        ({"HTTP_HOST": None, "SERVER_PORT": "80"}, "http://internal/thank-you"),
        ({"HTTP_HOST": None, "SERVER_NAME": None}, None),
        (
            {"wsgi.url_scheme": "https", "HTTP_HOST": None, "SERVER_PORT": "443"},
            "https://internal/x",
        ),
        (
            {"SCRIPT_NAME": "/shop", "PATH_INFO": "/caf\u00c3\u00a9"},
            "http://shop.example/shop/caf%C3%A9",
        ),
        ({"PATH_INFO": "/a?b#c d"}, "http://shop.example/a%3Fb%23c%20d"),
        ({"PATH_INFO": "/100%"}, "http://shop.example/100%25"),
        ({"PATH_INFO": ""}, "http://shop.example/"),
        (
            {"QUERY_STRING": "utm_term=a b&utm_content=%20&q=x"},
            "http://shop.example/thank-you?utm_term=a%20b&utm_content=%20",
        ),
        ({"HTTP_HOST": "evil.example/phish"}, None),
        ({"HTTP_HOST": "[2001:db8::1]:8080"}, "http://[2001:db8::1]:8080/thank-you"),
        ({"wsgi.url_scheme": "ftp"}, None),
    ],
)
def test_wsgi_url_is_rebuilt_from_the_environ(extra: dict[str, Any], url: str | None) -> None:
    env = environ(**{"QUERY_STRING": "", **extra})
    if extra.get("wsgi.url_scheme") == "https":
        env["PATH_INFO"] = "/x"
    assert context_from_wsgi(env).url == url


def test_wsgi_forwarded_proto_and_host_honoured_only_with_trust() -> None:
    env = environ(
        QUERY_STRING="",
        HTTP_X_FORWARDED_PROTO="http, https",
        HTTP_X_FORWARDED_HOST="evil.example, shop.example",
        HTTP_X_FORWARDED_FOR=f"6.6.6.6, {REAL}",
        HTTP_HOST="app:8000",
    )
    assert context_from_wsgi(env).url == "http://app:8000/thank-you"
    assert context_from_wsgi(env, trusted_proxies=1).url == "https://shop.example/thank-you"
    trusted = context_from_wsgi(env, trusted_proxies=["10.0.0.0/8"])
    assert (trusted.url, trusted.client_ip_address) == ("https://shop.example/thank-you", REAL)
    untrusted = context_from_wsgi({**env, "REMOTE_ADDR": "198.51.100.1"}, trusted_proxies=NETS)
    assert untrusted.url == "http://app:8000/thank-you"
    assert untrusted.client_ip_address == "198.51.100.1"


def test_wsgi_forwarded_proto_junk_is_ignored() -> None:
    env = environ(QUERY_STRING="", HTTP_X_FORWARDED_PROTO="gopher", HTTP_X_FORWARDED_HOST=" ")
    assert context_from_wsgi(env, trusted_proxies=1).url == "http://shop.example/thank-you"


def test_wsgi_rfc7239_forwarded_gives_proto_host_and_ip() -> None:
    env = environ(
        QUERY_STRING="",
        HTTP_FORWARDED=f'for=6.6.6.6;proto=http, for="{REAL}";proto=HTTPS;host=shop.example',
        HTTP_HOST="app",
    )
    captured = context_from_wsgi(env, trusted_proxies=parse_trusted_proxies(1, header="forwarded"))
    assert captured.url == "https://shop.example/thank-you"
    assert captured.client_ip_address == REAL
    bare = context_from_wsgi(
        {**env, "HTTP_FORWARDED": ""}, trusted_proxies=TrustedProxies(hops=1, header="forwarded")
    )
    assert bare.url == "http://app/thank-you"


def test_wsgi_non_string_environ_values_are_ignored() -> None:
    env = environ(HTTP_USER_AGENT=b"bytes", HTTP_COOKIE=None, QUERY_STRING=None, REMOTE_ADDR="")
    captured = context_from_wsgi(env)
    assert captured.client_user_agent is None
    assert captured.visitor_id is None
    assert captured.client_ip_address is None
    assert captured.url == "http://shop.example/thank-you"


# --- ASGI scope ---------------------------------------------------------------------------


def scope(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "http",
        "scheme": "https",
        "path": "/thank-you",
        "raw_path": b"/thank-you",
        "query_string": b"ttclid=T1",
        "headers": [
            (b"host", b"shop.example"),
            (b"user-agent", b"Mozilla/5.0"),
            (b"cookie", b"_sgnl_vid=v1"),
            (b"cookie", b"_fbp=fb.1.1.2"),
            (b"x-forwarded-for", b"6.6.6.6"),
            (b"X-Forwarded-For", b"7.7.7.7"),
            (b"accept", b"*/*"),
        ],
        "client": (PROXY, 50000),
        "server": ("10.0.0.9", 8443),
    }
    base.update(extra)
    return {key: value for key, value in base.items() if value is not None}


def test_asgi_header_names_in_any_case_or_buffer_type_are_read() -> None:
    # Servers lowercase header names as the ASGI spec says; others are still read.
    headers = [
        (bytearray(b"cookie"), bytearray(b"_sgnl_vid=v2")),
        (b"USER-AGENT", b"Shouting/1.0"),
        (b"123", b"ignored"),
    ]
    captured = context_from_asgi(scope(headers=headers))
    assert captured.visitor_id == "v2"
    assert captured.client_user_agent == "Shouting/1.0"


def test_asgi_scope_captures_everything_and_combines_repeated_headers() -> None:
    captured = context_from_asgi(scope(), trusted_proxies=2)
    assert captured.visitor_id == "v1"
    assert captured.fbp == "fb.1.1.2"
    assert captured.client_ip_address == "6.6.6.6"
    assert context_from_asgi(scope(), trusted_proxies=1).client_ip_address == "7.7.7.7"
    assert context_from_asgi(scope()).client_ip_address == PROXY
    assert captured.client_user_agent == "Mozilla/5.0"
    assert captured.url == "https://shop.example/thank-you?ttclid=T1"
    assert captured.ttclid == "T1"


@pytest.mark.parametrize(
    ("extra", "url"),
    [
        ({"raw_path": b"/caf%C3%A9/a b\xff"}, "https://shop.example/caf%C3%A9/a%20b%FF"),
        ({"raw_path": None, "path": "/caf\u00e9?"}, "https://shop.example/caf%C3%A9%3F"),
        ({"raw_path": b"http://proxy.example/x", "path": "/x"}, "https://shop.example/x"),
        ({"raw_path": None, "path": None}, "https://shop.example/"),
        ({"headers": []}, "https://10.0.0.9:8443/thank-you"),
        ({"headers": [], "server": ("10.0.0.9", 443)}, "https://10.0.0.9/thank-you"),
        ({"headers": [], "server": ("2001:db8::9", 8443)}, "https://[2001:db8::9]:8443/thank-you"),
        ({"headers": [], "server": ("/run/app.sock", None)}, None),
        ({"headers": [], "server": None}, None),
        ({"scheme": None, "headers": [(b"host", b"a")]}, "http://a/thank-you"),
    ],
)
def test_asgi_url_is_rebuilt_from_the_scope(extra: dict[str, Any], url: str | None) -> None:
    assert context_from_asgi(scope(query_string=b"", **extra)).url == url


def test_asgi_scope_without_client_or_headers_gives_an_empty_context() -> None:
    bare = {"type": "http", "path": "/"}
    assert context_from_asgi(bare) == RequestContext()


def test_asgi_forwarded_host_honoured_only_with_trust() -> None:
    headers = [(b"host", b"app"), (b"x-forwarded-host", b"shop.example")]
    assert context_from_asgi(scope(headers=headers)).url == "https://app/thank-you?ttclid=T1"
    trusted = context_from_asgi(scope(headers=headers), trusted_proxies=1)
    assert trusted.url == "https://shop.example/thank-you?ttclid=T1"


@given(
    st.lists(
        st.tuples(
            st.sampled_from([b"cookie", b"x-forwarded-for", b"forwarded", b"host", b"user-agent"]),
            st.binary(max_size=100),
        ),
        max_size=6,
    ),
    st.binary(max_size=100),
    st.binary(max_size=50),
)
def test_asgi_capture_never_raises_on_arbitrary_bytes(
    headers: list[tuple[bytes, bytes]], query: bytes, path: bytes
) -> None:
    for trusted in (None, 1, NETS, TrustedProxies(hops=1, header="forwarded")):
        captured = context_from_asgi(
            scope(headers=headers, query_string=query, raw_path=b"/" + path),
            trusted_proxies=trusted,
        )
        assert isinstance(captured, RequestContext)


def test_asgi_scope_with_a_str_query_string_is_read_like_bytes() -> None:
    # Django's AsyncClient puts a str where the ASGI spec says bytes.
    scope = {
        "type": "http",
        "path": "/landing",
        "query_string": "gclid=AbC123&fbclid=Xy",
        "headers": [(b"host", b"shop.example")],
        "client": ("203.0.113.7", 5000),
    }
    ctx = context_from_asgi(scope)
    assert ctx.gclid == "AbC123"
    assert ctx.fbclid == "Xy"
    assert ctx.url == "http://shop.example/landing?gclid=AbC123&fbclid=Xy"


@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("email=jane%40example.com&gclid=Gc1", "gclid=Gc1"),
        ("utm_source=ads&utm_campaign=x&token=s3cret", "utm_source=ads&utm_campaign=x"),
        ("phone=%2B15551234567&order=42", ""),
        ("fbclid=Fb&ttclid=Tt&wbraid=Wb&gbraid=Gb", "fbclid=Fb&ttclid=Tt&wbraid=Wb&gbraid=Gb"),
    ],
)
def test_the_captured_url_keeps_only_attribution_parameters(query: str, kept: str) -> None:
    # The URL is stored in the outbox and sent: a thank-you page's ?email= must not be.
    scope = {
        "type": "http",
        "path": "/thanks",
        "query_string": query.encode(),
        "headers": [(b"host", b"shop.example")],
        "client": ("203.0.113.7", 5000),
    }
    ctx = context_from_asgi(scope)
    assert ctx.url == "http://shop.example/thanks" + (f"?{kept}" if kept else "")
    assert "jane" not in (ctx.url or "")
    assert "s3cret" not in (ctx.url or "")


@given(
    text=st.text(
        st.sampled_from(list("aZ09_.-~/!$&'()*+,;=:@%? #\"<>\\^`{|}\x00\x7f\u00e9\u4e2d"))
    ),
    safe=st.sampled_from(["/!$&'()*+,;=:@~", "/!$&'()*+,;=:@~%?"]),
    encoding=st.sampled_from(["latin-1", "utf-8"]),
)
def test_paths_and_queries_are_quoted_as_quote_does(text: str, safe: str, encoding: str) -> None:
    # The capture skips quote() for text it would give back unchanged: never another result.
    assert capture._quote(text, safe, encoding) == quote(
        text, safe=safe, encoding=encoding, errors="replace"
    )
