"""Shared helpers for the benchmarks: a realistic event, percentiles, nginx on loopback.

Every benchmark measures its baseline in the same run and prints ratios, so
numbers from different machines can be compared as ratios, not absolutes.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"

#: A purchase as a shop would track it: every identifier present, so validation,
#: normalization and hashing all run. Encoded, it is about 700 bytes.
PURCHASE: dict[str, Any] = {
    "value": "249.00",
    "currency": "EUR",
    "url": "https://shop.example.com/checkout/thank-you?order=10023",
    "user_data": {
        "email": "Jane.Doe@Example.com",
        "phone": "+49 30 901820",
        "external_id": "customer-88231",
        "client_ip_address": "203.0.113.42",
        "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/126.0 Safari/537.36",
        "fbc": "fb.1.1719000000000.AbCdEfGhIjKlMnOp",
        "fbp": "fb.1.1719000000000.1234567890",
        "gclid": "Cj0KCQjw-example-gclid",
    },
    "custom_data": {"order_id": "10023", "items": 3, "coupon": "SUMMER24"},
}


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``samples`` fall (nearest rank)."""
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def machine() -> str:
    """One line describing where the numbers come from."""
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


#: What the sinks answer: the ingest API's 202 body.
ACCEPTED = '{"event_id":"x","duplicate":false,"destinations":[{"destination":"meta"}]}'

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  keepalive_requests 10000000;
  keepalive_timeout 120s;
  server {{
    listen 127.0.0.1:{port} reuseport;
    location / {{
      client_body_buffer_size 64k;
      default_type application/json;
      return 202 '{answer}';
    }}
  }}
}}
"""


@contextmanager
def nginx_sink() -> Iterator[str]:
    """nginx from the distribution answering 202 on a free loopback port (never the bottleneck)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise SystemExit("nginx is not installed: apt-get install -y nginx")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="roasproof-nginx-") as root:
        conf = Path(root) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, port=port, answer=ACCEPTED))
        process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", root],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)


def save(name: str, data: dict[str, Any]) -> Path:
    """Write results as JSON under bench/results/ (not committed)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"machine": machine(), "python": sys.version, **data}
    path.write_text(json.dumps(data, indent=2))
    return path


def pinned(command: list[str], cpu: int) -> list[str]:
    """Pin to one CPU when there are two or more: server and load never share a core."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu), *command]
    return command


def wait_http_ready(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Until the app answers 200 on ``/`` (gunicorn listens before its worker has booted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants (gunicorn's worker), from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
