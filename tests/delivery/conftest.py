"""Fixtures for the delivery engine: a real loopback sink, fast timings, engines that close."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from roasproof._config import Settings
from roasproof._delivery import Engine, create_delivery

from .sink import Sink
from .support import API_KEY, FAST


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def outbox_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.sqlite3"


@pytest.fixture
def make_settings(sink: Sink, outbox_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        options: dict[str, Any] = {
            "endpoint": sink.url,
            "outbox": outbox_path,
            "max_event_age": 3600.0,
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
        }
        api_key = overrides.pop("api_key", API_KEY)
        options.update(overrides)
        return Settings.resolve(api_key, **options)

    return make


@pytest.fixture
def make_engine(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def make(settings: Settings | None = None, **kwargs: Any) -> Engine:
        kwargs.setdefault("tuning", FAST)
        engine = create_delivery(settings or make_settings(), **kwargs)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close(timeout=1.0)
