"""Chaos modes: rehearse outages against the emulator, deterministically.

:class:`ChaosMiddleware` is a pure ASGI wrapper around the emulator. It only
touches ``POST /api/v1/events`` (ingestion), so inspection keeps working while
delivery is being tortured. What it can do, all seeded by ``seed``:

* ``fail_first`` / ``fail_rate``: answer ``fail_status`` (500, 503, ...),
  optionally with ``Retry-After: retry_after``, without processing the event.
* ``latency``: wait that many seconds before handling each request.
* ``drop_rate``: close the connection with no response at all. With
  ``drop_after_processing`` the event is stored first and only the answer is
  lost: the case that makes idempotent retries necessary.
* ``down_after`` + ``down_for``: an outage window, in seconds from start; while
  down, requests are refused at once by closing the connection
  (``down_mode="close"``) or with a 503 (``down_mode="503"``).

Outcomes are drawn from ``random.Random(seed)`` in arrival order, so a
sequential client sees the same failures on every run. Tests can also flip an
outage on and off at run time with :meth:`Chaos.go_down` / :meth:`Chaos.come_up`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from roasproof.errors import ConfigurationError

__all__ = ["Chaos", "ChaosConfig", "ChaosMiddleware"]


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """What can go wrong, and how often. The default is a well-behaved server."""

    fail_first: int = 0
    fail_rate: float = 0.0
    fail_status: int = 503
    retry_after: float | None = None
    latency: float = 0.0
    drop_rate: float = 0.0
    drop_after_processing: bool = False
    down_after: float = 0.0
    down_for: float = 0.0
    down_mode: Literal["close", "503"] = "close"
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("fail_rate", "drop_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigurationError(f"chaos {name} must be between 0 and 1")
        if self.fail_rate + self.drop_rate > 1.0:
            raise ConfigurationError("chaos fail_rate + drop_rate must not exceed 1")
        if not 500 <= self.fail_status <= 599:
            raise ConfigurationError("chaos fail_status must be a 5xx status such as 500 or 503")
        for name in ("fail_first", "latency", "down_after", "down_for"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"chaos {name} must not be negative")
        if self.retry_after is not None and self.retry_after < 0:
            raise ConfigurationError("chaos retry_after must not be negative")
        if self.down_mode not in ("close", "503"):
            raise ConfigurationError('chaos down_mode must be "close" or "503"')


Outcome = Literal["ok", "fail", "drop", "down"]


class Chaos:
    """The chaos state of one emulator: config, seeded draws, outage window, counters."""

    def __init__(self, config: ChaosConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.counts = {"requests": 0, "failed": 0, "dropped": 0, "refused_down": 0}
        self.config = config or ChaosConfig()
        self.configure(self.config)

    def configure(self, config: ChaosConfig | None = None, **changes: Any) -> None:
        """Replace the configuration (or change some fields); restarts the seed and clock."""
        base = config or self.config
        with self._lock:
            self.config = dataclasses.replace(base, **changes)
            self._rng = random.Random(self.config.seed)
            start = time.monotonic() + self.config.down_after
            self._down: tuple[float, float] | None = (
                (start, start + self.config.down_for) if self.config.down_for else None
            )

    def go_down(self, seconds: float | None = None) -> None:
        """Start an outage now, for ``seconds`` (``None``: until :meth:`come_up`)."""
        now = time.monotonic()
        with self._lock:
            self._down = (now, now + seconds if seconds is not None else float("inf"))

    def come_up(self) -> None:
        """End any outage now."""
        with self._lock:
            self._down = None

    def is_down(self) -> bool:
        """Whether an outage is in progress."""
        down = self._down
        return down is not None and down[0] <= time.monotonic() < down[1]

    def draw(self) -> Outcome:
        """The fate of the next ingestion request, drawn in arrival order."""
        with self._lock:
            self.counts["requests"] += 1
            if self.is_down():
                self.counts["refused_down"] += 1
                return "down"
            roll = self._rng.random()
            config = self.config
            if self.counts["requests"] <= config.fail_first or (
                config.drop_rate <= roll < config.drop_rate + config.fail_rate
            ):
                self.counts["failed"] += 1
                return "fail"
            if roll < config.drop_rate:
                self.counts["dropped"] += 1
                return "drop"
            return "ok"


class ChaosMiddleware:
    """Pure ASGI middleware applying a :class:`Chaos` to ``POST /api/v1/events``."""

    def __init__(self, app: ASGIApp, chaos: Chaos, paths: tuple[str, ...] = ("/api/v1/events",)):
        self.app = app
        self.chaos = chaos
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        config = self.chaos.config
        outcome = self.chaos.draw()
        if outcome == "down":
            if config.down_mode == "close":
                await drop_connection(receive)
            else:
                await _error(send, 503, config.retry_after, "the emulator is down (chaos)")
            return
        if config.latency:
            await asyncio.sleep(config.latency)
        if outcome == "fail":
            await _error(send, config.fail_status, config.retry_after, "injected failure (chaos)")
        elif outcome == "drop" and config.drop_after_processing:
            await self.app(scope, receive, _discard)
            await drop_connection(receive)
        elif outcome == "drop":
            await drop_connection(receive)
        else:
            await self.app(scope, receive, send)


async def _discard(message: Any) -> None:
    """A ``send`` that loses the response: the event was processed, the answer never leaves."""


async def _error(send: Send, status: int, retry_after: float | None, message: str) -> None:
    body = json.dumps({"error": "unavailable", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", f"{retry_after:g}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def drop_connection(receive: Receive) -> None:
    """Close the client's connection without sending a single byte of response.

    ASGI has no "hang up" message, so under uvicorn this reaches the request
    cycle's transport (``receive`` is a bound method of it) and closes it, then
    waits for uvicorn to notice so it does not answer 500 on our behalf. Under
    any other server the exception makes the server abort the response its own
    way (the client sees an error either way).
    """
    cycle = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise ConnectionAbortedError("connection dropped by the emulator's chaos mode")
    transport.close()
    for _ in range(100):
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0)
