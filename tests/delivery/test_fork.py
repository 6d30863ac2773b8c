"""Fork hooks and the checks for process models where a sender thread cannot run."""

from __future__ import annotations

import sys
import threading
import types
from collections.abc import Callable

import pytest

from roasproof._delivery import Engine, _fork

from .sink import Sink
from .support import body_for

MakeEngine = Callable[..., Engine]


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attributes.items():
        setattr(module, key, value)
    return module


def test_a_plain_process_has_no_problems() -> None:
    assert _fork.environment_problems() == []


def test_gevent_and_eventlet_monkey_patching_are_reported_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        sys.modules, "gevent.monkey", _module("gevent.monkey", is_module_patched=lambda m: True)
    )
    monkeypatch.setitem(
        sys.modules,
        "eventlet.patcher",
        _module("eventlet.patcher", is_monkey_patched=lambda m: m == "socket"),
    )
    problems = _fork.environment_problems()
    assert len(problems) == 2
    assert all("roasproof worker" in problem for problem in problems)


def test_unpatched_gevent_and_eventlet_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules, "gevent.monkey", _module("gevent.monkey", is_module_patched=lambda m: False)
    )
    monkeypatch.setitem(
        sys.modules,
        "eventlet.patcher",
        _module("eventlet.patcher", is_monkey_patched=lambda m: False),
    )
    assert _fork.environment_problems() == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, ["enable-threads", "py-call-uwsgi-fork-hooks"]),
        ({"enable-threads": True, "lazy-apps": True}, []),
        ({"threads": b"4", "py-call-uwsgi-fork-hooks": True}, []),
        ({"threads": b"1", "lazy-apps": True}, ["enable-threads"]),
        ({"threads": "many", "lazy-apps": True}, ["enable-threads"]),
    ],
)
def test_uwsgi_without_threads_or_fork_hooks_is_reported(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object], expected: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "uwsgi", _module("uwsgi", opt=options))
    problems = _fork.environment_problems()
    assert len(problems) == len(expected)
    for problem, flag in zip(problems, expected, strict=True):
        assert flag in problem


def test_the_engine_says_so_loudly_once_when_its_sender_starts(
    sink: Sink,
    make_engine: MakeEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "uwsgi", _module("uwsgi", opt={"lazy-apps": True}))
    sink.down()  # in a test the thread does run: it must not deliver while we count
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    engine.enqueue("b", "lead", body_for("b"))
    assert caplog.text.count("enable-threads = true") == 1
    assert caplog.records[0].levelname == "ERROR"
    # The sender may never run: track() commits to the outbox (for `roasproof worker`),
    # never to a journal only this process would move.
    assert engine.store.count() == 2
    assert engine.journal is not None
    assert engine.journal.pending == 0


def test_with_threads_a_missing_fork_hook_flag_keeps_the_journal(
    sink: Sink, make_engine: MakeEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uwsgi", _module("uwsgi", opt={"enable-threads": True}))
    assert not _fork.sender_may_stall()
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    engine.enqueue("b", "lead", body_for("b"))
    assert engine.flush(10) is True
    assert set(sink.accepted) == {"a", "b"}


def test_fork_hooks_hold_the_locks_and_rebuild_state_in_the_child(
    sink: Sink, make_engine: MakeEngine
) -> None:
    engine = make_engine()
    engine.enqueue("a", "lead", body_for("a"))
    parent_sender = engine.sender
    assert parent_sender is not None
    _fork._before()  # what os.fork() runs first
    got: list[bool] = []
    other = threading.Thread(target=lambda: got.append(engine.store._lock.acquire(timeout=0.05)))
    other.start()
    other.join()
    assert got == [False]  # no other thread can be mid-SQLite while the process forks
    _fork._after_parent()
    assert engine.sender is parent_sender
    held = (engine.store._lock, engine._lock)
    _fork._before()
    _fork._after_child()  # as in the child: the parent's sender and connections are dropped
    assert engine.sender is None
    assert engine.store._lock is not held[0]
    assert engine._lock is not held[1]
    assert engine.stats()["enqueued"] == 0
    # Unlike a real child, this process still runs the parent's sender: let it finish.
    for lock in held:
        lock.release()
    parent_sender.stop(1)
    engine.enqueue("b", "lead", body_for("b"))
    assert engine.sender is not None
    assert engine.sender is not parent_sender
    assert engine.flush(5) is True
    assert set(sink.accepted) == {"a", "b"}
