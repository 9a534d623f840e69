"""DeviceRunner: wraps any driver with scheduling, timeouts, backoff, statistics and logging.

Polls are deadline-scheduled on the monotonic clock and never overlap: when a poll overruns
into the next slot, that slot's poll starts at once (late, but not lost); slots that passed
entirely are skipped and counted rather than fired in a burst. When
the device is unavailable every point is reported bad once per attempt, then the runner
backs off (capped, jittered) before it reconnects. It logs transitions only: once when the
device goes away, once when it comes back with the length of the outage.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .backoff import Backoff
from .drivers.base import DeviceUnavailable, Driver
from .readings import Batch, Quality, Reading, now_ms

log = logging.getLogger(__name__)


@dataclass
class RunnerStats:
    polls: int = 0
    failed_polls: int = 0
    skipped: int = 0  # poll slots missed because a poll overran
    readings: int = 0
    bad_readings: int = 0
    last_poll_seconds: float = 0.0
    available: bool = False


class DeviceRunner:
    def __init__(
        self,
        name: str,
        driver: Driver,
        points: list[str],
        *,
        interval: float,
        emit: Callable[[Batch], None],
        backoff: Backoff,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = name
        self.driver = driver
        self.points = points
        self.interval = interval
        self.emit = emit
        self.backoff = backoff
        self.clock = clock
        self.sleep = sleep  # injected with the clock, so tests can run on virtual time
        self.stats = RunnerStats()
        self._down_since: float | None = None
        self._connected = False
        self._described = False

    async def run(self) -> None:
        """Poll until cancelled. Never raises for anything the device does."""
        deadline = self.clock()
        try:
            while True:
                delay = deadline - self.clock()
                if delay > 0:
                    await self.sleep(delay)
                started = self.clock()
                if await self._poll_once():
                    deadline += self.interval
                    late = self.clock() - deadline
                    if late >= self.interval:
                        # Whole slots passed during the poll: skip them (no burst), count them.
                        # A poll that ends inside the next slot just starts that one late.
                        missed = math.floor(late / self.interval)
                        self.stats.skipped += missed
                        deadline += missed * self.interval
                else:
                    deadline = started + self.backoff.next()
        finally:
            await self.driver.close()

    async def _poll_once(self) -> bool:
        ts = now_ms()
        started = self.clock()
        try:
            if not self._connected:
                await self.driver.connect()
                self._connected = True
                if not self._described:
                    log.info("%s: %s", self.name, self.driver.describe())
                    self._described = True
            readings = await self.driver.poll()
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if not isinstance(err, DeviceUnavailable):
                log.exception("%s: unexpected driver error (a bug: please report it)", self.name)
                err = DeviceUnavailable(f"internal error: {err!r}")
                err.code = "internal_error"
            self._connected = False
            await self.driver.close()
            self._went_down(err)
            self.stats.failed_polls += 1
            self._publish(
                Batch(
                    self.name,
                    ts,
                    [
                        Reading(p, None, Quality.BAD, ts, getattr(err, "code", "internal_error"))
                        for p in self.points
                    ],
                )
            )
            return False
        self.stats.polls += 1
        self.stats.last_poll_seconds = self.clock() - started
        self._came_up()
        if readings:  # a subscription with no change since the last poll has nothing to say
            self._publish(Batch(self.name, ts, readings))
        return True

    def _publish(self, batch: Batch) -> None:
        self.stats.readings += len(batch.readings)
        self.stats.bad_readings += sum(1 for r in batch.readings if r.quality is not Quality.GOOD)
        self.emit(batch)

    def _went_down(self, err: Exception) -> None:
        self.stats.available = False
        if self._down_since is None:
            self._down_since = self.clock()
            log.warning("%s: unavailable: %s", self.name, err)

    def _came_up(self) -> None:
        self.backoff.reset()
        self.stats.available = True
        if self._down_since is not None:
            log.info("%s: available again after %.1f s", self.name, self.clock() - self._down_since)
            self._down_since = None
