"""Timing rules: full-jitter backoff, pause lengths, adaptive concurrency and the breaker."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roasproof._delivery._retry import Concurrency, Tuning, backoff, pause_delay, retry_delay

DEFAULT = Tuning()


@pytest.mark.parametrize(
    ("attempts", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (9, 256.0), (10, 300.0), (500, 300.0)],
)
def test_backoff_doubles_from_one_second_up_to_five_minutes(attempts: int, ceiling: float) -> None:
    assert backoff(attempts, 1.0, 300.0, rand=lambda: 1.0) == ceiling
    assert backoff(attempts, 1.0, 300.0, rand=lambda: 0.0) == 0.0


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=1))
def test_backoff_is_full_jitter_within_zero_and_the_cap(attempts: int, draw: float) -> None:
    assert 0.0 <= backoff(attempts, 1.0, 300.0, rand=lambda: draw) <= 300.0


def test_retry_after_is_a_floor_for_the_next_attempt() -> None:
    assert retry_delay(1, 30.0, DEFAULT, rand=lambda: 0.5) == 30.0
    assert retry_delay(9, 30.0, DEFAULT, rand=lambda: 0.5) == 128.0
    assert retry_delay(1, None, DEFAULT, rand=lambda: 0.5) == 0.5


def test_quota_pauses_honour_retry_after_else_double_from_a_minute_to_an_hour() -> None:
    assert pause_delay("quota", 0, 42.0, DEFAULT) == 42.0
    assert [pause_delay("quota", n, None, DEFAULT) for n in (0, 1, 2, 7)] == [
        60.0,
        120.0,
        240.0,
        3600.0,
    ]


def test_auth_pauses_probe_after_a_minute_doubling_to_half_an_hour() -> None:
    assert pause_delay("auth", 0, 99.0, DEFAULT) == 60.0
    assert pause_delay("auth", 10, None, DEFAULT) == 1800.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_concurrency_grows_one_per_healthy_window_up_to_the_maximum() -> None:
    limit = Concurrency(6, DEFAULT, Clock())
    assert limit.limit == 4
    for _ in range(4):
        limit.succeeded()
    assert limit.limit == 5
    for _ in range(50):
        limit.succeeded()
    assert limit.limit == 6
    assert limit.allowed() == 6


def test_scattered_failures_do_not_shrink_the_limit_but_a_failing_window_halves_it() -> None:
    limit = Concurrency(64, Tuning(initial_in_flight=8), Clock())
    for n in range(80):  # 30% failures
        limit.failed() if n % 10 < 3 else limit.succeeded()
    assert limit.limit > 8
    before = limit.limit
    for _ in range(before):
        limit.failed()
    assert limit.limit == before // 2


def test_the_breaker_opens_after_consecutive_failures_and_lets_one_probe_through() -> None:
    clock = Clock()
    tuning = Tuning(breaker_threshold=3, breaker_base=1.0, breaker_cap=4.0)
    limit = Concurrency(8, tuning, clock)
    for _ in range(3):
        limit.failed()
    assert limit.breaker_open
    assert limit.allowed() == 0
    assert limit.wait_time() == 1.0
    limit.failed()  # a straggler sent before the breaker opened
    assert limit.wait_time() == 1.0
    clock.now = 1.0
    assert limit.allowed() == 1
    limit.failed()  # the probe failed: the step doubles
    assert limit.wait_time() == 2.0
    clock.now = 10.0
    limit.failed()
    assert limit.wait_time() == 4.0  # capped
    limit.succeeded()
    assert not limit.breaker_open
    assert limit.allowed() == 4
    assert limit.wait_time() == 0.0


def test_reset_starts_from_the_initial_limit() -> None:
    limit = Concurrency(32, DEFAULT, Clock())
    for _ in range(100):
        limit.succeeded()
    limit.reset()
    assert limit.limit == 4
