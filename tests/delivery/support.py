"""Helpers shared by the delivery tests: fast timings, payloads, fresh interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from roasproof._delivery import Tuning

API_KEY = "rp_test_0123456789abcdef0123456789abcdef"

#: Timings shrunk so pauses, backoffs and lease handovers take moments, same behaviour.
FAST = Tuning(
    backoff_base=0.02,
    backoff_cap=0.2,
    auth_probe_base=0.3,
    auth_probe_cap=1.0,
    quota_base=0.3,
    quota_cap=1.0,
    lease_ttl=1.0,
    lease_margin=0.5,
    lease_renew=0.2,
    poll_interval=0.01,
    journal_linger=0.01,
    ack_interval=0.005,
    expire_every=0.2,
    breaker_threshold=10,
    breaker_base=0.05,
    breaker_cap=0.3,
    atexit_timeout=1.0,
)


def body_for(event_id: str, event: str = "purchase") -> bytes:
    """A payload as the Client would encode it (already hashed, no PII)."""
    return json.dumps({"event": event, "event_id": event_id, "value": 10}).encode()


def run_python(
    code: str,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> subprocess.CompletedProcess[str]:
    """Run a script in a fresh interpreter (for kill -9 and fork tests)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROASPROOF_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn_python(code: str, *, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start a script in a fresh interpreter without waiting for it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ROASPROOF_")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a test can stop it and its children
    )


#: Imported at the top of every subprocess script: a Client whose delivery engine
#: uses FAST timings (read from RP_TUNING), pointed at RP_ENDPOINT / RP_OUTBOX.
PREAMBLE = """
import json, os, signal, sys, threading, time
from roasproof import Client
from roasproof._config import Settings
from roasproof._delivery import Tuning, create_delivery

TUNING = Tuning(**json.loads(os.environ["RP_TUNING"]))


def make_client(**options):
    options = {"endpoint": os.environ["RP_ENDPOINT"], "outbox": os.environ["RP_OUTBOX"],
               "connect_timeout": 0.3, "read_timeout": 0.5, "max_event_age": 3600, **options}
    settings = Settings.resolve(os.environ["RP_KEY"], **options)
    delivery = create_delivery(settings, tuning=TUNING)
    return Client(os.environ["RP_KEY"], delivery=delivery, **options)


def say(*words):  # one write(2) per line: lines of forked processes never interleave
    os.write(1, (" ".join(map(str, words)) + "\\n").encode())
"""


def script_env(endpoint: str, outbox: str, api_key: str) -> dict[str, str]:
    """The environment PREAMBLE reads."""
    from dataclasses import asdict

    return {
        "RP_TUNING": json.dumps(asdict(FAST)),
        "RP_ENDPOINT": endpoint,
        "RP_OUTBOX": outbox,
        "RP_KEY": api_key,
    }
