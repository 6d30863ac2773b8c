"""Serving the emulator: in the foreground (the CLI) or on a background thread (tests, demo).

:func:`run_in_thread` is what tests use to talk to a *real* HTTP server on
loopback: it binds the socket itself (so ``port=0`` gives a free port with no
race), starts uvicorn on a daemon thread, waits until it accepts connections
and returns a :class:`RunningServer`, which is at once a ``(url, stop)`` tuple
and a context manager::

    with run_in_thread(create_app()) as server:
        httpx.post(server.url + "/api/v1/events", ...)

    url, stop = run_in_thread(app)   # and later: stop()

Signal handlers are left alone (uvicorn only installs them on the main
thread), logging configuration is not touched, and ``stop()`` is idempotent.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

import uvicorn
from starlette.types import ASGIApp

__all__ = ["RunningServer", "run_in_thread", "serve"]


class RunningServer(NamedTuple):
    """A server on a background thread: ``url`` (no trailing slash) and ``stop()``."""

    url: str
    stop: Callable[[], None]

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _config(app: ASGIApp, **options: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        timeout_graceful_shutdown=2,
        **options,  # type: ignore[arg-type]
    )


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def run_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, startup_timeout: float = 10.0
) -> RunningServer:
    """Serve ``app`` on ``host:port`` from a daemon thread; returns once it is listening.

    ``port=0`` picks a free port. Raises :class:`RuntimeError` when the server
    does not start within ``startup_timeout`` seconds.
    """
    sock = _bind(host, port)
    server = uvicorn.Server(_config(app, log_config=None, access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="roasproof-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()
            raise RuntimeError(f"the server on {host}:{port} did not start")
        time.sleep(0.005)
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    lock = threading.Lock()

    def stop() -> None:
        with lock:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    return RunningServer(f"http://{shown}:{bound_port}", stop)


def serve(app: ASGIApp, host: str, port: int) -> None:
    """Serve ``app`` in the foreground until Ctrl+C (the ``roasproof emulator`` command).

    uvicorn shuts down gracefully on Ctrl+C, then re-raises the signal; that
    second ``KeyboardInterrupt`` is the normal way out, not an error.
    """
    try:
        uvicorn.Server(_config(app, host=host, port=port, log_level="info")).run()
    except KeyboardInterrupt:
        pass
