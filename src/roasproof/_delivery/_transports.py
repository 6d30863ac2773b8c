"""How the sender POSTs one event: a pluggable transport, httpx always available.

The API has no batch endpoint, so the client CPU spent per request bounds
throughput. Measured on 2 cores (docs/benchmarks.md): aiohttp costs about a
fifth of the CPU of httpx per request, and one large ``httpx.AsyncClient``
pool collapses under concurrency (encode/httpx#3215). Hence:

* :class:`HttpxTransport`: a few daemon threads, each with its own
  keep-alive ``httpx.Client`` (no shared pool lock), fed from the sender's
  event loop. Always available.
* :class:`~roasproof._delivery._aiohttp.AiohttpTransport`: one
  ``ClientSession`` on the sender's own loop, used automatically when
  aiohttp is installed (``pip install 'roasproof[fast]'``).

A transport never raises for a failed request: it returns the verdict of
:func:`roasproof._http.classify_response` / ``classify_exception``, the same
classification ``Client.send()`` uses.
"""

from __future__ import annotations

import asyncio
import importlib.util
import queue
import threading
from collections.abc import Callable
from typing import Protocol

import httpx

from roasproof._http import (
    KEEPALIVE_EXPIRY,
    Outcome,
    classify_exception,
    classify_response,
    events_url,
    request_headers,
)

__all__ = [
    "HTTPX_MAX_THREADS",
    "HttpxTransport",
    "Transport",
    "TransportFactory",
    "choose_transport",
]

#: More threads than this cost more in GIL contention than they gain in overlap.
HTTPX_MAX_THREADS = 16


class Transport(Protocol):
    """Sends one event; lives on the sender's event loop."""

    name: str
    #: the most requests this transport can usefully keep in flight
    max_in_flight: int

    async def send(self, event_id: str, body: bytes) -> Outcome:
        """POST the body; the verdict, never an exception."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...


TransportFactory = Callable[[], Transport]


def aiohttp_available() -> bool:
    """Whether the fast transport can be used."""
    return importlib.util.find_spec("aiohttp") is not None


def choose_transport(
    kind: str,
    endpoint: str,
    api_key: str,
    max_in_flight: int,
    connect_timeout: float,
    read_timeout: float,
) -> TransportFactory:
    """The factory for ``transport`` = auto (aiohttp when installed) / httpx / aiohttp."""
    url = events_url(endpoint)
    if kind == "aiohttp" or (kind == "auto" and aiohttp_available()):
        from roasproof._delivery._aiohttp import AiohttpTransport

        return lambda: AiohttpTransport(url, api_key, max_in_flight, connect_timeout, read_timeout)
    return lambda: HttpxTransport(url, api_key, max_in_flight, connect_timeout, read_timeout)


_Job = tuple[str, bytes, "asyncio.Future[Outcome]", asyncio.AbstractEventLoop]


class HttpxTransport:
    """Sync ``httpx.Client`` per worker thread; requests handed over from the event loop."""

    name = "httpx"

    def __init__(
        self,
        url: str,
        api_key: str,
        max_in_flight: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self._url = url
        self._api_key = api_key
        self.max_in_flight = max(1, min(max_in_flight, HTTPX_MAX_THREADS))
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        )
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._lock = threading.Lock()

    async def send(self, event_id: str, body: bytes) -> Outcome:
        """Queue the POST for a worker thread and await its verdict."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        with self._lock:
            self._busy += 1
            if self._busy > len(self._threads) and len(self._threads) < self.max_in_flight:
                self._start_worker()
        self._jobs.put((event_id, body, future, loop))
        try:
            return await future
        finally:
            with self._lock:
                self._busy -= 1

    def _start_worker(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"roasproof-httpx-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        client = httpx.Client(
            timeout=self._timeout,
            limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_EXPIRY
            ),
            follow_redirects=False,
        )
        with client:
            while (job := self._jobs.get()) is not None:
                event_id, body, future, loop = job
                outcome = self.post(client, event_id, body)
                try:
                    loop.call_soon_threadsafe(_resolve, future, outcome)
                except RuntimeError:  # the sender's loop is gone (shutdown): nothing to tell
                    pass

    def post(self, client: httpx.Client, event_id: str, body: bytes) -> Outcome:
        """One POST with ``client``; the verdict."""
        try:
            response = client.post(
                self._url, content=body, headers=request_headers(self._api_key, event_id)
            )
        except Exception as exc:  # any failure to get an answer is transient
            return classify_exception(exc, event_id)
        return classify_response(response.status_code, response.headers, response.content, event_id)

    async def aclose(self) -> None:
        """Tell every worker to close its client and stop (they are daemons: no join)."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)
