"""Fixtures for the emulator's contract tests: a real emulator on a loopback port.

``start_emulator(**create_app_kwargs)`` starts one (stopped at teardown) and
returns a :class:`Running` with the app, its URL and an httpx client bound to
it; ``emulator`` is a default one. Every test talks HTTP to it, as the SDK does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from roasproof.emulator import DEFAULT_API_KEY, ChaosConfig, Emulator, create_app, run_in_thread

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}


@dataclass
class Running:
    app: Starlette
    url: str
    http: httpx.Client

    @property
    def emulator(self) -> Emulator:
        emulator: Emulator = self.app.state.emulator
        return emulator

    def post(self, body: Any, *, key: str | None = DEFAULT_API_KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.http.post("/api/v1/events", json=body, headers=headers)

    def events(self, **params: str) -> list[dict[str, Any]]:
        answer = self.http.get("/api/v1/events", params=params)
        assert answer.status_code == 200
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def usage(self) -> dict[str, Any]:
        usage: dict[str, Any] = self.http.get("/api/v1/usage").json()
        return usage


StartEmulator = Callable[..., Running]


def _starter() -> tuple[StartEmulator, Callable[[], None]]:
    stops: list[Callable[[], None]] = []

    def start(**kwargs: Any) -> Running:
        app = create_app(**kwargs)
        server = run_in_thread(app)
        http = httpx.Client(base_url=server.url, timeout=10)
        stops.append(server.stop)
        stops.append(http.close)
        return Running(app, server.url, http)

    def stop_all() -> None:
        for stop in reversed(stops):
            stop()

    return start, stop_all


@pytest.fixture
def start_emulator() -> Iterator[StartEmulator]:
    """Start emulators configured with ``create_app`` arguments; all stopped at teardown."""
    start, stop_all = _starter()
    yield start
    stop_all()


@pytest.fixture(scope="module")
def _shared_emulator() -> Iterator[Running]:
    start, stop_all = _starter()
    yield start()
    stop_all()


@pytest.fixture
def emulator(_shared_emulator: Running) -> Running:
    """A default emulator, shared by the tests of a module and emptied before each."""
    _shared_emulator.emulator.reset()
    _shared_emulator.app.state.chaos.configure(ChaosConfig())
    return _shared_emulator
