"""Capped exponential backoff with jitter. Pure arithmetic; the randomness is injected."""

from __future__ import annotations

import random


class Backoff:
    """Delays of initial, 2x, 4x ... up to `cap`, each drawn from [d/2, d] so that a fleet of
    gateways that lost the same broker does not reconnect in lockstep."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial, self.cap = initial, cap
        self.attempts = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.initial * (2 ** min(self.attempts, 30)))
        self.attempts += 1
        return delay * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        self.attempts = 0
