"""Fixtures every test gets: a clean ``ROASPROOF_*`` environment and no bound request context.

Kept small and generic on purpose; module-specific fixtures live in their test files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from roasproof import context

# Shared 2-core CI machines are slow and noisy: no per-example deadline there, and a fixed
# seed so a property test fails the same way every time it fails. Locally, explore freely.
settings.register_profile("ci", deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``ROASPROOF_*`` variable leaks in from the shell, and the default outbox path
    (under ``$XDG_STATE_HOME``) points into the test's temporary directory, never ``~``."""
    for name in list(os.environ):
        if name.startswith("ROASPROOF_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


@pytest.fixture(autouse=True)
def _clean_request_context() -> Iterator[None]:
    """Each test starts outside any request, whatever the previous test bound."""
    token = context._current.set(None)
    try:
        yield
    finally:
        context._current.reset(token)
