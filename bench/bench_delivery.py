"""Delivery throughput and client CPU per event, from a full outbox, one POST per event.

Sinks (separate processes, so their CPU is not counted as the client's):

* ``0 ms``: nginx from the distribution answering 202 on loopback (``return 202``);
  it serves ~100k requests/s on this kind of machine, so it is never the bottleneck;
* ``20 ms``: a small aiohttp server answering 202 after ``asyncio.sleep(0.02)``
  (nginx cannot add latency without extra modules).

Clients, each measured in this same run:

* ``naive``: one ``requests.Session.post`` per event in one thread, events in
  memory (what per-platform SDKs do), no outbox at all;
* ``roasproof httpx``: the engine with the httpx transport (always available);
* ``roasproof aiohttp``: the engine with the fast transport (``roasproof[fast]``).

For the engine, the clock runs from ``flush()`` on an outbox already holding the
events to the last ack: SQLite claims and grouped acks are included. CPU per
event is ``time.process_time()`` of this process divided by events delivered.

Run:  .venv/bin/python bench/bench_delivery.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from _common import PURCHASE, free_port, machine, nginx_sink, save, wait_for_port

from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import create_delivery
from roasproof._http import events_url, request_headers
from roasproof._payload import encode_payload

API_KEY = "rp_bench_key_0123456789"

SLOW_SINK = """
import asyncio, sys
from aiohttp import web

async def accept(request):
    await request.read()
    await asyncio.sleep(float(sys.argv[2]))
    return web.Response(status=202, content_type="application/json",
                        text='{"event_id":"x","duplicate":false,"destinations":[]}')

app = web.Application()
app.router.add_post("/api/v1/events", accept)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None,
            backlog=4096)
"""


@contextmanager
def slow_sink(latency: float) -> Iterator[str]:
    """A 202 sink that waits ``latency`` seconds per request, in its own process."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SLOW_SINK), str(port), str(latency)]
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def naive(url: str, events: int, body: bytes) -> tuple[float, float]:
    """(events/s, CPU us/event) of one requests.Session.post per event in one thread."""
    session = requests.Session()
    target = events_url(url)
    headers = [request_headers(API_KEY, f"naive_{n}") for n in range(events)]
    start, cpu = time.perf_counter(), time.process_time()
    for header in headers:
        response = session.post(target, data=body, headers=header, timeout=(3, 10))
        assert response.status_code == 202
    elapsed, used = time.perf_counter() - start, time.process_time() - cpu
    session.close()
    return events / elapsed, used / events * 1e6


def engine(url: str, events: int, body: bytes, transport: str) -> tuple[float, float]:
    """(events/s, CPU us/event) of the engine draining an outbox of ``events``."""
    with tempfile.TemporaryDirectory(prefix="roasproof-bench-", dir=Path(__file__).parent) as tmp:
        outbox = Path(tmp) / "outbox.sqlite3"
        settings = Settings.resolve(API_KEY, endpoint=url, outbox=outbox, transport=transport)
        delivery = create_delivery(settings)
        delivery.store.enqueue("warm", "purchase", body, time.time())  # creates the file
        conn = delivery.store._conn()  # fill the backlog in one transaction
        now = time.time()
        with conn:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO pending (event_id, event, body, created_at, next_attempt_at) "
                "VALUES (?, 'purchase', ?, ?, ?)",
                ((f"order_{n}", body, now, now) for n in range(events)),
            )
        start, cpu = time.perf_counter(), time.process_time()
        assert delivery.flush(600), "not everything was delivered"
        elapsed, used = time.perf_counter() - start, time.process_time() - cpu
        delivered = delivery.stats()["delivered"]
        delivery.close(5)
    return delivered / elapsed, used / delivered * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events (a smoke run)")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    body = encode_payload(Client(API_KEY, outbox=None).build_payload("purchase", **PURCHASE))
    plans = {  # latency -> {client: events}
        0.0: {"naive requests": 5000, "roasproof httpx": 10000, "roasproof aiohttp": 30000},
        0.02: {"naive requests": 300, "roasproof httpx": 6000, "roasproof aiohttp": 20000},
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    for latency, clients in plans.items():
        label = f"{latency * 1000:g} ms"
        sink = nginx_sink() if latency == 0 else slow_sink(latency)
        with sink as url:
            rows = results.setdefault(label, {})
            for name, events in clients.items():
                count = max(50, int(events * scale))
                if name == "naive requests":
                    rate, cpu = naive(url, count, body)
                else:
                    rate, cpu = engine(url, count, body, name.split()[-1])
                rows[name] = {"events": count, "events_per_s": rate, "cpu_us_per_event": cpu}
    print(f"Delivery, one POST per event, body {len(body)} bytes; {machine()}")
    print(f"{'':10} {'client':20} {'events':>7} {'events/s':>10} {'CPU us/ev':>10} {'vs naive':>9}")
    for label, rows in results.items():
        base = rows["naive requests"]["events_per_s"]
        for name, row in rows.items():
            print(
                f"{label:10} {name:20} {row['events']:7.0f} {row['events_per_s']:10.0f} "
                f"{row['cpu_us_per_event']:10.0f} {row['events_per_s'] / base:8.1f}x"
            )
    print(f"saved {save('delivery', {'body_bytes': len(body), 'results': results})}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
