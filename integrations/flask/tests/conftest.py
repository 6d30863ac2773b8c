"""Fixtures for the Flask integration: a clean environment, no bound context, no default client."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from werkzeug.serving import BaseWSGIServer, make_server

import roasproof

if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication


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
def serve() -> Iterator[Callable[[WSGIApplication], str]]:
    """Serve a WSGI app from a real threaded server on loopback; returns its base URL."""
    servers: list[BaseWSGIServer] = []

    def start(app: WSGIApplication) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
