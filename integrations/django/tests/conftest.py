"""Every test runs with roasproof's capturing client, a clean environment and no bound context."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.conf import settings
from roasproof.context import current_context
from roasproof.testing import CapturedEvents


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without the PostgreSQL alias (server down, outside CI) its tests skip, with the reason."""
    if "postgres" in settings.DATABASES:
        return
    skip = pytest.mark.skip(reason="PostgreSQL on 127.0.0.1:5432 is down (under CI=true: fails)")
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("ROASPROOF_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def events(_clean_environment: None, roasproof_events: CapturedEvents) -> Iterator[CapturedEvents]:
    assert current_context() is None
    yield roasproof_events
    assert current_context() is None, "a request context leaked out of the test"
