"""Unit: restart delays (doubling, cap, jitter, reset) and the restart budget, pure."""

import math
import random

import pytest

from helix_init.services.backoff import MAX_DOUBLINGS, RestartClock, delay_after
from helix_init.services.spec import Backoff

PLAIN = Backoff(initial=0.5, max=30.0, jitter=0.0, reset_after=60.0)


def crashes(clock: RestartClock, n: int, ran_for: float = 0.1) -> list[float]:
    delays = []
    for _ in range(n):
        clock.record_exit(ran_for)
        delays.append(clock.delay())
    return delays


def test_delays_double_from_initial_up_to_max() -> None:
    clock = RestartClock(PLAIN)
    assert crashes(clock, 8) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_ten_thousand_consecutive_crashes_never_overflow() -> None:
    # The 1,025th used to raise OverflowError (initial * 2 ** 1024).
    clock = RestartClock(Backoff(initial=0.001, max=0.001, jitter=0.2, reset_after=60.0))
    delays = crashes(clock, 12_000)
    assert clock.failures == 12_000
    assert all(math.isfinite(d) and 0 < d <= 0.001 for d in delays)


def test_huge_failure_counts_stay_at_max() -> None:
    for failures in (1_024, 1_025, 10**6, 10**18):
        assert delay_after(PLAIN, failures, 0.0) == 30.0


def test_the_cap_never_shortens_a_delay() -> None:
    # The smallest initial the parser allows, doubled MAX_DOUBLINGS times, is past the largest max.
    smallest = Backoff(initial=0.001, max=86_400.0, jitter=0.0)
    assert delay_after(smallest, MAX_DOUBLINGS + 1, 0.0) == 86_400.0


@pytest.mark.parametrize("spread", [-1.0, -0.3, 0.0, 0.7, 1.0])
def test_jitter_stays_within_its_share_and_under_max(spread: float) -> None:
    b = Backoff(initial=1.0, max=30.0, jitter=0.2)
    d = delay_after(b, 3, spread)  # base 4 s
    assert 4.0 * 0.8 <= d <= 4.0 * 1.2
    assert delay_after(b, 50, spread) <= 30.0


def test_jitter_comes_from_the_given_rng() -> None:
    b = Backoff(initial=1.0, max=30.0, jitter=0.5)
    a, c = RestartClock(b, random.Random(7)), RestartClock(b, random.Random(7))
    assert crashes(a, 5) == crashes(c, 5)
    assert len(set(crashes(RestartClock(b, random.Random(1)), 5))) == 5


def test_a_long_run_resets_the_sequence() -> None:
    clock = RestartClock(PLAIN)
    crashes(clock, 5)
    clock.record_exit(ran_for=60.0)
    assert clock.failures == 1
    assert clock.delay() == 0.5


def test_reset_starts_over() -> None:
    clock = RestartClock(PLAIN)
    crashes(clock, 3)
    clock.reset()
    assert clock.failures == 0


def test_budget() -> None:
    clock = RestartClock(PLAIN)
    crashes(clock, 3)
    assert not clock.exhausted(3)
    clock.record_exit(0.1)
    assert clock.exhausted(3)
    assert not clock.exhausted(0)  # 0 = unlimited
    clock.record_exit(60.0)
    assert not clock.exhausted(3)
