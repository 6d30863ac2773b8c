"""Memory with a large backlog: 1,000,000 events queued while the API is down.

Each measurement runs in a fresh interpreter so its resident set is its own:

* ``roasproof``: events enqueued into the SQLite outbox (the request path's
  enqueue, with the payload the Client builds) while the endpoint refuses
  connections, so the sender keeps retrying with backoff and the breaker;
* ``segment`` (when installed): the same number of ``track()`` calls into
  segment-analytics-python's in-memory queue (max_queue_size raised so it does
  not drop), which is what a non-durable SDK holds during an outage.

Reported: RSS before the first event, peak RSS (VmHWM) and RSS at the end.
Goal: roasproof stays under 100 MB with 1,000,000 events backlogged.

Run:  .venv/bin/python bench/bench_memory.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import machine, save

PROBE = """
import json, sys, time

def rss():
    fields = {}
    for line in open("/proc/self/status"):
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields
"""

ROASPROOF = (
    PROBE
    + """
from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import create_delivery
from roasproof._payload import encode_payload
events, outbox = int(sys.argv[1]), sys.argv[2]
sys.path.insert(0, sys.argv[3])
from _common import PURCHASE
endpoint = "http://127.0.0.1:9"  # nothing listens: connection refused, retried with backoff
settings = Settings.resolve("rp_bench_key", endpoint=endpoint, outbox=outbox)
delivery = create_delivery(settings)
client = Client("rp_bench_key", endpoint=endpoint, outbox=outbox, delivery=delivery)
body = encode_payload(client.build_payload("purchase", **PURCHASE))
before = rss()["VmRSS"]
started = time.perf_counter()
for n in range(events):
    delivery.enqueue(f"order_{n}", "purchase", body)
elapsed = time.perf_counter() - started
time.sleep(3)  # let the sender claim, fail and reschedule a few batches
after = rss()
stats = delivery.stats()
print(json.dumps({"before_mb": before, "peak_mb": after["VmHWM"], "end_mb": after["VmRSS"],
                  "pending": stats["pending"], "retried": stats["retried"],
                  "enqueue_per_s": events / elapsed, "body_bytes": len(body)}))
"""
)

SEGMENT = (
    PROBE
    + """
import logging
logging.getLogger("segment").setLevel(logging.CRITICAL)
from segment.analytics import Client
events = int(sys.argv[1])
client = Client("bench", host="http://127.0.0.1:9", max_queue_size=events + 1, max_retries=1000)
before = rss()["VmRSS"]
for n in range(events):
    client.track(user_id="customer-88231", event="Order Completed",
                 properties={"value": 249.0, "currency": "EUR", "order_id": n})
after = rss()
print(json.dumps({"before_mb": before, "peak_mb": after["VmHWM"], "end_mb": after["VmRSS"],
                  "queued": client.queue.qsize()}))
client.send = False
import os; os._exit(0)
"""
)


def run(code: str, *args: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="roasproof-bench-", dir=Path(__file__).parent) as tmp:
        outbox = Path(tmp) / "outbox.sqlite3"
        here = str(Path(__file__).parent)
        rows["roasproof (SQLite outbox)"] = run(ROASPROOF, str(args.events), str(outbox), here)
        size = sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6
        rows["roasproof (SQLite outbox)"]["outbox_file_mb"] = size
    try:
        import segment.analytics  # noqa: F401
    except ImportError:
        print("segment-analytics-python not installed: skipped")
    else:
        rows["segment (in-memory queue)"] = run(SEGMENT, str(args.events))
    print(f"Memory with {args.events:,} events backlogged; {machine()}")
    print(f"{'':28} {'RSS before':>11} {'peak RSS':>9} {'RSS end':>8}")
    for name, row in rows.items():
        print(f"{name:28} {row['before_mb']:9.1f}MB {row['peak_mb']:7.1f}MB {row['end_mb']:6.1f}MB")
    print(json.dumps(rows))
    print(f"saved {save('memory', {'events': args.events, 'results': rows})}")


if __name__ == "__main__":
    main()
