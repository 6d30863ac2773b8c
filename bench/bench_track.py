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
* ``track(), in a request``: the same purchase tracked from a WSGI view behind
  ``RoasproofMiddleware``, each request its own visitor: the user agent, IP, ``_sgnl_vid``,
  ``_fbc``/``_fbp`` cookies and page address come from the request (read lazily, inside
  this first ``track()`` of the request), email, phone and external id from the view.
  Only the ``track()`` call is timed.
* ``track(), delivering``: the same while this process's sender delivers to nginx
  answering 202 on loopback (skipped without nginx).
* ``segment track()``: segment-analytics-python's in-memory, non-durable track()
  (skipped when not installed).

The rows take turns: each row runs ``events / rounds`` calls, then the next row, for
``rounds`` rounds, each row keeping its database, client and files from one round to the
next. A shared machine has slow spells lasting seconds; taking turns spreads them over
every row instead of letting one land on one row and skew its ratio.

Run:  .venv/bin/python bench/bench_track.py [--events 20000] [--rounds 5]
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
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from _common import PURCHASE, machine, nginx_sink, percentile, save
from pydantic_core import to_json

from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import Engine, create_delivery
from roasproof._payload import encode_body, encode_payload
from roasproof._plain import plain_body
from roasproof.wsgi import RoasproofMiddleware

API_KEY = "rp_bench_key_0123456789"
WARMUP = 500

#: A row: set up, then each ``send(calls)`` answers that many latencies; ``close()`` tears down.
Row = Generator["list[float] | None", int, None]


def purchases(count: int) -> list[dict[str, Any]]:
    """``count`` purchases, each with a unique email and phone number."""
    out = []
    for k in range(count):
        user_data = dict(PURCHASE["user_data"])
        user_data["email"] = f"Jane.Doe.{k}@Example.com"
        user_data["phone"] = f"+4930{10_000_000 + k}"
        out.append({**PURCHASE, "user_data": user_data})
    return out


class Calls:
    """Numbers each call of a row uniquely across its rounds (ids never repeat)."""

    def __init__(self) -> None:
        self.next = 0

    def measure(self, call: Callable[[int], object], count: int) -> list[float]:
        """Latencies of ``count`` calls of ``call(n)`` in microseconds, after a warmup."""
        start = self.next
        for n in range(start, start + WARMUP):
            call(n)
        start += WARMUP
        self.next = start + count
        clock = time.perf_counter_ns
        samples = []
        for n in range(start, start + count):
            began = clock()
            call(n)
            samples.append((clock() - began) / 1000)
        return samples


def _bare_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    return conn


def bare_sqlite(root: Path, body: bytes) -> Row:
    conn, calls = _bare_connection(root / "bare.sqlite3"), Calls()
    try:
        insert = conn.execute
        count = yield None
        while True:
            count = yield calls.measure(
                lambda n: insert("INSERT INTO t (body) VALUES (?)", (body,)), count
            )
    finally:
        conn.close()


def bare_sqlite_interleaved(root: Path, body: bytes, fields: list[dict[str, Any]]) -> Row:
    """The same bare commit, timed alone, but with track()'s payload work between commits.

    A commit in a tight loop finds SQLite's pages in the CPU caches; between two
    requests' worth of Python work it does not. This is the fairer floor.
    """
    conn, calls = _bare_connection(root / "bare2.sqlite3"), Calls()
    clock = time.perf_counter_ns
    try:
        count = yield None
        while True:
            samples = []
            for n in range(calls.next, calls.next + WARMUP + count):
                plain_body("purchase", {"event_id": f"o{n}", **fields[n]})
                start = clock()
                conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
                if n >= calls.next + WARMUP:
                    samples.append((clock() - start) / 1000)
            calls.next += WARMUP + count
            count = yield samples
    finally:
        conn.close()


def payload_plain(fields: list[dict[str, Any]]) -> Row:
    """What track() does before storing the usual purchase: the plain path."""
    calls = Calls()
    count = yield None
    while True:
        count = yield calls.measure(
            lambda n: plain_body("purchase", {"event_id": f"o{n}", **fields[n]}), count
        )


def payload_full(fields: list[dict[str, Any]]) -> Row:
    """Validation, hashing and JSON encoding of the same purchase through the models."""
    client, calls = Client(API_KEY, outbox=None), Calls()
    count = yield None
    while True:
        count = yield calls.measure(
            lambda n: encode_body(client.build_payload("purchase", event_id=f"o{n}", **fields[n])),
            count,
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


def _idle_engine(outbox: Path) -> tuple[Client, Engine]:
    """A client whose sender runs but is not elected (another worker delivers)."""
    client = _client(outbox, "http://127.0.0.1:9")
    client.track("lead", event_id="warm")  # creates the file; the sender starts
    _hold_lease(outbox)
    delivery = client._delivery
    assert isinstance(delivery, Engine)
    return client, delivery


def enqueue_only(root: Path, body: bytes, *, journal: bool) -> Row:
    client, delivery = _idle_engine(root / "enqueue.sqlite3")
    store, calls = delivery.store, Calls()
    try:
        count = yield None
        while True:
            if journal:
                samples = calls.measure(
                    lambda n: delivery.enqueue(f"e{n}", "purchase", body), count
                )
            else:
                samples = calls.measure(
                    lambda n: store.enqueue(f"e{n}", "purchase", body, time.time()), count
                )
            client.stats()  # moves what waits in the journal before the next row runs
            count = yield samples
    finally:
        client.close(0.1)


def floor(root: Path, fields: list[dict[str, Any]]) -> Row:
    """The least any durable track() with hashing does: nothing validated or assembled.

    Three SHA-256 (email, phone, external id), pydantic-core's JSON of the finished
    body and the journal append, through the same engine as ``journal append``.
    """
    client, delivery = _idle_engine(root / "floor.sqlite3")
    template = json.loads(encode_payload(client.build_payload("purchase", **PURCHASE)))
    sha256, calls = hashlib.sha256, Calls()

    def track(n: int) -> None:
        user = fields[n]["user_data"]
        body = {**template, "event_id": f"f{n}"}
        body["user_data"] = {
            **template["user_data"],
            "email": sha256(user["email"].lower().encode()).hexdigest(),
            "phone": sha256(user["phone"][1:].encode()).hexdigest(),
            "external_id": sha256(user["external_id"].encode()).hexdigest(),
        }
        delivery.enqueue(f"f{n}", "purchase", to_json(body))

    try:
        count = yield None
        while True:
            samples = calls.measure(track, count)
            client.stats()
            count = yield samples
    finally:
        client.close(0.1)


def client_track(root: Path, fields: list[dict[str, Any]], endpoint: str | None) -> Row:
    if endpoint is None:
        client, _ = _idle_engine(root / "track.sqlite3")
    else:
        client = _client(root / "track.sqlite3", endpoint)
    calls = Calls()
    try:
        count = yield None
        while True:
            samples = calls.measure(
                lambda n: client.track("purchase", event_id=f"order_{n}", **fields[n]), count
            )
            if endpoint is None:
                client.stats()
            else:
                client.flush(30)  # delivered before the next row runs
            count = yield samples
    finally:
        client.close(5 if endpoint else 0.1)


def _environ(n: int) -> dict[str, Any]:
    """The WSGI environ of visitor ``n``'s thank-you page request."""
    user = PURCHASE["user_data"]
    return {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "shop.example.com",
        "PATH_INFO": "/checkout/thank-you",
        "QUERY_STRING": f"order={n}",
        "REMOTE_ADDR": f"203.0.{n // 250 % 250}.{n % 250 + 1}",
        "HTTP_USER_AGENT": user["client_user_agent"],
        "HTTP_COOKIE": (
            f"_sgnl_vid=v{n:012d}; _fbc={user['fbc']}{n}; _fbp={user['fbp']}{n}; session=abc"
        ),
    }


def track_in_request(root: Path, fields: list[dict[str, Any]]) -> Row:
    """track() as a Flask or Django view calls it: the context comes from the request."""
    client, _ = _idle_engine(root / "request.sqlite3")
    clock, samples = time.perf_counter_ns, []
    own = ("email", "phone", "external_id")  # the rest of user_data: the request's

    def view(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        n = environ["bench.n"]
        given = fields[n]
        user_data = {key: given["user_data"][key] for key in own}
        began = clock()
        client.track(
            "purchase",
            event_id=f"request_{n}",
            value=given["value"],
            currency=given["currency"],
            user_data=user_data,
            custom_data=given["custom_data"],
        )
        samples.append((clock() - began) / 1000)
        return []

    app, start = RoasproofMiddleware(view), Calls()
    try:
        count = yield None
        while True:
            first = start.next
            start.next += WARMUP + count
            for n in range(first, first + WARMUP + count):
                app({**_environ(n), "bench.n": n}, None)
            got, samples[:] = samples[WARMUP:], []
            client.stats()
            count = yield got
    finally:
        client.close(0.1)


def segment_track() -> Row:
    try:
        from segment.analytics import Client as SegmentClient
    except ImportError:
        count = yield None
        while True:
            count = yield None
    logging.getLogger("segment").setLevel(logging.CRITICAL)
    properties = {"value": 249.0, "currency": "EUR", **PURCHASE["custom_data"]}
    context = {"ip": "203.0.113.42", "userAgent": PURCHASE["user_data"]["client_user_agent"]}
    calls = Calls()
    count = yield None
    while True:
        # A client per round: its consumer thread must not run during the other rows.
        client = SegmentClient(
            "bench-write-key", host="http://127.0.0.1:9", max_queue_size=10_000_000, max_retries=0
        )
        samples = calls.measure(
            lambda n, client=client: client.track(
                user_id="customer-88231",
                event="Order Completed",
                properties=properties,
                context=dict(context),
            ),
            count,
        )
        client.send = False
        client.shutdown()
        count = yield samples


def make_rows(root: Path, body: bytes, url: str | None, total: int) -> dict[str, Row]:
    fields = purchases(total)
    for sub in ("j", "o", "idle", "request", "send"):
        (root / sub).mkdir()
    rows: dict[str, Row] = {
        "bare SQLite insert+commit": bare_sqlite(root, body),
        "bare commit, between payloads": bare_sqlite_interleaved(root, body, fields),
        "payload, plain path (no storage)": payload_plain(fields),
        "payload, full path (no storage)": payload_full(fields),
        "floor: 3 SHA-256 + JSON + append": floor(root, fields),
        "journal append (no validation)": enqueue_only(root / "j", body, journal=True),
        "outbox commit (no validation)": enqueue_only(root / "o", body, journal=False),
        "track(), idle worker": client_track(root / "idle", fields, None),
        "track(), in a request": track_in_request(root / "request", fields),
    }
    if url is not None:
        rows["track(), while delivering"] = client_track(root / "send", fields, url)
    rows["segment track() (memory only)"] = segment_track()
    return rows


def run_rows(
    root: Path, body: bytes, url: str | None, events: int, rounds: int
) -> dict[str, list[float] | None]:
    per_round = events // rounds
    rows = make_rows(root, body, url, rounds * (WARMUP + per_round))
    samples: dict[str, list[float] | None] = {}
    try:
        for name, row in rows.items():
            next(row)  # set up
            samples[name] = []
        for _ in range(rounds):
            for name, row in rows.items():
                got, collected = row.send(per_round), samples[name]
                samples[name] = None if got is None or collected is None else collected + got
    finally:
        for row in rows.values():
            row.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5, help="turns each row takes")
    args = parser.parse_args()
    gc.collect()
    body = encode_payload(Client(API_KEY, outbox=None).build_payload("purchase", **PURCHASE))
    with tempfile.TemporaryDirectory(prefix="roasproof-bench-", dir=Path(__file__).parent) as tmp:
        root = Path(tmp)
        try:
            with nginx_sink() as url:
                rows = run_rows(root, body, url, args.events, args.rounds)
        except SystemExit as missing:
            print(f"skipped delivering mode: {missing}")
            rows = run_rows(root, body, None, args.events, args.rounds)
    base = rows["bare SQLite insert+commit"]
    assert base is not None
    base50, base99 = percentile(base, 0.5), percentile(base, 0.99)
    print(
        f"track() latency, {args.events} calls each in {args.rounds} turns; "
        f"body {len(body)} bytes; {machine()}"
    )
    print(f"{'':34} {'p50 us':>8} {'p99 us':>8} {'p50 ratio':>10} {'p99 ratio':>10}")
    report = {}
    for name, samples in rows.items():
        if samples is None:
            print(f"{name:34} skipped (not installed)")
            continue
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        report[name] = {"p50_us": p50, "p99_us": p99, "p50_ratio": p50 / base50}
        print(f"{name:34} {p50:8.1f} {p99:8.1f} {p50 / base50:9.2f}x {p99 / base99:9.2f}x")
    meta = {"events": args.events, "rounds": args.rounds, "body_bytes": len(body)}
    print(f"saved {save('track', {**meta, **report})}")


if __name__ == "__main__":
    main()
