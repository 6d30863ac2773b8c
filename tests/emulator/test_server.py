"""run_in_thread: a real server on a free loopback port, for tests and the demo."""

from __future__ import annotations

import socket

import httpx
import pytest

from roasproof.emulator import RunningServer, create_app, run_in_thread


def test_the_server_is_a_context_manager_and_a_url_stop_pair() -> None:
    app = create_app()
    with run_in_thread(app) as server:
        assert isinstance(server, RunningServer)
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(server.url + "/api/v1/health").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/v1/health")
    url, stop = run_in_thread(app)
    assert httpx.get(url + "/api/v1/health").status_code == 200
    stop()
    stop()  # idempotent


def test_a_busy_port_raises_oserror() -> None:
    with run_in_thread(create_app()) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"):
            run_in_thread(create_app(), port=port)


def test_ipv6_loopback_urls_are_bracketed() -> None:
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    finally:
        probe.close()
    with run_in_thread(create_app(), host="::1") as server:
        assert server.url.startswith("http://[::1]:")
        assert httpx.get(server.url + "/api/v1/health").status_code == 200


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_server_that_cannot_start_raises_runtime_error() -> None:
    # uvicorn cannot load an app from a module that does not exist: it gives up
    # before listening, and run_in_thread says so instead of hanging.
    with pytest.raises(RuntimeError, match="did not start"):
        run_in_thread("roasproof_no_such_module:app")  # type: ignore[arg-type]
