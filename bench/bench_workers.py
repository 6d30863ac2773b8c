"""track() latency when several worker processes track at once into one outbox.

The case a gunicorn or uvicorn deployment is in: every worker tracks conversions into the
same outbox file, and one of them is the elected sender. What each row measures, in this
same run, with ``--workers`` processes (default 4) each calling ``track()`` ``--events``
times, paced to ``--rate`` calls per second per worker (a busy shop, not a tight loop),
every call timed on its own:

* ``bare SQLite commit, W processes``: the baseline: each process commits the same
  809-byte body with one INSERT into a minimal WAL table shared by all of them: the
  floor of a durable store that every worker writes, including waiting for SQLite's
  write lock while another process holds it.
* ``track(), committing to the outbox``: ``Client.track`` as it was before the journal:
  validation, hashing and one SQLite transaction per event into the shared outbox.
* ``track(), journal (default)``: ``Client.track`` as shipped: the same work, then one
  copy into the worker's own memory-mapped journal; each worker's sender thread moves
  its journal into the outbox in batches.

The API endpoint is down (a closed port) for the whole run: nothing is delivered, so the
rows compare storage alone, and the backlog only grows.

Run:  .venv/bin/python bench/bench_workers.py [--workers 4] [--events 5000] [--rate 500]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import PURCHASE, machine, percentile, save

from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import create_delivery
from roasproof._payload import encode_payload

API_KEY = "rp_bench_key_0123456789"
ENDPOINT = "http://127.0.0.1:9"  # nothing listens: the API is down for the whole run
WARMUP = 200


def _event(worker: int, n: int) -> dict[str, Any]:
    user_data = dict(PURCHASE["user_data"])
    user_data["email"] = f"Jane.Doe.{worker}.{n}@Example.com"
    user_data["phone"] = f"+4930{10_000_000 + worker * 1_000_000 + n}"
    return {**PURCHASE, "user_data": user_data, "event_id": f"order_{worker}_{n}"}


def _paced(call: Callable[[int], object], events: int, rate: float) -> list[float]:
    """Call ``call(n)`` ``events`` times at ``rate`` per second; latencies in microseconds."""
    for n in range(-WARMUP, 0):
        call(n)
    clock = time.perf_counter_ns
    gap = 1e9 / rate
    start = clock()
    samples = []
    for n in range(events):
        wait = start + n * gap - clock()
        if wait > 0:  # sleep, never spin: the workers share the machine's cores
            time.sleep(wait / 1e9)
        begin = clock()
        call(n)
        samples.append((clock() - begin) / 1000)
    return samples


def _bare(path: Path, worker: int, events: int, rate: float, body: bytes) -> list[float]:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        return _paced(
            lambda n: conn.execute("INSERT INTO t (body) VALUES (?)", (body,)), events, rate
        )
    finally:
        conn.close()


def _client(outbox: Path, journal: bool) -> Client:
    settings = Settings.resolve(API_KEY, endpoint=ENDPOINT, outbox=outbox)
    engine = create_delivery(settings)
    if not journal:
        engine.journal = None  # every track() commits its own transaction, as before
    return Client(API_KEY, endpoint=ENDPOINT, outbox=outbox, delivery=engine)


def _track(outbox: Path, journal: bool, worker: int, events: int, rate: float) -> list[float]:
    client = _client(outbox, journal)
    fields = {n: _event(worker, n) for n in range(-WARMUP, events)}
    try:
        return _paced(lambda n: client.track("purchase", **fields[n]), events, rate)
    finally:
        client.close(0.2)


def _worker(args: tuple[str, str, int, int, float, bytes]) -> list[float]:
    mode, path, worker, events, rate, body = args
    if mode == "bare":
        return _bare(Path(path), worker, events, rate, body)
    return _track(Path(path), mode == "journal", worker, events, rate)


def run(mode: str, path: Path, workers: int, events: int, rate: float, body: bytes) -> list[float]:
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        jobs = [(mode, str(path), w, events, rate, body) for w in range(workers)]
        return [sample for samples in pool.map(_worker, jobs) for sample in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500.0, help="track() calls/s per worker")
    args = parser.parse_args()
    body = encode_payload(Client(API_KEY, outbox=None).build_payload("purchase", **PURCHASE))
    rows: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="roasproof-bench-", dir=Path(__file__).parent) as tmp:
        root = Path(tmp)
        bare = root / "bare.sqlite3"
        with sqlite3.connect(bare, isolation_level=None) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        common = (args.workers, args.events, args.rate, body)
        rows[f"bare SQLite commit, {args.workers} processes"] = run("bare", bare, *common)
        rows["track(), committing to the outbox"] = run("commit", root / "commit.sqlite3", *common)
        rows["track(), journal (default)"] = run("journal", root / "journal.sqlite3", *common)
    base = rows[f"bare SQLite commit, {args.workers} processes"]
    base50, base99 = percentile(base, 0.5), percentile(base, 0.99)
    print(
        f"track() latency, {args.workers} processes x {args.events} calls at {args.rate:g}/s "
        f"each, one shared outbox; {machine()}"
    )
    print(
        f"{'':36} {'p50 us':>8} {'p99 us':>8} {'p99.9 us':>9} {'p50 ratio':>10} {'p99 ratio':>10}"
    )
    report = {}
    for name, samples in rows.items():
        p50, p99, p999 = (percentile(samples, q) for q in (0.5, 0.99, 0.999))
        report[name] = {"p50_us": p50, "p99_us": p99, "p999_us": p999, "p50_ratio": p50 / base50}
        print(
            f"{name:36} {p50:8.1f} {p99:8.1f} {p999:9.1f} {p50 / base50:9.2f}x {p99 / base99:9.2f}x"
        )
    print(f"saved {save('workers', {**vars(args), **report})}")


if __name__ == "__main__":
    main()
