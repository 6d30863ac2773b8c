"""Fixtures of the real-browser end-to-end test: an emulator, a shop server, headless Chromium.

Chromium is Debian's ``chromium`` package at ``/usr/bin/chromium`` (``.ci/run`` installs
it when missing), driven through Playwright's Python API with ``executable_path``:
Playwright never downloads a browser here. Each shop runs in its own server process
configured only through ``ROASPROOF_*`` environment variables, like production.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from roasproof.emulator.app import create_app
from roasproof.emulator.ingest import DEFAULT_API_KEY
from roasproof.emulator.server import RunningServer, run_in_thread

CHROMIUM = os.environ.get("ROASPROOF_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def emulator() -> Iterator[RunningServer]:
    """A fresh emulator per shop: each test sees only its own shop's conversions."""
    app = create_app()
    with run_in_thread(app) as server:
        yield server
    app.state.emulator.store.close()  # its in-memory SQLite would warn on Python 3.13


@pytest.fixture
def shop_env(emulator: RunningServer, tmp_path: Path) -> dict[str, str]:
    """What a shop process gets: the emulator as endpoint, its own outbox, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROASPROOF_")}
    env.update(
        ROASPROOF_API_KEY=DEFAULT_API_KEY,
        ROASPROOF_ENDPOINT=emulator.url,
        ROASPROOF_OUTBOX=str(tmp_path / "outbox.sqlite3"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser_context(playwright_driver: object, tmp_path: Path) -> Iterator[object]:
    """A headless Chromium with a fresh user-data dir (no cookies from a previous shop)."""
    profile = tmp_path / "chromium-profile"
    context = playwright_driver.chromium.launch_persistent_context(  # type: ignore[attr-defined]
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1280, "height": 420},
    )
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)
