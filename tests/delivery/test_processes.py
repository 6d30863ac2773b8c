"""Process-level guarantees, through ``Client.track`` in fresh interpreters.

kill -9 mid-stream loses nothing that ``track()`` confirmed; four forked
processes share one outbox and the elected sender hands over when killed;
a fork after ``track()`` leaves both processes delivering, without deadlock.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .sink import Sink
from .support import API_KEY, PREAMBLE, run_python, script_env, spawn_python


@pytest.fixture
def emulator() -> Iterator[tuple[Any, str]]:
    emu = pytest.importorskip("roasproof.emulator")
    app = emu.create_app(api_keys=[API_KEY], plan_cap=1_000_000, subscription="active")
    server = emu.run_in_thread(app)
    try:
        yield app, server.url
    finally:
        server.stop()


def _received(app: Any) -> Counter[str]:
    """How many times the emulator received each event_id (duplicates included)."""
    return Counter(record["event_id"] for record in app.state.emulator.store.events())


def _lease_pid(outbox: Path) -> int | None:
    with sqlite3.connect(outbox, timeout=5) as conn:
        row = conn.execute("SELECT pid, until FROM sender_lease").fetchone()
    return None if row is None or row[1] < time.time() else int(row[0])


TRACK_FOREVER = """
client = make_client()
for n in range(1_000_000):
    event_id = f"order_{n}"
    say("start", event_id)
    client.track("purchase", event_id=event_id, value="10.00", currency="EUR",
                 user_data={"email": f"buyer{n}@example.com"})
    say("done", event_id)
"""


def test_kill_9_mid_stream_then_a_new_process_delivers_exactly_the_tracked_events(
    emulator: tuple[Any, str], tmp_path: Path
) -> None:
    app, url = emulator
    app.state.chaos.go_down()  # the API is unreachable while events are tracked
    outbox = tmp_path / "outbox.sqlite3"
    env = script_env(url, str(outbox), API_KEY)
    tracker = spawn_python(PREAMBLE + TRACK_FOREVER, env=env)
    assert tracker.stdout is not None
    lines = []
    for line in tracker.stdout:
        lines.append(line.split())
        if sum(kind == "done" for kind, _ in lines) >= 300:
            break
    tracker.send_signal(signal.SIGKILL)
    tracker.wait(timeout=10)
    with tracker:  # not communicate(): it would skip what is buffered in tracker.stdout
        rest = tracker.stdout.read()
    lines += [line.split() for line in rest.splitlines() if len(line.split()) == 2]
    done = {event_id for kind, event_id in lines if kind == "done"}
    started = {event_id for kind, event_id in lines if kind == "start"}
    assert tracker.returncode == -signal.SIGKILL
    assert not _received(app)

    app.state.chaos.come_up()
    result = run_python(PREAMBLE + "say('flushed', make_client().flush(30))", env=env)
    assert "flushed True" in result.stdout, result.stderr
    received = _received(app)
    assert done <= set(received) <= started
    assert set(received.values()) == {1}


def test_four_forked_processes_share_one_outbox_and_the_killed_sender_hands_over(
    sink: Sink, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    launcher = spawn_python(
        PREAMBLE
        + """
children = []
for worker in range(4):
    pid = os.fork()
    if pid == 0:
        client = make_client()
        for n in range(400):
            client.track("lead", event_id=f"w{worker}_{n}")
            say("done", os.getpid(), f"w{worker}_{n}")
            time.sleep(0.004)
        say("flushed", os.getpid(), client.flush(30))
        say("leader", os.getpid(), client.stats()["leader"])  # 1: this process delivers
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
say("all", "exited", "now")
""",
        env=script_env(sink.url, str(outbox), API_KEY),
    )
    assert launcher.stdout is not None
    done: set[str] = set()
    killed = None
    successors: set[int] = set()
    with launcher:
        try:
            for line in launcher.stdout:
                kind, _pid, what = line.split()
                if kind == "done":
                    done.add(what)
                if killed is None and len(done) >= 300:
                    killed = _lease_pid(outbox)
                    assert killed is not None
                    os.kill(killed, signal.SIGKILL)
                elif kind == "leader" and what == "1":
                    successors.add(int(_pid))
                if kind == "flushed":
                    assert what == "True"
            assert launcher.wait(timeout=60) == 0
        finally:
            if launcher.poll() is None:  # a failure: stop the launcher and its children
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
        stderr = launcher.stderr.read() if launcher.stderr else ""
    assert killed is not None, stderr
    assert successors - {killed}, "no other process took the sender lease over"
    assert len(done) >= 1200 - 400  # the killed worker stopped early
    assert sink.wait_for(lambda: done <= set(sink.accepted), 20)
    # A request the killed sender had in flight may have been answered without being
    # acked: it is sent again with the same Idempotency-Key, and the API counts it once.
    # Nothing else is ever sent twice.
    resent = [event_id for event_id, count in sink.accepted.items() if count > 1]
    assert len(resent) <= 32
    assert all(sink.accepted[event_id] == 2 for event_id in resent)


def test_a_fork_after_track_leaves_parent_and_child_delivering_without_deadlock(
    sink: Sink, tmp_path: Path
) -> None:
    result = run_python(
        PREAMBLE
        + """
client = make_client()
for n in range(20):
    client.track("lead", event_id=f"before_{n}")
stop = threading.Event()
count = []
def busy():
    n = 0
    while not stop.is_set():
        client.track("lead", event_id=f"busy_{n}")
        n += 1
    count.append(n)
thread = threading.Thread(target=busy)
thread.start()
time.sleep(0.05)
pid = os.fork()
if pid == 0:
    for n in range(20):
        client.track("lead", event_id=f"child_{n}")
    say("child", client.flush(20))
    os._exit(0)
for n in range(20):
    client.track("lead", event_id=f"after_{n}")
stop.set()
thread.join()
_, status = os.waitpid(pid, 0)
say("parent", client.flush(20), status, count[0])
""",
        env=script_env(sink.url, str(tmp_path / "outbox.sqlite3"), API_KEY),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["child"] == "True"
    flushed, status, busy = lines["parent"].split()
    assert (flushed, status) == ("True", "0")
    expected = {f"{kind}_{n}" for kind in ("before", "child", "after") for n in range(20)}
    expected |= {f"busy_{n}" for n in range(int(busy))}
    assert set(sink.accepted) == expected
    assert set(sink.accepted.values()) == {1}


def test_the_outbox_file_holds_no_plaintext_pii_and_no_api_key(sink: Sink, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    sink.down()  # keep the events in the outbox
    result = run_python(
        PREAMBLE
        + """
client = make_client()
for n in range(3):  # the first is committed to SQLite, the next go through the journal
    client.track("purchase", event_id=f"p{n}", value="49.90", currency="EUR", user_data={
        "email": "Jane.Doe@Example.com", "phone": "+1 415 555 0123", "external_id": "cust-8472"})
client.track("purchase", value="0.10", currency="EUR", event_id="bad", user_data={"email": "x"})
say("stats", client.stats()["pending"])
os.kill(os.getpid(), signal.SIGKILL)  # leave the journal segment behind
""",
        env=script_env(sink.url, str(outbox), API_KEY),
    )
    assert "stats 3" in result.stdout, result.stderr
    journal = outbox.with_name(outbox.name + ".journal")
    segments = sorted(journal.iterdir())
    assert segments
    files = [outbox, outbox.with_name(outbox.name + "-wal"), *segments]
    raw = b"".join(path.read_bytes() for path in files if path.exists()).lower()
    for secret in (
        b"jane.doe@example.com",
        b"jane.doe",
        b"4155550123",
        b"415 555",
        b"cust-8472",
        API_KEY.lower().encode(),
        b"rp_test_",
    ):
        assert secret not in raw
    digest = b"86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
    assert digest in raw  # the hashed email is what is stored
    assert digest in b"".join(path.read_bytes() for path in segments)
    for path in (outbox, *segments):
        assert os.stat(path).st_mode & 0o077 == 0
    assert os.stat(journal).st_mode & 0o077 == 0
