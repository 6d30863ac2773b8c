"""track() latency: validation + hashing + durable commit, against a bare SQLite commit.

What is measured, each in this same run, one call at a time (GC on, as in production):

Every track() and payload call gets its own email address and phone number (written in
E.164, as checkout forms usually store them), as real traffic has: identifiers are not
served from the phone-parsing cache.

* ``bare SQLite``: one INSERT + commit of a 700-byte blob into a minimal table in
  WAL + synchronous=NORMAL: the floor any durable track() pays.
* ``bare commit, between payloads``: the same commit timed alone, with track()'s
  payload work between commits (the CPU caches are then cold, as in a real app).
* ``payload, plain path``: what ``track()`` does before storing: the usual event
  validated by one compiled schema, hashed and encoded (``roasproof._plain``), no storage.
* ``payload, full path``: the same through the models (``make_event`` +
  ``build_payload``), which ``track()`` takes for anything outside the usual shape
  (custom event names, national phone numbers, nested custom_data, ...).
* ``floor``: the least any durable track() that hashes does, validating nothing:
  three SHA-256, pydantic-core's JSON of the finished body, the journal append.
* ``journal append``: what ``track()`` stores with, alone: one copy of the
  record into this process's memory-mapped journal segment (the sender thread moves records into
  the outbox in batches).
* ``outbox commit``: the same event committed to the outbox in its own transaction
  (what a process without a running sender does; the real schema, two indexes).
* ``track(), idle worker``: ``Client.track`` of a purchase with every identifier
  (validation, normalization, SHA-256, JSON, commit) in a process whose sender is
  not elected (another worker delivers), i.e. most gunicorn workers.
* ``track(), delivering``: the same while this process's sender delivers to nginx
  answering 202 on loopback (skipped without nginx).
* ``segment track()``: segment-analytics-python's in-memory, non-durable track()
  (skipped when not installed).

Run:  .venv/bin/python bench/bench_track.py [--events 20000]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import PURCHASE, machine, nginx_sink, percentile, save
from pydantic_core import to_json

from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import Engine, create_delivery
from roasproof._payload import encode_body, encode_payload
from roasproof._plain import plain_body

API_KEY = "rp_bench_key_0123456789"


WARMUP = 500


def purchases(events: int) -> list[dict[str, Any]]:
    """One purchase per call (warmup first), each with a unique email and phone number."""
    out = []
    for k in range(WARMUP + events):
        user_data = dict(PURCHASE["user_data"])
        user_data["email"] = f"Jane.Doe.{k}@Example.com"
        user_data["phone"] = f"+4930{10_000_000 + k}"
        out.append({**PURCHASE, "user_data": user_data})
    return out


def measure(call: Callable[[int], object], events: int, warmup: int = WARMUP) -> list[float]:
    """Latencies of ``call(n)`` in microseconds."""
    for n in range(warmup):
        call(-n - 1)
    clock = time.perf_counter_ns
    samples = []
    for n in range(events):
        start = clock()
        call(n)
        samples.append((clock() - start) / 1000)
    return samples


def bare_sqlite(root: Path, events: int, body: bytes) -> list[float]:
    conn = sqlite3.connect(root / "bare.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    try:
        return measure(lambda n: conn.execute("INSERT INTO t (body) VALUES (?)", (body,)), events)
    finally:
        conn.close()


def bare_sqlite_interleaved(root: Path, events: int, body: bytes) -> list[float]:
    """The same bare commit, timed alone, but with track()'s payload work between commits.

    A commit in a tight loop finds SQLite's pages in the CPU caches; between two
    requests' worth of Python work it does not. This is the fairer floor.
    """
    conn = sqlite3.connect(root / "bare2.sqlite3", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    clock = time.perf_counter_ns
    samples = []
    fields = purchases(events)
    try:
        for n in range(events + WARMUP):
            plain_body("purchase", {"event_id": f"o{n}", **fields[n]})
            start = clock()
            conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
            if n >= WARMUP:
                samples.append((clock() - start) / 1000)
        return samples
    finally:
        conn.close()


def payload_plain(events: int) -> list[float]:
    """What track() does before storing the usual purchase: the plain path."""
    fields = purchases(events)
    return measure(
        lambda n: plain_body("purchase", {"event_id": f"o{n}", **fields[n + WARMUP]}), events
    )


def payload_full(events: int) -> list[float]:
    """Validation, hashing and JSON encoding of the same purchase through the models."""
    client = Client(API_KEY, outbox=None)
    fields = purchases(events)
    return measure(
        lambda n: encode_body(
            client.build_payload("purchase", event_id=f"o{n}", **fields[n + WARMUP])
        ),
        events,
    )


def _client(outbox: Path, endpoint: str) -> Client:
    settings = Settings.resolve(API_KEY, endpoint=endpoint, outbox=outbox)
    return Client(API_KEY, endpoint=endpoint, outbox=outbox, delivery=create_delivery(settings))


def _hold_lease(outbox: Path) -> None:
    """Act as another worker that holds the sender lease for the whole run."""
    with sqlite3.connect(outbox) as conn:
        conn.execute(
            "INSERT OR REPLACE INTO sender_lease VALUES ('sender', 'other-worker', 1, 'host', ?)",
            (time.time() + 3600,),
        )


def enqueue_only(root: Path, events: int, body: bytes, *, journal: bool) -> list[float]:
    outbox = root / f"enqueue-{journal}.sqlite3"
    client = _client(outbox, "http://127.0.0.1:9")
    client.track("lead", event_id="warm")  # creates the file; the sender starts
    _hold_lease(outbox)
    delivery = client._delivery
    assert isinstance(delivery, Engine)
    store = delivery.store
    try:
        if journal:
            return measure(lambda n: delivery.enqueue(f"e{n}", "purchase", body), events)
        return measure(lambda n: store.enqueue(f"e{n}", "purchase", body, time.time()), events)
    finally:
        client.close(0.1)


def floor(root: Path, events: int) -> list[float]:
    """The least any durable track() with hashing does: nothing validated or assembled.

    Three SHA-256 (email, phone, external id), pydantic-core's JSON of the finished
    body and the journal append, through the same engine as ``journal append``.
    """
    outbox = root / "floor.sqlite3"
    client = _client(outbox, "http://127.0.0.1:9")
    client.track("lead", event_id="warm")
    _hold_lease(outbox)
    delivery = client._delivery
    assert isinstance(delivery, Engine)
    template = json.loads(encode_payload(client.build_payload("purchase", **PURCHASE)))
    fields = purchases(events)
    sha256 = hashlib.sha256

    def track(n: int) -> None:
        user = fields[n + WARMUP]["user_data"]
        body = {**template, "event_id": f"f{n}"}
        body["user_data"] = {
            **template["user_data"],
            "email": sha256(user["email"].lower().encode()).hexdigest(),
            "phone": sha256(user["phone"][1:].encode()).hexdigest(),
            "external_id": sha256(user["external_id"].encode()).hexdigest(),
        }
        delivery.enqueue(f"f{n}", "purchase", to_json(body))

    try:
        return measure(track, events)
    finally:
        client.close(0.1)


def client_track(root: Path, events: int, endpoint: str | None) -> list[float]:
    outbox = root / f"track-{'send' if endpoint else 'idle'}.sqlite3"
    client = _client(outbox, endpoint or "http://127.0.0.1:9")
    if endpoint is None:
        client.track("lead", event_id="warm")
        _hold_lease(outbox)
    fields = purchases(events)
    try:
        return measure(
            lambda n: client.track("purchase", event_id=f"order_{n}", **fields[n + WARMUP]),
            events,
        )
    finally:
        client.close(5 if endpoint else 0.1)


def segment_track(events: int) -> list[float] | None:
    try:
        from segment.analytics import Client as SegmentClient
    except ImportError:
        return None
    logging.getLogger("segment").setLevel(logging.CRITICAL)
    client = SegmentClient(
        "bench-write-key", host="http://127.0.0.1:9", max_queue_size=10_000_000, max_retries=0
    )
    properties = {"value": 249.0, "currency": "EUR", **PURCHASE["custom_data"]}
    context = {"ip": "203.0.113.42", "userAgent": PURCHASE["user_data"]["client_user_agent"]}
    try:
        return measure(
            lambda n: client.track(
                user_id="customer-88231",
                event="Order Completed",
                properties=properties,
                context=dict(context),
            ),
            events,
        )
    finally:
        client.send = False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    gc.collect()
    body = encode_payload(Client(API_KEY, outbox=None).build_payload("purchase", **PURCHASE))
    rows: dict[str, list[float] | None] = {}
    with tempfile.TemporaryDirectory(prefix="roasproof-bench-", dir=Path(__file__).parent) as tmp:
        root = Path(tmp)
        rows["bare SQLite insert+commit"] = bare_sqlite(root, args.events, body)
        rows["bare commit, between payloads"] = bare_sqlite_interleaved(root, args.events, body)
        rows["payload, plain path (no storage)"] = payload_plain(args.events)
        rows["payload, full path (no storage)"] = payload_full(args.events)
        rows["floor: 3 SHA-256 + JSON + append"] = floor(root, args.events)
        rows["journal append (no validation)"] = enqueue_only(root, args.events, body, journal=True)
        rows["outbox commit (no validation)"] = enqueue_only(root, args.events, body, journal=False)
        rows["track(), idle worker"] = client_track(root, args.events, None)
        try:
            with nginx_sink() as url:
                rows["track(), while delivering"] = client_track(root, args.events, url)
        except SystemExit as missing:
            print(f"skipped delivering mode: {missing}")
        rows["segment track() (memory only)"] = segment_track(args.events)
    base = rows["bare SQLite insert+commit"]
    assert base is not None
    base50, base99 = percentile(base, 0.5), percentile(base, 0.99)
    print(f"track() latency, {args.events} calls each; body {len(body)} bytes; {machine()}")
    print(f"{'':34} {'p50 us':>8} {'p99 us':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    report = {}
    for name, samples in rows.items():
        if samples is None:
            print(f"{name:34} skipped (not installed)")
            continue
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        report[name] = {"p50_us": p50, "p99_us": p99, "p50_ratio": p50 / base50}
        print(f"{name:34} {p50:8.1f} {p99:8.1f} {p50 / base50:9.2f}x {p99 / base99:9.2f}x")
    print(f"saved {save('track', {'events': args.events, 'body_bytes': len(body), **report})}")


if __name__ == "__main__":
    main()
