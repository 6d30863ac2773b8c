"""``roasproof outbox ...`` and ``roasproof worker`` on a real outbox and a real sink."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from roasproof._cli_outbox import outbox_group, worker_command
from roasproof._config import Settings
from roasproof._delivery import Engine, RejectedSummary
from roasproof._delivery._admin import OutboxAdmin

from .sink import Reply, Sink
from .support import API_KEY, body_for, spawn_python

MakeEngine = Callable[..., Engine]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _dead_letter(sink: Sink, make_engine: MakeEngine) -> Engine:
    sink.queue(Reply(422, body=b'{"field":"currency","message":"unknown currency XXX"}'))
    engine = make_engine()
    engine.enqueue("purchase_1", "purchase", body_for("purchase_1"))
    assert engine.flush(5)
    return engine


def test_dead_shows_the_servers_field_and_reason(
    runner: CliRunner, sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    _dead_letter(sink, make_engine)
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "dead"])
    assert result.exit_code == 0, result.output
    assert "purchase_1" in result.output
    assert "422 field=currency" in result.output
    assert "unknown currency XXX" in result.output


def test_dead_as_json_and_by_event_id(
    runner: CliRunner, sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    _dead_letter(sink, make_engine)
    result = runner.invoke(
        outbox_group, ["--outbox", str(outbox_path), "dead", "--json", "purchase_1"]
    )
    [row] = json.loads(result.output)
    assert row["field"] == "currency"
    assert row["status_code"] == 422


def test_retry_requeues_a_dead_letter_which_then_gets_delivered(
    runner: CliRunner, sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    engine = _dead_letter(sink, make_engine)
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "retry", "purchase_1"])
    assert result.output.strip() == "requeued 1 dead letter(s)"
    assert engine.flush(5)
    assert sink.accepted == {"purchase_1": 1}
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "dead"])
    assert "no dead letters" in result.output


def test_retry_needs_ids_or_all(runner: CliRunner, outbox_path: Path) -> None:
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "retry"])
    assert result.exit_code == 2
    assert "--all" in result.output


def test_purge_dead_deletes_dead_letters_only(
    runner: CliRunner, sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    engine = _dead_letter(sink, make_engine)
    sink.down()
    engine.enqueue("purchase_2", "purchase", body_for("purchase_2"))
    assert runner.invoke(outbox_group, ["--outbox", str(outbox_path), "purge"]).exit_code == 2
    refused = runner.invoke(
        outbox_group, ["--outbox", str(outbox_path), "purge", "--dead"], input="n\n"
    )
    assert refused.exit_code == 1
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "purge", "--dead", "--yes"])
    assert "purged 1 dead letter(s)" in result.output
    admin = OutboxAdmin(outbox_path)
    try:
        assert admin.status().dead == 0
        assert admin.status().pending == 1
    finally:
        admin.close()


def test_status_shows_counts_pause_and_sender(
    runner: CliRunner, sink: Sink, make_engine: MakeEngine, outbox_path: Path
) -> None:
    sink.rule = lambda request: Reply(429, headers={"Retry-After": "3600"})
    engine = make_engine()
    engine.enqueue("purchase_1", "purchase", body_for("purchase_1"))
    engine.enqueue("purchase_2", "purchase", body_for("purchase_2"))
    engine.record_rejected(RejectedSummary("purchase", "p3", ("value",), "value: bad", time.time()))
    assert sink.wait_for(lambda: engine.pause is not None)
    time.sleep(0.1)
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "status"])
    assert result.exit_code == 0, result.output
    assert "pending   2" in result.output
    assert "QUOTA" in result.output
    assert "rejected  1" in result.output
    assert "sender    pid" in result.output
    data = json.loads(
        runner.invoke(outbox_group, ["--outbox", str(outbox_path), "status", "--json"]).output
    )
    assert data["pending"] == 2
    assert data["pause"]["reason"] == "quota"
    rejected = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "rejected"])
    assert "fix: value" in rejected.output
    resumed = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "resume"])
    assert "pause ended" in resumed.output


def test_commands_say_when_there_is_no_outbox(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(outbox_group, ["--outbox", str(tmp_path / "none.sqlite3"), "status"])
    assert result.exit_code == 2
    assert "no outbox at" in result.output
    memory = runner.invoke(outbox_group, ["--outbox", ":memory:", "status"])
    assert memory.exit_code == 2


def test_the_default_outbox_path_comes_from_the_environment(
    runner: CliRunner,
    outbox_path: Path,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_engine(make_settings(api_key=None)).enqueue("a", "lead", body_for("a"))
    monkeypatch.setenv("ROASPROOF_OUTBOX", str(outbox_path))
    result = runner.invoke(outbox_group, ["status"])
    assert "pending   1" in result.output


def test_drain_delivers_everything_with_progress(
    runner: CliRunner,
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
) -> None:
    store = make_engine(make_settings(api_key=None))
    for n in range(100):
        store.enqueue(f"d{n}", "lead", body_for(f"d{n}"))
    store.close()
    result = runner.invoke(
        outbox_group,
        ["--outbox", str(outbox_path), "drain", "--api-key", API_KEY, "--endpoint", sink.url],
    )
    assert result.exit_code == 0, result.output
    assert "delivered 100 event(s)" in result.output
    assert len(sink.accepted) == 100
    again = runner.invoke(
        outbox_group,
        ["--outbox", str(outbox_path), "drain", "--api-key", API_KEY, "--endpoint", sink.url],
    )
    assert "nothing to deliver" in again.output


def test_drain_fails_when_delivery_is_paused(
    runner: CliRunner,
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
) -> None:
    sink.queue(Reply(401))
    store = make_engine(make_settings(api_key=None))
    store.enqueue("d", "lead", body_for("d"))
    store.close()
    result = runner.invoke(
        outbox_group,
        [
            "--outbox",
            str(outbox_path),
            "drain",
            "--api-key",
            API_KEY,
            "--endpoint",
            sink.url,
            "--timeout",
            "3",
        ],
    )
    assert result.exit_code == 1
    assert "paused (auth)" in result.output


def test_drain_and_worker_need_an_api_key_and_valid_settings(
    runner: CliRunner, outbox_path: Path
) -> None:
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "drain"])
    assert result.exit_code == 2
    assert "no API key" in result.output
    bad = runner.invoke(
        worker_command, ["--outbox", str(outbox_path), "--api-key", "k", "--endpoint", "ftp://nope"]
    )
    assert bad.exit_code == 2


def test_the_worker_delivers_an_outbox_until_sigterm(
    sink: Sink, make_engine: MakeEngine, make_settings: Callable[..., Settings], outbox_path: Path
) -> None:
    store = make_engine(make_settings(api_key=None))
    for n in range(20):
        store.enqueue(f"w{n}", "lead", body_for(f"w{n}"))
    worker = spawn_python(
        "from roasproof._cli_outbox import worker_command; worker_command()",
        env={
            "ROASPROOF_OUTBOX": str(outbox_path),
            "ROASPROOF_API_KEY": API_KEY,
            "ROASPROOF_ENDPOINT": sink.url,
        },
    )
    try:
        assert sink.wait_for(lambda: len(sink.accepted) == 20, 20)
        store.enqueue("w20", "lead", body_for("w20"))
        assert sink.wait_for(lambda: len(sink.accepted) == 21, 10)
    finally:
        worker.send_signal(signal.SIGTERM)
        with worker:
            out, err = worker.communicate(timeout=20)
    assert worker.returncode == 0, err
    assert "roasproof worker stopped" in out


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(-3, "0 s"), (42, "42 s"), (600, "10 min"), (7300, "2.0 h"), (200000, "2.3 days")],
)
def test_ages_are_shown_in_readable_units(seconds: float, shown: str) -> None:
    from roasproof._cli_outbox import _ago

    assert _ago(seconds) == shown


def test_an_outbox_from_a_newer_release_is_a_settings_error(
    runner: CliRunner,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
) -> None:
    import sqlite3

    make_engine(make_settings(api_key=None)).enqueue("a", "lead", body_for("a"))
    with sqlite3.connect(outbox_path) as raw:
        raw.execute("PRAGMA user_version = 99")
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "status"])
    assert result.exit_code == 2
    assert "upgrade roasproof" in result.output


def test_status_of_an_idle_empty_outbox(
    runner: CliRunner,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
) -> None:
    engine = make_engine(make_settings(api_key=None))
    engine.enqueue("a", "lead", body_for("a"))
    engine.store.claim("t", 1, time.time(), 30.0)
    result = runner.invoke(outbox_group, ["--outbox", str(outbox_path), "status"])
    assert "being sent 1" in result.output
    assert "paused    no" in result.output
    assert "sender    none" in result.output
    assert "dead      0\n" in result.output


def test_the_worker_command_runs_in_process_until_sigterm(
    runner: CliRunner,
    sink: Sink,
    make_engine: MakeEngine,
    make_settings: Callable[..., Settings],
    outbox_path: Path,
) -> None:
    import os
    import threading

    make_engine(make_settings(api_key=None)).enqueue("w", "lead", body_for("w"))
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def stop_when_delivered() -> None:
        sink.wait_for(lambda: "w" in sink.accepted, 10)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=stop_when_delivered)
    killer.start()
    try:
        result = runner.invoke(
            worker_command,
            [
                "--outbox",
                str(outbox_path),
                "--api-key",
                API_KEY,
                "--endpoint",
                sink.url,
                "--senders",
                "all",
            ],
        )
    finally:
        killer.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert result.exit_code == 0, result.output
    assert "roasproof worker stopped" in result.output
    assert sink.accepted == {"w": 1}
