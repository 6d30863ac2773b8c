"""Fixtures for the Starlette/FastAPI integration: clean env, no context, no default client."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.types import ASGIApp

import roasproof
from roasproof.emulator import run_in_thread


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``ROASPROOF_*`` variable leaks in; the default outbox lives under the test's tmp dir."""
    for name in list(os.environ):
        if name.startswith("ROASPROOF_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(autouse=True)
def _clean_roasproof_state() -> Iterator[None]:
    """Each test starts outside any request and without a default client."""
    roasproof.close(timeout=0)
    assert roasproof.current_context() is None
    try:
        yield
    finally:
        roasproof.close(timeout=0)


@pytest.fixture
def serve() -> Iterator[Callable[[ASGIApp], str]]:
    """Serve an ASGI app with uvicorn on a loopback port from a thread; returns its URL."""
    stops: list[Callable[[], None]] = []

    def start(app: ASGIApp) -> str:
        server = run_in_thread(app)
        stops.append(server.stop)
        return server.url

    yield start
    for stop in stops:
        stop()
