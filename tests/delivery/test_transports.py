"""The httpx and aiohttp transports against the loopback sink, and how one is chosen."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine
from roasproof._delivery._transports import (
    HTTPX_MAX_THREADS,
    HttpxTransport,
    Transport,
    choose_transport,
)
from roasproof._http import DeliveryResult, Outcome, events_url
from roasproof.errors import EventRejected, TransientError

from .sink import DROP, Reply, Sink
from .support import API_KEY, body_for

MakeEngine = Callable[..., Engine]
aiohttp = pytest.importorskip("aiohttp")  # the fast transport is an extra: roasproof[fast]

from roasproof._delivery._aiohttp import AiohttpTransport, _proxy_configured  # noqa: E402

TRANSPORTS: dict[str, Callable[..., Transport]] = {
    "httpx": HttpxTransport,
    "aiohttp": AiohttpTransport,
}


@pytest.mark.parametrize("name", list(TRANSPORTS))
async def test_a_transport_returns_the_verdict_of_each_answer(sink: Sink, name: str) -> None:
    transport = TRANSPORTS[name](events_url(sink.url), API_KEY, 4, 1.0, 2.0)
    sink.queue(Reply(), Reply(422, body=b'{"field":"value","message":"negative"}'), DROP)
    try:
        accepted = await transport.send("e1", body_for("e1"))
        rejected = await transport.send("e2", body_for("e2"))
        dropped = await transport.send("e3", body_for("e3"))
    finally:
        await transport.aclose()
    assert isinstance(accepted, DeliveryResult)
    assert accepted.status_code == 202
    assert isinstance(rejected, EventRejected)
    assert rejected.field == "value"
    assert isinstance(dropped, TransientError)
    assert dropped.status_code is None
    assert sink.requests[0].headers["idempotency-key"] == "e1"
    assert sink.requests[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize("name", list(TRANSPORTS))
async def test_an_unreachable_api_is_a_transient_error(sink: Sink, name: str) -> None:
    sink.down()
    transport = TRANSPORTS[name](events_url(sink.url), API_KEY, 4, 1.0, 2.0)
    try:
        outcome: Outcome = await transport.send("e1", b"{}")
    finally:
        await transport.aclose()
    assert isinstance(outcome, TransientError)
    assert "could not reach" in str(outcome)


def test_the_httpx_transport_caps_its_threads() -> None:
    assert HttpxTransport("http://x", API_KEY, 1000, 1, 1).max_in_flight == HTTPX_MAX_THREADS
    assert HttpxTransport("http://x", API_KEY, 2, 1, 1).max_in_flight == 2


def test_auto_picks_aiohttp_when_installed_and_httpx_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def kind(choice: str) -> str:
        return choose_transport(choice, "http://127.0.0.1:1", API_KEY, 8, 1, 1)().name

    assert kind("auto") == "aiohttp"
    assert kind("httpx") == "httpx"
    assert kind("aiohttp") == "aiohttp"
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # as if not installed
    assert kind("auto") == "httpx"


def test_aiohttp_reads_proxy_settings_only_when_some_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert _proxy_configured() is False
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert _proxy_configured() is True


@pytest.mark.parametrize("name", list(TRANSPORTS))
def test_the_engine_delivers_with_either_transport(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], name: str
) -> None:
    engine = make_engine(make_settings(transport=name, max_in_flight=8))
    sink.queue(Reply(503))
    for n in range(40):
        engine.enqueue(f"{name}_{n}", "lead", body_for(f"{name}_{n}"))
    assert engine.flush(10) is True
    assert sink.accepted == {f"{name}_{n}": 1 for n in range(40)}


class _Exploding(HttpxTransport):
    """A transport with a bug for one event: the engine must retry, not lose it."""

    failed = False

    async def send(self, event_id: str, body: bytes) -> Outcome:
        if event_id == "boom" and not _Exploding.failed:
            _Exploding.failed = True
            raise RuntimeError("transport bug")
        return await super().send(event_id, body)


def test_a_transport_that_raises_gets_the_event_retried(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine(
        transport_factory=lambda: _Exploding(events_url(sink.url), API_KEY, 4, 1.0, 2.0)
    )
    engine.enqueue("boom", "lead", body_for("boom"))
    assert engine.flush(10) is True
    assert sink.accepted == {"boom": 1}
    assert engine.stats()["retried"] == 1
