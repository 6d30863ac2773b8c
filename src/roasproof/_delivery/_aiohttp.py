"""The fast transport: aiohttp on the sender's own event loop.

Used automatically when aiohttp is installed (``pip install
'roasproof[fast]'``) and ``transport="auto"``. One ``ClientSession`` whose
connector holds at most ``max_in_flight`` keep-alive connections: about
110 us of client CPU per request against 400-600 us for httpx in threads
(docs/benchmarks.md), which is what makes one POST per event affordable.

The session lives on the loop of the sender thread, never on the
application's loop: delivery neither competes with request handling nor
depends on the application's loop staying alive.
"""

from __future__ import annotations

import os

import aiohttp

from roasproof._http import (
    KEEPALIVE_EXPIRY,
    Outcome,
    classify_exception,
    classify_response,
    request_headers,
)

__all__ = ["AiohttpTransport"]

_PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy"})


def _proxy_configured() -> bool:
    """Whether proxy variables are set: only then is aiohttp's ``trust_env`` worth its cost.

    With ``trust_env`` aiohttp looks proxies (and netrc) up in a thread for
    every request, which more than doubled the CPU per event in our benchmark.
    """
    return any(name.lower() in _PROXY_VARIABLES for name in os.environ)


class AiohttpTransport:
    """``aiohttp.ClientSession`` with a bounded keep-alive connector."""

    name = "aiohttp"

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
        self.max_in_flight = max(1, max_in_flight)
        # total bounds a slow-drip answer, so a request always ends before its row's lease
        self._timeout = aiohttp.ClientTimeout(
            total=connect_timeout + read_timeout,
            sock_connect=connect_timeout,
            sock_read=read_timeout,
        )
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.max_in_flight, keepalive_timeout=KEEPALIVE_EXPIRY
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, trust_env=_proxy_configured()
        )
        return self._session

    async def send(self, event_id: str, body: bytes) -> Outcome:
        """POST the body; the verdict, never an exception."""
        session = self._session or self._open()
        try:
            async with session.post(
                self._url,
                data=body,
                headers=request_headers(self._api_key, event_id),
                allow_redirects=False,
            ) as response:
                answer = await response.read()
                return classify_response(response.status, response.headers, answer, event_id)
        except Exception as exc:  # any failure to get an answer is transient
            return classify_exception(exc, event_id)

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
