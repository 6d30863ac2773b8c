"""A local implementation of the roasproof ingest API, for trying the SDK and for tests.

Install it with ``pip install 'roasproof[emulator]'`` (Starlette + uvicorn).
It implements the contract of the vendor's ingest guide: Bearer keys (401),
JSON-object bodies (400), validation naming the field (422), deduplication by
``event_id``, PII hashed on arrival with the SDK's own normalizer (no
plaintext is ever stored), the ``visitor_id`` join with the tracking script
(``GET /t.js`` + ``POST /api/v1/collect``), per-destination views for Meta,
Google and TikTok with match keys, plan billing with metered overage and 429s,
and chaos modes to rehearse outages. See ``docs/emulator.md``.

From the command line::

    roasproof emulator --port 8765 --api-key rp_test_key

In-process, e.g. in a test (``run_in_thread`` binds a free loopback port)::

    from roasproof.emulator import create_app, run_in_thread

    app = create_app(api_keys=["rp_test_key"], custom_events={"quote_request": True})
    with run_in_thread(app) as server:          # server.url == "http://127.0.0.1:<port>"
        client = roasproof.Client("rp_test_key", endpoint=server.url)
        client.send("purchase", value=49, currency="EUR")
        received = app.state.emulator.store.events()   # or GET {server.url}/api/v1/events

    # also: url, stop = run_in_thread(app); ...; stop()

Outages, deterministically::

    app = create_app(chaos=ChaosConfig(fail_first=2, fail_status=503, retry_after=1))
    app.state.chaos.go_down(5)      # refuse connections for 5 seconds from now
    app.state.chaos.come_up()

``create_app`` arguments: ``api_keys`` (default ``[DEFAULT_API_KEY]``),
``destinations`` (default meta, google, tiktok), ``custom_events``,
``plan_cap`` (default 1000), ``subscription`` (``"active"``, ``"trial"``
(default) or ``"none"``), ``chaos``, ``db_path`` (SQLite; memory otherwise),
``seed`` (for the chaos draws).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra installed
    raise ImportError(
        "the roasproof emulator needs Starlette and uvicorn: pip install 'roasproof[emulator]'"
    ) from exc

from roasproof.emulator.app import create_app
from roasproof.emulator.billing import Plan
from roasproof.emulator.chaos import Chaos, ChaosConfig
from roasproof.emulator.destinations import DESTINATIONS
from roasproof.emulator.ingest import DEFAULT_API_KEY, Emulator
from roasproof.emulator.server import RunningServer, run_in_thread, serve
from roasproof.emulator.store import Store

__all__ = [
    "DEFAULT_API_KEY",
    "DESTINATIONS",
    "Chaos",
    "ChaosConfig",
    "Emulator",
    "Plan",
    "RunningServer",
    "Store",
    "create_app",
    "run_in_thread",
    "serve",
]
