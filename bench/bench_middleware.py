"""Flask and Starlette middleware overhead: requests per second with and without roasproof.

Measures one trivial endpoint four ways, in one run. Both variants of a
framework are served at once and short loads alternate between them, round by
round, in random order, so that machine noise hits both alike:

- Flask under gunicorn (1 sync worker), bare app versus ``Roasproof(app)``;
- Starlette under uvicorn (1 worker, async endpoint, so nothing hides the
  middleware's cost), bare app versus ``RoasproofMiddleware``.

Load comes from ``wrk`` in a second process on loopback (server pinned to one
CPU, wrk to another when there are two). Every request carries the cookies and
click ids of a real visitor. Two numbers per variant: requests per second, and
the server's CPU time per request (read from /proc; steadier than throughput
on a shared machine). The ratio ``with / without`` is what matters (goal: at
least 0.97). On a busy machine both swing by tens of percent, so the apps are
also called in-process, with no server: the fastest of many alternating batches
gives the middleware's cost in a hot loop, in microseconds. That is a lower
bound: a served request runs with cold caches and pays several times more.
``/context`` asks for the visitor context, so capture really
parses cookies, headers and the query string: what a request that fires a
conversion pays; reported for information.

    python bench/bench_middleware.py [--duration 3] [--rounds 10] [--json out.json]

This file is also the benchmarked app: the servers import it with
``BENCH_MIDDLEWARE`` set to ``with`` or ``without``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _common import cpu_seconds, free_port, pinned, wait_http_ready

HERE = Path(__file__).resolve().parent
PATH = "/?gclid=bench-gclid&fbclid=bench-fbclid"
COOKIE = "_sgnl_vid=bench-visitor; _fbp=fb.1.1700000000000.123"
KINDS = ("flask", "starlette")
VARIANTS = ("without", "with")
Sample = dict[str, dict[str, float]]  # endpoint -> {"rps": ..., "cpu_us": ...}


def _flask_app(with_roasproof: bool) -> Any:
    from flask import Flask  # noqa: TID251 - the benchmarked app

    from roasproof import current_context

    app = Flask("bench")

    @app.get("/")
    def trivial() -> str:
        return "ok"

    @app.get("/context")
    def context() -> str:
        found = current_context()
        return "ok" if found is None or found.visitor_id else "no"

    if with_roasproof:
        from roasproof_flask import Roasproof

        Roasproof(app)
    return app


def _starlette_app(with_roasproof: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from roasproof import current_context

    async def trivial(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def context(request: Request) -> PlainTextResponse:
        found = current_context()
        return PlainTextResponse("ok" if found is None or found.visitor_id else "no")

    from roasproof_starlette import RoasproofMiddleware

    middleware = [Middleware(RoasproofMiddleware)] if with_roasproof else []
    routes = [Route("/", trivial), Route("/context", context)]
    return Starlette(routes=routes, middleware=middleware)


if os.environ.get("BENCH_MIDDLEWARE") in VARIANTS:
    _with = os.environ["BENCH_MIDDLEWARE"] == "with"
    if os.environ.get("BENCH_KIND") == "flask":
        flask_app = _flask_app(_with)
    else:
        starlette_app = _starlette_app(_with)


def _server_command(kind: str, port: int) -> list[str]:
    python = sys.executable
    if kind == "flask":
        return [
            *(python, "-m", "gunicorn", "--chdir", str(HERE), "--workers", "1"),
            "--no-control-socket",  # several gunicorns at once must not share one
            *("--bind", f"127.0.0.1:{port}", "--log-level", "warning"),
            "bench_middleware:flask_app",
        ]
    return [
        *(python, "-m", "uvicorn", "--app-dir", str(HERE), "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning", "--no-access-log"),
        *("--lifespan", "off", "bench_middleware:starlette_app"),
    ]


def _wrk(port: int, path: str, duration: float, pid: int, attempts: int = 3) -> dict[str, float]:
    """Requests per second, and the server's CPU microseconds per request.

    A run that completes no request (a gunicorn worker being restarted on a starved
    machine) is retried, up to ``attempts`` times.
    """
    command = [
        *("wrk", "-t1", "-c4", f"-d{max(1, round(duration))}s"),
        *("-H", f"Cookie: {COOKIE}", "-H", "User-Agent: Mozilla/5.0 (bench)"),
        f"http://127.0.0.1:{port}{path}",
    ]
    for _ in range(attempts):
        cpu_before = cpu_seconds(pid)
        output = subprocess.run(
            pinned(command, 1), check=True, capture_output=True, text=True, timeout=duration + 30
        ).stdout
        cpu = cpu_seconds(pid) - cpu_before
        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        count = re.search(r"(\d+) requests in", output)
        if rate is None or count is None or "Non-2xx" in output:
            raise RuntimeError(f"wrk failed or saw errors:\n{output}")
        if int(count.group(1)):
            return {"rps": float(rate.group(1)), "cpu_us": cpu / int(count.group(1)) * 1e6}
        time.sleep(1)
    raise RuntimeError(f"no request completed in {attempts} attempts:\n{output}")


@contextmanager
def _server(kind: str, variant: str) -> Iterator[tuple[int, int]]:
    """A server for ``kind``/``variant``, answering and warmed up: ``(port, pid)``."""
    port = free_port()
    env = {**os.environ, "BENCH_MIDDLEWARE": variant, "BENCH_KIND": kind}
    env.update(ROASPROOF_ENABLED="false", ROASPROOF_OUTBOX=":memory:")
    command = pinned(_server_command(kind, port), 0)
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        wait_http_ready(port, process)
        _wrk(port, PATH, 1, process.pid)  # warm-up
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _measure_kind(kind: str, rounds: int, duration: float) -> dict[str, list[Sample]]:
    """Both variants' servers stay up; short loads alternate between them, round by round."""
    runs: dict[str, list[Sample]] = {variant: [] for variant in VARIANTS}
    first, second = random.sample(VARIANTS, 2)  # the first server started runs a little slower
    with _server(kind, first) as one, _server(kind, second) as two:
        servers = {first: one, second: two}
        for _ in range(rounds):
            order = list(VARIANTS)
            random.shuffle(order)  # neither variant always goes first
            for variant in order:
                port, pid = servers[variant]
                runs[variant].append(
                    {
                        "trivial": _wrk(port, PATH, duration, pid),
                        "context": _wrk(port, "/context" + PATH[1:], duration / 2, pid),
                    }
                )
    return runs


def _inprocess(kind: str, batches: int = 40, size: int = 500) -> dict[str, float]:
    """Microseconds per request with no server at all: the app called directly, the fastest
    of ``batches`` alternating batches (the minimum is what noise cannot inflate)."""
    import asyncio

    from werkzeug.test import EnvironBuilder

    query, cookie = PATH[2:], [("Cookie", COOKIE)]
    environ = EnvironBuilder(path="/", query_string=query, headers=cookie).get_environ()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": query.encode(),
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "headers": [(b"cookie", COOKIE.encode())],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    def start_response(*args: Any) -> None:
        return None

    async def run_asgi(app: Any) -> None:
        for _ in range(size):
            await app(dict(scope), receive, send)

    def batch(app: Any) -> float:
        started = time.perf_counter()
        if kind == "flask":
            for _ in range(size):
                b"".join(app(dict(environ), start_response))
        else:
            asyncio.run(run_asgi(app))
        return (time.perf_counter() - started) / size * 1e6

    build = _flask_app if kind == "flask" else _starlette_app
    apps = {variant: build(variant == "with") for variant in VARIANTS}
    best = {variant: min(batch(apps[variant]) for _ in range(3)) for variant in VARIANTS}
    for _ in range(batches):
        for variant in VARIANTS:
            best[variant] = min(best[variant], batch(apps[variant]))
    return {"us_without": best["without"], "us_with": best["with"]}


def _summary(runs: dict[str, list[Sample]]) -> dict[str, float]:
    def median(variant: str, endpoint: str, metric: str) -> float:
        return statistics.median(run[endpoint][metric] for run in runs[variant])

    paired = [
        w["trivial"]["rps"] / o["trivial"]["rps"]
        for w, o in zip(runs["with"], runs["without"], strict=True)
    ]
    return {
        "rps_without": median("without", "trivial", "rps"),
        "rps_with": median("with", "trivial", "rps"),
        "ratio": median("with", "trivial", "rps") / median("without", "trivial", "rps"),
        "paired_ratio_median": statistics.median(paired),
        "cpu_us_without": median("without", "trivial", "cpu_us"),
        "cpu_us_with": median("with", "trivial", "cpu_us"),
        "cpu_ratio": median("without", "trivial", "cpu_us") / median("with", "trivial", "cpu_us"),
        "context_rps_with": median("with", "context", "rps"),
        "context_ratio": median("with", "context", "rps") / median("without", "trivial", "rps"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds per variant")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    os.environ.update(ROASPROOF_ENABLED="false", ROASPROOF_OUTBOX=":memory:")
    runs = {kind: _measure_kind(kind, args.rounds, args.duration) for kind in KINDS}
    results = {kind: _summary(runs[kind]) | _inprocess(kind) for kind in KINDS}
    print(
        f"{'':10} {'rps bare':>9} {'rps with':>9} {'ratio':>6} {'paired':>6} {'cpu µs':>13} "
        f"{'cpu ratio':>9} {'in-process µs':>14} {'overhead':>8}"
    )
    for kind, r in results.items():
        cpu = f"{r['cpu_us_without']:.0f} -> {r['cpu_us_with']:.0f}"
        inproc = f"{r['us_without']:.1f} -> {r['us_with']:.1f}"
        print(
            f"{kind:10} {r['rps_without']:9.0f} {r['rps_with']:9.0f} {r['ratio']:6.3f} "
            f"{r['paired_ratio_median']:6.3f} {cpu:>13} {r['cpu_ratio']:9.3f} {inproc:>14} "
            f"{r['us_with'] - r['us_without']:7.1f}µs"
        )
    if args.json:
        args.json.write_text(json.dumps({"results": results, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
