"""Runner scheduling on virtual time (no wall clock): no drift, no burst, skips counted."""

from __future__ import annotations

import asyncio

from edge_agent.backoff import Backoff
from edge_agent.drivers.base import DeviceUnavailable
from edge_agent.readings import Batch, Quality, Reading
from edge_agent.runner import DeviceRunner


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


class ScriptedDriver:
    """Each poll takes the next duration of virtual time; None means 'device unavailable'."""

    def __init__(self, vt: VirtualTime, durations: list[float | None]) -> None:
        self.vt = vt
        self.durations = durations
        self.started: list[float] = []

    async def connect(self) -> None:
        pass

    async def poll(self) -> list[Reading]:
        self.started.append(self.vt.now)
        i = len(self.started) - 1
        d = self.durations[i] if i < len(self.durations) else 0.0
        if d is None:
            raise DeviceUnavailable("gone")
        self.vt.now += d
        await asyncio.sleep(0)
        return [Reading("p", 1, Quality.GOOD, 0)]

    async def close(self) -> None:
        pass

    def describe(self) -> str:
        return "scripted"


async def run_until(
    vt: VirtualTime, driver: ScriptedDriver, polls: int, interval: float
) -> tuple[DeviceRunner, list[Batch]]:
    batches: list[Batch] = []
    runner = DeviceRunner(
        "dev",
        driver,
        ["p"],
        interval=interval,
        emit=batches.append,
        backoff=Backoff(1.0, 1.0),
        clock=vt.clock,
        sleep=vt.sleep,
    )
    task = asyncio.create_task(runner.run())
    while len(driver.started) < polls:  # noqa: ASYNC110 - steps the virtual clock's tasks
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return runner, batches


async def test_polls_stay_on_the_grid() -> None:
    vt = VirtualTime()
    driver = ScriptedDriver(vt, [0.03] * 20)
    runner, _ = await run_until(vt, driver, 20, 0.1)
    assert all(abs(t - 0.1 * i) < 1e-9 for i, t in enumerate(driver.started))
    assert runner.stats.skipped == 0


async def test_a_poll_ending_in_the_next_slot_costs_no_slot() -> None:
    vt = VirtualTime()
    driver = ScriptedDriver(vt, [0.0, 0.15, 0.0, 0.0, 0.0])  # poll 2 overruns by half a slot
    runner, _ = await run_until(vt, driver, 5, 0.1)
    assert [round(t, 6) for t in driver.started] == [0.0, 0.1, 0.25, 0.3, 0.4]
    assert runner.stats.skipped == 0


async def test_a_long_stall_skips_whole_slots_and_does_not_burst() -> None:
    vt = VirtualTime()
    driver = ScriptedDriver(vt, [0.0, 0.55, 0.0, 0.0])  # poll 2 stalls for 5.5 slots
    runner, _ = await run_until(vt, driver, 4, 0.1)
    assert [round(t, 6) for t in driver.started] == [0.0, 0.1, 0.65, 0.7]
    assert runner.stats.skipped == 4  # the slots at 0.2 .. 0.5 passed entirely


async def test_unavailable_device_backs_off_and_reports_bad_once_per_attempt() -> None:
    vt = VirtualTime()
    driver = ScriptedDriver(vt, [None, None, 0.0, 0.0])
    runner, batches = await run_until(vt, driver, 4, 0.1)
    assert [b.readings[0].quality for b in batches[:2]] == [Quality.BAD, Quality.BAD]
    assert batches[0].readings[0].error == "unreachable"
    gaps = [b - a for a, b in zip(driver.started, driver.started[1:], strict=False)]
    assert 0.5 <= gaps[0] <= 1.0  # backoff (jittered in [d/2, d]), not the poll interval
    assert runner.stats.failed_polls == 2
