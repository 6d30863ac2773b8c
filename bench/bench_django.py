"""Django middleware overhead: requests per second with and without RoasproofMiddleware.

Measures the same trivial Django view four ways, in one run, alternating the
variants so that machine noise hits both alike:

- WSGI under gunicorn (1 sync worker, sync views) and ASGI under uvicorn (1 worker,
  async views, so the chain has no thread hop and the middleware's own cost shows);
- ``MIDDLEWARE = []`` (baseline) and ``MIDDLEWARE = [RoasproofMiddleware]``.

Load comes from ``wrk`` in a second process on loopback (server pinned to CPU 0,
wrk to CPU 1 when there are two). The ratio
``with / without`` is the number that matters (goal: at least 0.97); absolute
numbers depend on the machine. A second endpoint, ``/context``, asks for the
visitor context, so capture actually parses cookies, headers and the query
string (what a request that fires a conversion pays); reported for information.

    python bench/bench_django.py [--duration 5] [--rounds 3] [--json out.json]

This file is also the benchmarked app: the servers import it with
``BENCH_DJANGO_MIDDLEWARE`` set to ``with`` or ``without``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from _common import cpu_seconds, free_port, pinned, wait_http_ready

HERE = Path(__file__).resolve().parent
MIDDLEWARE = "roasproof_django.middleware.RoasproofMiddleware"
LANDING = "/?gclid=bench-gclid&fbclid=bench-fbclid"
COOKIE = "_sgnl_vid=bench-visitor; _fbp=fb.1.1700000000000.123"


def _configure_app() -> None:
    """Settings of the benchmarked app (run inside gunicorn/uvicorn)."""
    import django  # noqa: TID251
    from django.conf import settings  # noqa: TID251

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",  # noqa: S106 - benchmark only
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=["roasproof_django"],
        MIDDLEWARE=[MIDDLEWARE] if os.environ["BENCH_DJANGO_MIDDLEWARE"] == "with" else [],
        ROASPROOF={"ENABLED": False, "OUTBOX": ":memory:"},
        DATABASES={},
        USE_TZ=True,
        LOGGING_CONFIG=None,
    )
    django.setup()


def _urlpatterns() -> list[Any]:
    from django.http import HttpRequest, HttpResponse  # noqa: TID251
    from django.urls import path  # noqa: TID251

    from roasproof.context import current_context

    def trivial(request: HttpRequest) -> HttpResponse:
        return HttpResponse(b"ok", content_type="text/plain")

    def context(request: HttpRequest) -> HttpResponse:
        found = current_context()
        return HttpResponse(b"ok" if found is None or found.visitor_id else b"no")

    async def async_trivial(request: HttpRequest) -> HttpResponse:
        return trivial(request)

    async def async_context(request: HttpRequest) -> HttpResponse:
        return context(request)

    if os.environ.get("BENCH_DJANGO_SERVER") == "asgi":  # async views: no thread hop at all
        return [path("", async_trivial), path("context", async_context)]
    return [path("", trivial), path("context", context)]


if os.environ.get("BENCH_DJANGO_MIDDLEWARE"):
    _configure_app()
    urlpatterns = _urlpatterns()
    from django.core.asgi import get_asgi_application  # noqa: TID251
    from django.core.wsgi import get_wsgi_application  # noqa: TID251

    wsgi_application = get_wsgi_application()
    asgi_application = get_asgi_application()


def _server_command(kind: str, port: int) -> list[str]:
    python = sys.executable
    if kind == "wsgi":
        return [
            python,
            "-m",
            "gunicorn",
            "--chdir",
            str(HERE),
            "--workers",
            "1",
            "--no-control-socket",  # two servers run side by side
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench_django:wsgi_application",
        ]
    return [
        python,
        "-m",
        "uvicorn",
        "--app-dir",
        str(HERE),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--lifespan",
        "off",
        "bench_django:asgi_application",
    ]


def _wrk(port: int, path: str, duration: float, connections: int, pid: int) -> dict[str, float]:
    """Requests per second, and the server's CPU microseconds per request."""
    cpu_before = cpu_seconds(pid)
    output = subprocess.run(
        pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "-H",
                f"Cookie: {COOKIE}",
                "-H",
                "User-Agent: Mozilla/5.0 (bench)",
                f"http://127.0.0.1:{port}{path}",
            ],
            1,
        ),
        check=True,
        capture_output=True,
        text=True,
        timeout=duration + 30,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    count = re.search(r"(\d+) requests in", output)
    if (
        not rate
        or not count
        or int(count.group(1)) == 0
        or "Non-2xx" in output
        or "errors:" in output
    ):
        raise RuntimeError(f"wrk failed or saw errors:\n{output}")
    return {"rps": float(rate.group(1)), "cpu_us": cpu / int(count.group(1)) * 1e6}


def _start(kind: str, variant: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "BENCH_DJANGO_MIDDLEWARE": variant,
        "BENCH_DJANGO_SERVER": kind,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    process = subprocess.Popen(pinned(_server_command(kind, port), 0), env=env, cwd=HERE)
    wait_http_ready(port, process)
    return process, port


def run(duration: float, rounds: int, connections: int) -> dict[str, Any]:
    """Both variants of a server run side by side; wrk alternates between them.

    Each round measures ``without`` and ``with`` back to back (the order flips
    every round), so a change in machine load hits both; the ratios reported
    are medians of the per-round ratios. On a busy machine the CPU time per
    request (``cpu_ratio``: without / with, so 1.0 means no overhead) is the
    steadier of the two, since other processes' load does not add to it.
    """
    endpoints = (("trivial", LANDING), ("context", "/context" + LANDING[1:]))
    results: dict[str, Any] = {}
    for kind in ("wsgi", "asgi"):
        servers = {variant: _start(kind, variant) for variant in ("without", "with")}
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            variant: {name: [] for name, _ in endpoints} for variant in servers
        }
        try:
            for process, port in servers.values():
                _wrk(port, LANDING, 1.0, connections, process.pid)  # warm-up
            for round_number in range(rounds):
                order = ["without", "with"] if round_number % 2 == 0 else ["with", "without"]
                for name, path in endpoints:
                    for variant in order:
                        process, port = servers[variant]
                        samples[variant][name].append(
                            _wrk(port, path, duration, connections, process.pid)
                        )
        finally:
            for process, _port in servers.values():
                process.terminate()
                process.wait(timeout=10)
        results[kind] = _summarise(samples)
    return results


def _summarise(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {"samples": samples}
    for name in samples["with"]:
        pairs = list(zip(samples["without"][name], samples["with"][name], strict=True))
        summary[name] = {
            "rps_without": statistics.median(b["rps"] for b, _ in pairs),
            "rps_with": statistics.median(w["rps"] for _, w in pairs),
            "cpu_us_without": statistics.median(b["cpu_us"] for b, _ in pairs),
            "cpu_us_with": statistics.median(w["cpu_us"] for _, w in pairs),
            "rps_ratio": statistics.median(w["rps"] / b["rps"] for b, w in pairs),
            "cpu_ratio": statistics.median(b["cpu_us"] / w["cpu_us"] for b, w in pairs),
        }
    return summary


def micro(number: int = 20000) -> dict[str, float]:
    """In-process cost in microseconds: what the middleware adds, what capture adds on use."""
    import timeit

    from django.test import RequestFactory  # noqa: TID251
    from roasproof_django.middleware import RoasproofMiddleware

    from roasproof.context import current_context

    request = RequestFactory().get(
        LANDING, HTTP_COOKIE=COOKIE, HTTP_USER_AGENT="Mozilla/5.0 (bench)"
    )
    bare = RoasproofMiddleware(lambda request: None)  # type: ignore[arg-type,return-value]

    def asking(request: object) -> None:
        current_context()

    capturing = RoasproofMiddleware(asking)  # type: ignore[arg-type]
    return {
        "middleware_us": timeit.timeit(lambda: bare(request), number=number) / number * 1e6,
        "middleware_and_capture_us": (
            timeit.timeit(lambda: capturing(request), number=number) / number * 1e6
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=6, help="alternations per server")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    os.environ["BENCH_DJANGO_MIDDLEWARE"] = "without"
    _configure_app()
    results: dict[str, Any] = {"micro": micro()}
    print(
        f"in process: the middleware adds {results['micro']['middleware_us']:.1f} us per request;"
        f" with capture (a conversion fired) {results['micro']['middleware_and_capture_us']:.1f} us"
    )
    results.update(run(args.duration, args.rounds, args.connections))
    for kind, label in (("wsgi", "WSGI, gunicorn 1 sync worker"), ("asgi", "ASGI, uvicorn")):
        print(f"{label}:")
        for name in ("trivial", "context"):
            found = results[kind][name]
            print(
                f"  {name:8} rps {found['rps_without']:7.0f} -> {found['rps_with']:7.0f}"
                f" (ratio {found['rps_ratio']:.3f})   CPU/request"
                f" {found['cpu_us_without']:6.0f} -> {found['cpu_us_with']:6.0f} us"
                f" (ratio {found['cpu_ratio']:.3f})"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
