"""The request context: the dataclass, binding, lazy capture and isolation.

The ContextVar is reset by the autouse fixture in conftest.py; every test here also
checks that it leaves nothing bound behind.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Iterator
from dataclasses import FrozenInstanceError, fields

import pytest

import roasproof
from roasproof import RequestContext, bind_context, current_context


@pytest.fixture(autouse=True)
def _nothing_left_bound() -> Iterator[None]:
    assert current_context() is None
    yield
    assert current_context() is None


def full_context() -> RequestContext:
    return RequestContext(**{f.name: f"{f.name}-value" for f in fields(RequestContext)})


# --- RequestContext -----------------------------------------------------------------------


def test_request_context_fields_are_the_documented_identifiers() -> None:
    assert [f.name for f in fields(RequestContext)] == [
        "visitor_id",
        "client_ip_address",
        "client_user_agent",
        "url",
        "fbc",
        "fbp",
        "fbclid",
        "gclid",
        "wbraid",
        "gbraid",
        "ttclid",
    ]


def test_request_context_defaults_to_all_none() -> None:
    assert all(getattr(RequestContext(), f.name) is None for f in fields(RequestContext))


def test_request_context_is_frozen() -> None:
    with pytest.raises(FrozenInstanceError):
        RequestContext().visitor_id = "v"  # type: ignore[misc]


def test_to_dict_keeps_only_non_empty_fields() -> None:
    assert RequestContext(visitor_id="v1", gclid="", fbp=None).to_dict() == {"visitor_id": "v1"}


def test_from_dict_round_trips_to_dict() -> None:
    context = full_context()
    assert RequestContext.from_dict(context.to_dict()) == context


def test_from_dict_ignores_unknown_and_empty_keys_and_stringifies() -> None:
    rebuilt = RequestContext.from_dict({"visitor_id": 42, "gclid": "", "email": "x", "fbp": None})
    assert rebuilt == RequestContext(visitor_id="42")


# --- bind_context -------------------------------------------------------------------------


def test_current_context_is_none_outside_a_request() -> None:
    assert roasproof.current_context() is None


def test_bind_context_binds_an_instance_and_restores_on_exit() -> None:
    context = RequestContext(visitor_id="v1")
    with bind_context(context):
        assert current_context() is context
    assert current_context() is None


def test_bind_context_restores_the_outer_context_when_nested() -> None:
    outer, inner = RequestContext(visitor_id="outer"), RequestContext(visitor_id="inner")
    with bind_context(outer):
        with bind_context(inner):
            assert current_context() is inner
        assert current_context() is outer


def test_bind_context_resets_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), bind_context(RequestContext(visitor_id="v")):
        raise RuntimeError("boom")
    assert current_context() is None


def test_bind_context_exit_without_enter_is_harmless() -> None:
    binding = bind_context(RequestContext())
    binding.__exit__(None, None, None)
    assert current_context() is None


def test_bind_context_exit_twice_is_harmless() -> None:
    binding = bind_context(RequestContext(visitor_id="v"))
    binding.__enter__()
    binding.__exit__(None, None, None)
    binding.__exit__(None, None, None)
    assert current_context() is None


# --- lazy capture -------------------------------------------------------------------------


def test_lazy_factory_is_never_called_when_nothing_asks() -> None:
    calls: list[int] = []

    def build() -> RequestContext:
        calls.append(1)
        return RequestContext()

    with bind_context(build):
        pass
    assert calls == []


def test_lazy_factory_is_called_once_and_cached() -> None:
    calls: list[int] = []

    def build() -> RequestContext:
        calls.append(1)
        return RequestContext(visitor_id="lazy")

    with bind_context(build):
        first = current_context()
        assert current_context() is first
    assert first == RequestContext(visitor_id="lazy")
    assert calls == [1]


def test_lazy_factory_returning_none_means_no_context_and_is_not_retried() -> None:
    calls: list[int] = []

    def build() -> None:
        calls.append(1)

    with bind_context(build):
        assert current_context() is None
        assert current_context() is None
    assert calls == [1]


def test_lazy_factory_error_reaches_the_caller_and_binding_still_resets() -> None:
    def build() -> RequestContext:
        raise LookupError("no request")

    with bind_context(build), pytest.raises(LookupError):
        current_context()
    assert current_context() is None


# --- isolation ----------------------------------------------------------------------------


async def test_interleaved_tasks_each_see_only_their_own_context() -> None:
    async def request(number: int) -> list[str | None]:
        seen: list[str | None] = []
        with bind_context(lambda: RequestContext(visitor_id=f"v{number}")):
            for _ in range(5):
                await asyncio.sleep(random.random() / 1000)
                context = current_context()
                seen.append(context.visitor_id if context else None)
        return seen

    results = await asyncio.gather(*(request(n) for n in range(200)))
    assert results == [[f"v{n}"] * 5 for n in range(200)]


async def test_context_bound_in_a_child_task_does_not_leak_to_the_parent() -> None:
    async def child() -> None:
        with bind_context(RequestContext(visitor_id="child")):
            await asyncio.sleep(0)
        bind_context(RequestContext(visitor_id="left-bound")).__enter__()

    await asyncio.create_task(child())
    assert current_context() is None


def test_threads_each_see_only_their_own_context() -> None:
    barrier = threading.Barrier(16)
    seen: dict[int, str | None] = {}

    def worker(number: int) -> None:
        with bind_context(RequestContext(visitor_id=f"t{number}")):
            barrier.wait()
            context = current_context()
            seen[number] = context.visitor_id if context else None

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {n: f"t{n}" for n in range(16)}


def test_new_thread_starts_without_the_callers_context() -> None:
    seen: list[RequestContext | None] = []
    with bind_context(RequestContext(visitor_id="main")):
        thread = threading.Thread(target=lambda: seen.append(current_context()))
        thread.start()
        thread.join()
    assert seen == [None]
