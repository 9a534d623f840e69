"""bench.run's measurement: one window of a process's CPU, and what a scenario made of it."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.proc import CLK_TCK, ProcSample, machine_sample, proc_sample
from bench.run_counter import DeviceTally


@dataclass
class Window:
    """What one measured window saw: the target process, its helpers and the machine."""

    seconds: float
    t0: float  # monotonic
    t1: float
    wall0: float  # the same instants on the wall clock, for the agent's epoch `ts`
    wall1: float
    target: tuple[ProcSample, ProcSample]
    others: dict[str, float]  # CPU seconds (schedstat) of the helpers, by role
    machine_busy: float  # fraction of all cores
    steal: float  # fraction of all cores
    samples: list[tuple[float, int]]  # (monotonic, target sched_ns), about every second

    @property
    def cpu_s(self) -> float:
        return (self.target[1].ticks - self.target[0].ticks) / CLK_TCK

    @property
    def sched_s(self) -> float:
        return (self.target[1].sched_ns - self.target[0].sched_ns) / 1e9

    @property
    def main_share(self) -> float:
        """The main thread's part of the process's CPU (the agent: its event loop)."""
        total = self.target[1].sched_ns - self.target[0].sched_ns
        return (self.target[1].main_ns - self.target[0].main_ns) / total if total else math.nan

    @property
    def switches(self) -> int:
        return self.target[1].switches - self.target[0].switches


def measure(seconds: float, target: int, helpers: dict[str, list[int]]) -> Window:
    def helper_ns() -> dict[str, int]:
        out: dict[str, int] = {}
        for role, pids in helpers.items():
            out[role] = 0
            for pid in pids:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    out[role] += proc_sample(pid).sched_ns
        return out

    h0, m0 = helper_ns(), machine_sample()
    t0, wall0, p0 = time.monotonic(), time.time(), proc_sample(target)
    samples = [(t0, p0.sched_ns)]
    end = t0 + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(1.0, end - now))
        samples.append((time.monotonic(), proc_sample(target).sched_ns))
    t1, wall1, p1 = time.monotonic(), time.time(), proc_sample(target)
    samples[-1] = (t1, p1.sched_ns)
    m1, h1 = machine_sample(), helper_ns()
    total = max(1, m1.total - m0.total)
    return Window(
        seconds=t1 - t0,
        t0=t0,
        t1=t1,
        wall0=wall0,
        wall1=wall1,
        target=(p0, p1),
        others={role: (h1[role] - h0[role]) / 1e9 for role in helpers},
        machine_busy=(m1.busy - m0.busy) / total,
        steal=(m1.steal - m0.steal) / total,
        samples=samples,
    )


def sub_window_length(seconds: float) -> float:
    return 5.0 if seconds >= 15 else 2.0


def sub_windows(window: Window, count: Callable[[float, float], int], length: float) -> list[float]:
    """CPU per reading (us, schedstat) in consecutive sub-windows of about `length` s."""
    out = []
    start = window.samples[0]
    for t, ns in window.samples[1:]:
        if t - start[0] >= length - 0.5:
            readings = count(start[0], t)
            if readings:
                out.append((ns - start[1]) / 1e3 / readings)
            start = (t, ns)
    return out


@dataclass
class Result:
    scenario: str
    role: str  # "agent" or "floor"
    devices: int
    points: int
    interval: float
    window: Window | None = None
    readings: int = 0
    messages: int = 0
    rss_kib: int = 0
    hwm_kib: int = 0
    spread_us: list[float] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)  # readings/s per device, by poll times
    window_skipped: int = 0  # poll slots missing between consecutive polls in the window
    tallies: dict[str, DeviceTally] = field(default_factory=dict)
    skipped: int = 0  # floor: slots its own loop skipped
    latency_ms: list[float] = field(default_factory=list)
    log_counts: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stop_s: float = 0.0
    hang: str = ""  # the stacks of an agent that did not stop on SIGTERM
    failure: str | None = None

    @property
    def expected(self) -> float:
        if self.window is None:
            return 0.0
        return self.devices * self.points * self.window.seconds / self.interval

    @property
    def us_per_reading(self) -> float:
        if self.window is None or not self.readings:
            return math.nan
        return self.window.cpu_s * 1e6 / self.readings

    @property
    def sched_us_per_reading(self) -> float:
        if self.window is None or not self.readings:
            return math.nan
        return self.window.sched_s * 1e6 / self.readings

    @property
    def nominal_rate(self) -> float:
        return self.points / self.interval

    @property
    def per_device_per_s(self) -> float:
        """The slowest device's readings per second, from its poll times in the window."""
        if len(self.rates) < self.devices:
            return math.nan
        return min(self.rates.values())

    @property
    def rate_ok(self) -> bool:
        """Every poll slot of the window polled and delivered: every device at the nominal
        rate (within 0.2 %), no skipped slot between its polls in the window, and over the
        whole run no lost or repeated seq and no bad reading.

        The count of arrivals in the window is not used: messages arrive in bursts (group
        commit) and late (latency can exceed the interval), so its edges may gain or lose a
        message per device without any poll being lost.
        """
        if self.window is None or not self.per_device_per_s >= 0.998 * self.nominal_rate:
            return False
        if self.window_skipped:
            return False
        if self.role == "floor":
            return True
        return (
            all(
                t.seq_missing == 0 and t.seq_repeated == 0 and t.bad == 0
                for t in self.tallies.values()
            )
            and len(self.tallies) == self.devices
        )

    def judge_polls(self, times: dict[str, list[float]]) -> None:
        """Rates and skipped slots from each device's poll times in the window."""
        self.rates = poll_rates(times, self.points)
        self.window_skipped = skipped_in(times, self.interval)


def skipped_in(times: dict[str, list[float]], interval: float) -> int:
    """Poll slots with no poll, from each device's poll times (seconds) in a window.

    The runner polls on a fixed grid (start + k * interval) and skips a slot only when a
    poll ends after the next slot began. Counting slots between the first and the last
    poll, less the polls seen, finds every skip; a poll that merely started late (the
    process was descheduled) still fills its slot and is not counted.
    """
    missing = 0
    for ts in times.values():
        if len(ts) >= 2:
            slots = round((max(ts) - min(ts)) / interval) + 1
            missing += max(0, slots - len(ts))
    return missing


def poll_rates(times: dict[str, list[float]], points: int) -> dict[str, float]:
    """Readings per second of each device from its poll times (seconds) in a window: the
    mean poll period, so that the edges of the window cannot add or remove a poll."""
    out = {}
    for device, ts in times.items():
        ts = sorted(ts)
        if len(ts) >= 2 and ts[-1] > ts[0]:
            out[device] = points * (len(ts) - 1) / (ts[-1] - ts[0])
    return out
