"""Backoff arithmetic: doubling, capped, jittered within [d/2, d], reset."""

from __future__ import annotations

import random

from edge_agent.backoff import Backoff


def test_doubles_up_to_the_cap_with_jitter_in_the_upper_half() -> None:
    b = Backoff(1.0, 30.0, random.Random(7))
    delays = [b.next() for _ in range(10)]
    nominal = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    for d, n in zip(delays, nominal, strict=True):
        assert n / 2 <= d <= n
    assert len(set(delays)) == len(delays)  # jittered: no two gateways in lockstep


def test_reset_starts_again_from_the_initial_delay() -> None:
    b = Backoff(0.5, 10.0, random.Random(1))
    for _ in range(8):
        b.next()
    b.reset()
    assert 0.25 <= b.next() <= 0.5


def test_many_attempts_do_not_overflow() -> None:
    b = Backoff(1.0, 60.0)
    for _ in range(10_000):
        assert b.next() <= 60.0
