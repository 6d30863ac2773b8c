"""A scriptable ingest API on loopback: a real HTTP/1.1 server, not a mock.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) to
receive the SDK's POSTs, and lets a test decide each answer: a scripted
sequence of replies, a rule (chaos: random 503s, dropped connections,
latency), or the default 202. It counts 202s per event_id, so a test can
assert that every event was accepted exactly once. ``down()``/``up()``
close and reopen the listening socket on the same port (an outage).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

DROP = "drop"  # a reply that closes the connection without answering


@dataclass(frozen=True)
class Reply:
    status: int = 202
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"status":"accepted","destinations":[{"destination":"meta","status":"queued"}]}'
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    event_id: str
    headers: dict[str, str]
    body: bytes


Rule = Callable[[Request], "Reply | str"]


class Sink:
    """The server; start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self) -> None:
        self.accepted: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.script: deque[Reply | str] = deque()
        self.rule: Rule | None = None
        self.latency = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Sink:
        self._thread.start()
        self.up()
        return self

    def stop(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(5)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)

    def queue(self, *replies: Reply | str) -> None:
        """Answer the next requests with these, in order (then the rule or 202)."""
        self.script.extend(replies)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                reply = self._choose(request)
                if reply == DROP:
                    return
                assert isinstance(reply, Reply)
                if reply.delay or self.latency:
                    await asyncio.sleep(reply.delay or self.latency)
                if reply.status == 202:
                    self.accepted[request.event_id] += 1
                writer.write(_response(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def _choose(self, request: Request) -> Reply | str:
        self.requests.append(request)
        if self.script:
            return self.script.popleft()
        if self.rule is not None:
            return self.rule(request)
        return Reply()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    head = await reader.readuntil(b"\r\n\r\n")
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    event_id = headers.get("idempotency-key") or json.loads(body).get("event_id", "")
    return Request(event_id, headers, body)


_REASONS = {
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _response(reply: Reply) -> bytes:
    head = [
        f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
        "Content-Type: application/json",
        f"Content-Length: {len(reply.body)}",
    ]
    head += [f"{name}: {value}" for name, value in reply.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body
