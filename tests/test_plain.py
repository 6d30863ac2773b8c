"""plain_body, track()'s fast path: when it answers, the full path would have sent the same bytes.

The full path is ``make_event`` + ``build_payload`` (with the bound request context and the
default phone region) + ``encode_body``. Whenever ``plain_body`` answers, its event id and
body must be exactly the full path's, it must have left the caller's dicts alone, and it
must log exactly what the full path logs: nothing about the given fields (an input the full
path would warn about is declined), and the same warnings about request-context values it
drops (both paths check those in the shared payload code).

The strategies draw near-plain events: mostly the usual shapes, each field sometimes odd
(whitespace, case, pre-hashes, other formats, wrong types), so both answers are exercised;
``--hypothesis-show-statistics`` shows how often each happens.
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import event as note_outcome
from hypothesis import given, settings
from hypothesis import strategies as st

from roasproof._normalize import EMPTY_SHA256
from roasproof._payload import build_payload, encode_body
from roasproof._plain import plain_body
from roasproof.context import RequestContext, bind_context, current_context
from roasproof.events import STANDARD_EVENTS, ActionSource, StandardEvent, UserData, make_event

Answer = tuple[str, bytes]

HEX32 = "0123456789abcdef" * 2
HEX64 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
FBC = "fb.1.1719000000000.AbCdEfGhIjKlMnOp"
FBP = "fb.1.1719000000000.1234567890"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0"


# -- the two paths ---------------------------------------------------------------------------


def plain(event: object, fields: dict[str, Any], region: str | None) -> Answer | None:
    """plain_body's answer as ``(event_id, body)``, or None when it declines.

    ``region`` is what track() would pass the full path; the plain path only takes phone
    numbers written in E.164, which need none, so its answer must hold for any region.
    """
    answer = plain_body(event, fields)
    if answer is None:
        return None
    event_id, name, body = answer
    assert name == event
    return event_id, body


def full(event: object, fields: dict[str, Any], region: str | None) -> Answer:
    valid = make_event(event, **fields)  # type: ignore[arg-type]  # odd names on purpose
    payload = build_payload(valid, context=current_context(), default_phone_region=region)
    return valid.event_id, encode_body(payload)


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def logged() -> Iterator[list[str]]:
    """The messages logged on the ``roasproof`` logger inside the block."""
    logger = logging.getLogger("roasproof")
    handler, level = _Messages(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler.messages
    finally:
        logger.setLevel(level)
        logger.removeHandler(handler)


@contextmanager
def bound(context: RequestContext | None, *, lazy: bool = False) -> Iterator[None]:
    """Inside a request with ``context`` (built on first use if ``lazy``); None: outside."""
    if context is None:
        yield
        return
    with bind_context((lambda: context) if lazy else context):
        yield


_OCCURRED_AT = re.compile(rb'"occurred_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z",')


def without_occurred_at(answer: Answer) -> Answer:
    """The answer with its ``occurred_at`` member cut out (it is "now" when left out)."""
    event_id, body = answer
    cut, found = _OCCURRED_AT.subn(b"", body, count=1)
    assert found == 1, body
    return event_id, cut


def _same(a: object, b: object) -> bool:
    return a is b or a == b  # deepcopy keeps floats and Decimals: NaN is itself


def assert_plain_matches_full(event: object, fields: dict[str, Any], region: str | None) -> bool:
    """The invariant, for one input; returns whether plain_body answered."""
    before = {key: (value, copy.deepcopy(value)) for key, value in fields.items()}
    with logged() as plain_messages:
        answer = plain(event, dict(fields), region)
    # Nothing of the caller's changed: same keys, same objects, same nested contents.
    assert fields.keys() == before.keys()
    for key, (value, snapshot) in before.items():
        assert fields[key] is value
        assert _same(value, snapshot), key
    if answer is None:
        assert plain_messages == []  # the full path runs next and logs what there is
        return False
    with logged() as full_messages:
        expected = full(event, fields, region)  # raises if plain_body answered wrongly
    if fields.get("occurred_at") is None:  # "now", taken at two different moments
        answer, expected = without_occurred_at(answer), without_occurred_at(expected)
    assert answer == expected
    assert plain_messages == full_messages
    assert all("from the request context" in message for message in full_messages)
    return True


# -- near-plain values -----------------------------------------------------------------------


def mostly(usual: st.SearchStrategy[Any], *unusual: object) -> st.SearchStrategy[Any]:
    """A usual value about seven times in eight, else one of ``unusual`` (values or strategies).

    (``st.one_of`` would weigh each unusual value as much as all the usual ones together.)
    """
    values = [item for item in unusual if not isinstance(item, st.SearchStrategy)]
    odd = st.one_of(
        st.sampled_from(values), *[item for item in unusual if isinstance(item, st.SearchStrategy)]
    )

    @st.composite
    def usual_or_odd(draw: st.DrawFn) -> Any:
        return draw(odd if draw(st.integers(0, 7)) == 7 else usual)

    return usual_or_odd()


def ago(minutes: int) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


class Text(str):
    """A str subclass, as some ORMs and form libraries hand out."""

    __slots__ = ()


class Shouty(str):
    """A str subclass whose ``str()`` is another text."""

    __slots__ = ()

    def __str__(self) -> str:
        return self.upper()


class Size(StrEnum):
    LARGE = "large"


class Quantity(IntEnum):
    TWO = 2


# Up to 3 minutes ahead and 6 days back: inside the window the full path takes silently,
# away from its edges (5 minutes ahead, 7 days back) so the two paths' clocks cannot differ.
_MINUTES = st.integers(min_value=-3, max_value=6 * 24 * 60)
_UTC_PLUS_2 = timezone(timedelta(hours=2))

event_names = mostly(
    st.sampled_from(sorted(STANDARD_EVENTS)),
    "newsletter_signup",
    "purchse",
    "Purchase",
    " lead",
    StandardEvent.PURCHASE,
)
event_ids = mostly(
    st.one_of(
        st.sampled_from(["purchase_10023", "lead_88231", HEX32]),
        st.from_regex(r"[!-~]{1,40}", fullmatch=True),
    ),
    "",
    "order 10023",
    " purchase_10023",
    "x" * 129,
    "ñ-10023",
    "tab\t1",
    None,
    10023,
)
amounts = mostly(
    st.one_of(
        st.sampled_from(["249.00", "0", "19.90", "1000"]),
        st.integers(min_value=0, max_value=10**9),
        st.decimals(min_value=0, max_value=10**6, places=2),
        st.floats(min_value=0, max_value=1e6),
    ),
    "007",
    "249.",
    "-1",
    "1e3",
    " 5 ",
    "-0",
    "",
    "abc",
    "1_000",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: Decimal() takes it
    Decimal("NaN"),
    Decimal("-0.00"),
    Decimal("1E+3"),
    Decimal("1E-19"),
    True,
    -0.0,
    float("nan"),
    float("inf"),
    10**16,
    [249],
)
currencies = mostly(
    st.sampled_from(["EUR", "USD", "JPY", "GBP"]), "eur", "Usd", "EURO", "", " EUR", "XYZ", "€"
)
occurred_ats = mostly(
    st.one_of(
        _MINUTES.map(ago),
        _MINUTES.map(lambda m: ago(m).astimezone(_UTC_PLUS_2)),
        _MINUTES.map(lambda m: ago(m).isoformat()),
        _MINUTES.map(lambda m: ago(m).strftime("%Y-%m-%dT%H:%M:%SZ")),
    ),
    None,
    st.builds(lambda: ago(8 * 24 * 60)),
    st.builds(lambda: ago(-10)),
    st.builds(lambda: ago(3).replace(tzinfo=None)),
    st.builds(lambda: f" {ago(3).isoformat()} "),
    "yesterday",
    "",
    1719000000,
    date(2026, 7, 3),
)
urls = mostly(
    st.sampled_from(
        [
            "https://shop.example.com/checkout/thank-you?order=10023",
            "http://localhost:8000/",
            "https://shop.example/p/1#reviews",
        ]
    ),
    "HTTPS://shop.example/",
    "https://shop.example/thank you",
    "https://shöp.example/",
    "https://shop.example/ü",
    "shop.example/checkout",
    "ftp://shop.example/",
    "https://shop.example:99999/",
    " https://shop.example/",
    "",
    None,
)
action_sources = mostly(
    st.sampled_from(["website", "app", "physical_store", ActionSource.APP, ActionSource.WEBSITE]),
    None,
    "Website",
    "web",
    " website",
    3,
    Size.LARGE,
)
site_keys = mostly(st.just("sk_live_123"), " sk_live_123 ", "", "\u00a0", "\x1c", None)

emails = mostly(
    st.sampled_from(["jane.doe@example.com", "Jane.Doe@Example.com", "JANE@EXAMPLE.CO.UK"]),
    " jane@example.com",
    "jane@example.com\n",
    "jäne@example.com",
    "jane@exämple.com",
    "jane doe@example.com",
    HEX32,
    HEX64,
    HEX64.upper(),
    EMPTY_SHA256,
    "not-an-email",
    "jane@example",
    "jane@@example.com",
    "jane@.example.com",
    "",
    None,
)
phones = mostly(
    st.sampled_from(["+4930901820", "+16505551212", "+442071838750", "+33142685300"]),
    "+49 30 901820",
    "030 901820",
    "(650) 555-1212",
    "+49030901820",
    "+1",
    "+123456789012345678901",
    "+999123456789",
    HEX32,
    HEX64,
    EMPTY_SHA256,
    " +4930901820",
    "",
    None,
)
external_ids = mostly(
    st.sampled_from(["customer-88231", "cust-4711", "42"]),
    " cust-4711 ",
    "\x1ccust-4711",
    "\u00a0cust-4711\u00a0",
    "\x1c" + HEX64,
    "\u00a0" + HEX64,
    "\x1c" + EMPTY_SHA256,
    HEX64,
    HEX64.upper(),
    EMPTY_SHA256,
    HEX32,
    "",
    "   ",
    "\x1c",
    None,
)
addresses = mostly(
    st.sampled_from(["203.0.113.42", "198.51.100.7", "2001:db8::1"]),
    "203.000.113.042",
    "2001:DB8:0:0::1",
    "::ffff:203.0.113.7",
    " 203.0.113.42 ",
    "203.0.113.42:443",
    "fe80::1%eth0",
    "256.1.1.1",
    "junk",
    "",
    None,
)
user_agents = mostly(st.just(UA), "", "  ", f" {UA} ", None)
fb_cookies = mostly(
    st.sampled_from([FBC, FBP]),
    "fb.1.123.abc",
    f" {FBC}",
    "fb.1.1719000000000." + "a" * 500,
    "_fbp=" + FBP,
    "",
    None,
)
click_ids = mostly(st.sampled_from(["Cj0KCQjw-example-gclid", "IwAR2xYz"]), " x ", "", None)
visitor_ids = mostly(st.sampled_from(["v_8f2a1c", "vid-1"]), " v_8f2a1c ", "", "\x1c", None)

_IDENTIFIERS = {
    "email": emails,
    "phone": phones,
    "external_id": external_ids,
    "visitor_id": visitor_ids,
    "client_ip_address": addresses,
    "client_user_agent": user_agents,
    "fbc": fb_cookies,
    "fbp": fb_cookies,
    "fbclid": click_ids,
    "gclid": click_ids,
    "wbraid": click_ids,
    "gbraid": click_ids,
    "ttclid": click_ids,
}


@st.composite
def user_data_dicts(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.sets(st.sampled_from(sorted(_IDENTIFIERS)), max_size=6))
    return {key: draw(_IDENTIFIERS[key]) for key in sorted(keys)}


user_datas = mostly(
    user_data_dicts(),
    None,
    {},
    st.builds(lambda: UserData(email="jane@example.com", visitor_id="v1")),
    "jane@example.com",
    ["jane@example.com"],
    {"emial": "jane@example.com"},
    {1: "x"},
)

_flat_values = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
custom_datas = mostly(
    st.dictionaries(
        st.one_of(st.from_regex(r"[a-z_][a-z0-9_]{0,11}", fullmatch=True), st.text(max_size=8)),
        _flat_values,
        max_size=5,
    ),
    {" order_id": "10023"},
    {"coupon": "SUMMER24", "coupon ": "WINTER24"},
    {"items": [{"sku": "A-1", "quantity": 2}]},
    {"note": "x" * 121},
    {f"k{i}": i for i in range(17)},
    {"k" * 41: 1},
    {1: "one"},
    {Text("size"): Text("large")},
    {"size": Size.LARGE, "quantity": Quantity.TWO},
    {"price": Decimal("9.99")},
    {"ratio": float("nan")},
    {"ratio": float("inf")},
    {"zero": -0.0},
    {"tiny": 1e-5},
    {"big": 1e16},
    {"n": 2**63},
    {"n": -(2**63) - 1},
    {"n": 2**64},
    {"when": ago(3)},
    {},
    None,
    ["order_id", "10023"],
    "order_id=10023",
)
unknown_keys = mostly(st.just({}), {"coupon": "SUMMER24"}, {"email": "jane@example.com"})
regions = st.sampled_from([None, "DE", "US", "de", " gb ", "ZZ"])


@st.composite
def event_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of a near-plain track() call; event_id always given."""
    fields: dict[str, Any] = {"event_id": draw(event_ids)}
    money = draw(st.sampled_from(["both", "both", "both", "neither", "value", "currency"]))
    if money in ("both", "value"):
        fields["value"] = draw(amounts)
    if money in ("both", "currency"):
        fields["currency"] = draw(currencies)
    optional = {
        "occurred_at": occurred_ats,
        "url": urls,
        "action_source": action_sources,
        "site_key": site_keys,
        "user_data": user_datas,
        "custom_data": custom_datas,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            fields[key] = draw(strategy)
    fields.update(draw(unknown_keys))
    return fields


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


contexts = st.builds(
    RequestContext,
    visitor_id=_maybe(st.sampled_from(["v_ctx", ""])),
    client_ip_address=_maybe(
        mostly(
            st.sampled_from(["198.51.100.9", "2001:db8::9"]), "010.0.0.1", "::ffff:1.2.3.4", "junk"
        )
    ),
    client_user_agent=_maybe(st.just("Context-UA/1.0")),
    url=_maybe(
        mostly(
            st.just("https://shop.example/from-context"),
            "ftp://shop.example/",
            "not a url",
            "HTTPS://shop.example/",
        )
    ),
    fbc=_maybe(mostly(st.just("fb.1.1719000000001.ctx"), "fb.bad")),
    fbp=_maybe(mostly(st.just("fb.1.1719000000001.999"), "")),
    fbclid=_maybe(st.just("IwAR-ctx")),
    gclid=_maybe(st.just("gclid-ctx")),
    wbraid=_maybe(st.just("wbraid-ctx")),
    gbraid=_maybe(st.just("gbraid-ctx")),
    ttclid=_maybe(st.just("ttclid-ctx")),
)


# -- the invariant, drawn --------------------------------------------------------------------


@settings(max_examples=400)
@given(event=event_names, fields=event_fields(), region=regions)
def test_outside_a_request_plain_body_answers_as_the_full_path_does(
    event: object, fields: dict[str, Any], region: str | None
) -> None:
    answered = assert_plain_matches_full(event, fields, region)
    note_outcome("accepted" if answered else "declined")


@settings(max_examples=400)
@given(
    event=event_names,
    fields=event_fields(),
    region=regions,
    context=contexts,
    lazy=st.booleans(),
)
def test_inside_a_request_plain_body_answers_as_the_full_path_does(
    event: object, fields: dict[str, Any], region: str | None, context: RequestContext, lazy: bool
) -> None:
    with bound(context, lazy=lazy):
        answered = assert_plain_matches_full(event, fields, region)
    note_outcome("accepted" if answered else "declined")


# -- the usual shapes take the fast path; the others decline ---------------------------------

# bench/_common.py's PURCHASE as bench_track.py sends it: the phone in E.164 (the benchmark
# gives each call its own number written so); value "249.00".
BENCH_PURCHASE: dict[str, Any] = {
    "event_id": "purchase_10023",
    "value": "249.00",
    "currency": "EUR",
    "url": "https://shop.example.com/checkout/thank-you?order=10023",
    "user_data": {
        "email": "Jane.Doe@Example.com",
        "phone": "+493010000042",
        "external_id": "customer-88231",
        "client_ip_address": "203.0.113.42",
        "client_user_agent": UA,
        "fbc": FBC,
        "fbp": FBP,
        "gclid": "Cj0KCQjw-example-gclid",
    },
    "custom_data": {"order_id": "10023", "items": 3, "coupon": "SUMMER24"},
}
RECENT = "recent"  # replaced by a moment three minutes ago when the test runs


def _resolved(fields: dict[str, Any]) -> dict[str, Any]:
    fields = copy.deepcopy(fields)
    if fields.get("occurred_at") == RECENT:
        fields["occurred_at"] = ago(3)
    return fields


@pytest.mark.parametrize(
    ("event", "fields"),
    [
        pytest.param("purchase", BENCH_PURCHASE, id="bench-purchase"),
        pytest.param(
            "lead",
            {"event_id": "lead_1", "user_data": {"email": "jane@example.com"}},
            id="lead-with-only-an-email",
        ),
        pytest.param(
            "purchase",
            {"event_id": "purchase_2", "value": 249, "currency": "EUR", "occurred_at": RECENT},
            id="purchase-int-value",
        ),
        pytest.param(
            "purchase",
            {"event_id": "purchase_3", "value": Decimal("249.00"), "currency": "USD"},
            id="purchase-decimal-value",
        ),
        pytest.param(
            "purchase",
            {
                "event_id": "purchase_4",
                "value": "19.90",
                "currency": "EUR",
                "user_data": {"client_ip_address": "2001:db8::1", "email": "jane@example.com"},
            },
            id="purchase-ipv6",
        ),
        pytest.param(
            "signup",
            {"event_id": "signup_5", "occurred_at": datetime.now(UTC).isoformat()},
            id="signup-iso-occurred-at",
        ),
        pytest.param(
            "purchase",
            {
                **BENCH_PURCHASE,
                "user_data": {**BENCH_PURCHASE["user_data"], "phone": "+49 30 901820"},
            },
            id="bench-purchase-as-written-phone-with-spaces",
        ),
        pytest.param(
            "lead",
            {"event_id": "lead_7", "user_data": {"phone": "+1 (650) 555-1212"}},
            id="us-phone-as-people-write-it",
        ),
    ],
)
def test_the_usual_events_take_the_fast_path(event: str, fields: dict[str, Any]) -> None:
    assert assert_plain_matches_full(event, _resolved(fields), "DE")


def test_a_signup_with_no_fields_takes_the_fast_path_with_a_fresh_id() -> None:
    answer = plain("signup", {}, None)
    again = plain("signup", {}, None)

    assert answer is not None
    assert again is not None
    event_id, body = answer
    assert re.fullmatch(r"[0-9a-f]{32}", event_id)
    assert again[0] != event_id
    # The body is the full path's for that id.
    assert without_occurred_at(answer) == without_occurred_at(
        full("signup", {"event_id": event_id}, None)
    )
    assert json.loads(body)["event_id"] == event_id


@pytest.mark.parametrize("event", sorted(STANDARD_EVENTS))
def test_without_an_event_id_the_fast_path_draws_32_hex_characters(event: str) -> None:
    answer = plain(event, {"user_data": {"email": "jane@example.com"}}, None)

    assert answer is not None
    assert re.fullmatch(r"[0-9a-f]{32}", answer[0])
    assert json.loads(answer[1])["event_id"] == answer[0]


def test_inside_a_request_the_context_fills_the_fast_paths_gaps() -> None:
    context = RequestContext(
        visitor_id="v_8f2a1c",
        client_ip_address="198.51.100.7",
        url="https://shop.example/checkout/thank-you",
        fbc=FBC,
        fbp=FBP,
        gclid="Cj0KCQjw-example-gclid",
    )
    fields = {"event_id": "purchase_6", "value": "249.00", "currency": "EUR"}

    with bind_context(context):
        answered = assert_plain_matches_full("purchase", fields, None)
        answer = plain("purchase", dict(fields), None)

    assert answered
    assert answer is not None
    sent = json.loads(answer[1])
    assert sent["url"] == "https://shop.example/checkout/thank-you"
    assert sent["user_data"] == {
        "visitor_id": "v_8f2a1c",
        "client_ip_address": "198.51.100.7",
        "fbc": FBC,
        "fbp": FBP,
        "gclid": "Cj0KCQjw-example-gclid",
    }


@pytest.mark.parametrize(
    ("dropped", "warning"),
    [
        (
            {"fbp": "fb.1.x"},
            "user_data.fbp from the request context dropped: not in Meta's "
            "fb.<version>.<creation ms>.<value> shape",
        ),
        (
            {"client_ip_address": "203.0.113.999"},
            "user_data.client_ip_address from the request context dropped: not an IP address",
        ),
        (
            {"url": "ftp://shop.example/"},
            "url from the request context dropped: it is not an absolute http or https URL",
        ),
    ],
)
def test_a_context_value_the_full_path_drops_sends_each_event_of_the_request_there(
    dropped: dict[str, str], warning: str
) -> None:
    # The plain path checks a request's context once and remembers the answer; a context
    # value the full path drops (with a warning) makes it decline every event of that
    # request, so that each one is warned about, and a later request is checked anew.
    usual = {"visitor_id": "v_1", "client_ip_address": "198.51.100.7", "fbp": FBP}
    good, bad = RequestContext(**usual), RequestContext(**{**usual, **dropped})
    fields = {"value": "249.00", "currency": "EUR", "user_data": {"email": "jane@example.com"}}

    with bind_context(good):
        assert plain("purchase", {"event_id": "purchase_1", **fields}, None) is not None
    with bind_context(bad):
        for number in (2, 3):
            assert plain("purchase", {"event_id": f"purchase_{number}", **fields}, None) is None
            with logged() as messages:
                full("purchase", {"event_id": f"purchase_{number}", **fields}, None)
            assert messages == [warning]
    with bind_context(good):
        answer = plain("purchase", {"event_id": "purchase_4", **fields}, None)
    assert answer is not None
    assert json.loads(answer[1])["user_data"]["fbp"] == FBP


@pytest.mark.parametrize(
    ("event", "fields", "region"),
    [
        pytest.param("newsletter_signup", {}, None, id="custom-event-name"),
        pytest.param("purchase", {"value": "249.00", "currency": "eur"}, None, id="lowercase-eur"),
        pytest.param("lead", {"user_data": {"phone": "030 901820"}}, "DE", id="national-phone"),
        pytest.param(
            "lead", {"user_data": {"phone": "+49 (0)30 901820"}}, None, id="national-prefix-in-()"
        ),
        pytest.param(
            "purchase",
            {"custom_data": {"items": [{"sku": "A-1", "quantity": 2}]}},
            None,
            id="nested-custom-data",
        ),
        pytest.param("lead", {"user_data": {"email": HEX64}}, None, id="sha256-email"),
        pytest.param(
            "lead", {"user_data": {"external_id": "\x1c" + HEX64}}, None, id="padded-prehash-id"
        ),
    ],
)
def test_unusual_events_are_declined_and_the_full_path_sends_them(
    event: str, fields: dict[str, Any], region: str | None
) -> None:
    assert plain(event, dict(fields), region) is None
    body = full(event, fields, region)[1]
    assert json.loads(body)["event"] == event


def test_an_eight_day_old_conversion_is_declined_and_the_full_path_warns() -> None:
    fields = {"event_id": "purchase_7", "occurred_at": ago(8 * 24 * 60)}

    assert plain("purchase", dict(fields), None) is None
    with logged() as messages:
        full("purchase", fields, None)
    assert messages == [
        "purchase: occurred_at is 8 days old; ad platforms reject conversions older than "
        "7 days, so this one will likely only count in roasproof's own reports"
    ]


@pytest.mark.parametrize(
    "fields",
    [
        # The full path refuses action_source=None (it is not "left out").
        pytest.param({"action_source": None}, id="action-source-none"),
        # Beyond 64 bits the full path writes the int as it is; a float would round it.
        pytest.param({"custom_data": {"n": 2**63}}, id="int-2**63"),
        pytest.param({"custom_data": {"n": -(2**63) - 1}}, id="int-below-64-bits"),
        # str.strip takes "\x1c" off, pydantic's strip does not: a pre-hash after all.
        pytest.param({"user_data": {"external_id": "\x1c" + HEX64}}, id="x1c-sha256"),
        pytest.param({"user_data": {"external_id": "\x1c" + EMPTY_SHA256}}, id="x1c-empty-sha"),
    ],
)
def test_found_disagreements_stay_fixed(fields: dict[str, Any]) -> None:
    fields = {"event_id": "lead_8", "occurred_at": ago(3), **fields}
    assert not assert_plain_matches_full("lead", fields, None)


@pytest.mark.parametrize(
    "custom_data",
    [
        pytest.param({" order_id": "10023"}, id="padded-key"),
        pytest.param({"a": 1, "a\u00a0": 2}, id="keys-equal-once-stripped"),
    ],
)
def test_custom_data_keys_are_sent_as_given_by_both_paths(custom_data: dict[str, Any]) -> None:
    # The models once stripped these keys, merging "a" and "a\u00a0" and dropping a value.
    fields = {"event_id": "lead_8", "occurred_at": ago(3), "custom_data": custom_data}
    assert assert_plain_matches_full("lead", fields, None)
    body = json.loads(full("lead", fields, None)[1])
    assert body["custom_data"] == custom_data


# -- the caller's dicts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "answers"),
    [
        pytest.param(
            {
                **BENCH_PURCHASE,
                "occurred_at": "2026-07-03T09:41:00Z",  # too old: declined, after validation
            },
            False,
            id="declined-late",
        ),
        pytest.param(
            {
                **BENCH_PURCHASE,
                "user_data": {
                    **BENCH_PURCHASE["user_data"],
                    "client_ip_address": "::ffff:203.0.113.7",  # normalized in the body
                    "external_id": " customer-88231 ",  # stripped in the body
                },
                "site_key": " sk_live_123 ",
                "custom_data": {"order_id": "10023", "ratio": 0.5, "gift": False},
            },
            True,
            id="accepted",
        ),
    ],
)
def test_plain_body_changes_nothing_of_the_callers(fields: dict[str, Any], answers: bool) -> None:
    fields = copy.deepcopy(fields)
    user_data, custom_data = fields["user_data"], fields["custom_data"]
    snapshot = copy.deepcopy(fields)

    answer = plain_body("purchase", fields)  # as track() calls it: its own kwargs dict

    assert (answer is not None) is answers
    assert fields == snapshot
    assert fields["user_data"] is user_data
    assert fields["custom_data"] is custom_data
    assert user_data == snapshot["user_data"]
    assert custom_data == snapshot["custom_data"]


def test_the_normalized_address_is_sent_but_the_callers_stays() -> None:
    user_data = {"client_ip_address": "::ffff:203.0.113.7", "email": "jane@example.com"}
    fields = {"event_id": "lead_9", "user_data": user_data}

    answer = plain("lead", fields, None)

    assert answer is not None
    assert json.loads(answer[1])["user_data"]["client_ip_address"] == "203.0.113.7"
    assert user_data["client_ip_address"] == "::ffff:203.0.113.7"


# -- lone surrogates and str subclasses ------------------------------------------------------

# A purchase plain_body takes, each of whose text fields is replaced in turn.
TEMPLATE: dict[str, Any] = {
    "event_id": "purchase_10023",
    "value": "249.00",
    "currency": "EUR",
    "url": "https://shop.example/thank-you",
    "action_source": "website",
    "site_key": "sk_live_123",
    "user_data": {
        "email": "jane@example.com",
        "phone": "+4930901820",
        "external_id": "customer-88231",
        "visitor_id": "v_8f2a1c",
        "client_ip_address": "203.0.113.42",
        "client_user_agent": UA,
        "fbc": FBC,
        "fbp": FBP,
        "gclid": "Cj0KCQjw-example-gclid",
    },
    "custom_data": {"order_id": "10023"},
}
TEXT_PATHS = [
    "event",
    "event_id",
    "value",
    "currency",
    "occurred_at",
    "url",
    "action_source",
    "site_key",
    *(f"user_data.{key}" for key in TEMPLATE["user_data"]),
    "custom_data.order_id",
    "custom_data key",
]


def with_text(path: str, make: Any) -> tuple[str, dict[str, Any]]:
    """The template purchase with the text at ``path`` replaced by ``make(current text)``."""
    fields = copy.deepcopy(TEMPLATE)
    fields["occurred_at"] = ago(3).isoformat()
    event = "purchase"
    if path == "event":
        event = make(event)
    elif path == "custom_data key":
        fields["custom_data"] = {make("order_id"): "10023"}
    elif "." in path:
        outer, key = path.split(".")
        fields[outer][key] = make(fields[outer][key])
    else:
        fields[path] = make(fields[path])
    return event, fields


def raised(call: Callable[[], object]) -> type[Exception] | None:
    """The type of the exception ``call()`` raises, or None."""
    try:
        call()
    except Exception as exc:
        return type(exc)
    return None


def assert_no_disagreement(event: Any, fields: dict[str, Any]) -> str:
    """Either plain_body declines, or it answers as the full path does; if the full path
    raises, plain_body declines or raises the same type. Returns what happened."""
    error = raised(lambda: full(event, fields, None))
    if error is None:
        return "accepted" if assert_plain_matches_full(event, fields, None) else "declined"
    answers: list[Answer | None] = []
    assert raised(lambda: answers.append(plain(event, dict(fields), None))) in (None, error)
    assert answers in ([], [None])
    return f"full path raises {error.__name__}; plain_body " + (
        "too" if not answers else "declines"
    )


@pytest.mark.parametrize("path", TEXT_PATHS)
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda text: text + "\ud800", id="lone-surrogate"),
        pytest.param(lambda text: "\udfff" + text, id="leading-low-surrogate"),
        pytest.param(Text, id="str-subclass"),
        pytest.param(Shouty, id="str-subclass-own-str"),
    ],
)
def test_odd_strings_make_the_paths_disagree_nowhere(path: str, make: Any) -> None:
    assert_no_disagreement(*with_text(path, make))


@settings(max_examples=200)
@given(
    path=st.sampled_from(TEXT_PATHS),
    odd=st.text(st.characters(categories=("Cs", "Ll", "Nd", "Zs", "Cc")), min_size=1, max_size=3),
    where=st.sampled_from(["start", "end", "whole"]),
    kind=st.sampled_from([str, Text, Shouty]),
)
def test_drawn_odd_strings_make_the_paths_disagree_nowhere(
    path: str, odd: str, where: str, kind: type[str]
) -> None:
    def make(text: str) -> str:
        new = {"start": odd + text, "end": text + odd, "whole": odd}[where]
        return kind(new)

    note_outcome(assert_no_disagreement(*with_text(path, make)))
