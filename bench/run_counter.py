"""bench.run's subscriber: counts and checks the agent's telemetry rather than keeping it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.common import wait_for
from bench.subscriber import Subscriber, Telemetry


@dataclass
class DeviceTally:
    messages: int = 0
    readings: int = 0
    bad: int = 0  # readings whose quality is not good
    last_seq: int | None = None
    seq_missing: int = 0  # numbers skipped over
    seq_repeated: int = 0  # numbers seen again, or going backwards
    last_ts: int | None = None
    late: int = 0  # gaps of 1.5 intervals or more between consecutive polls: late or skipped
    skips: list[tuple[int, int]] = field(default_factory=list)  # (ts after a gap, intervals)


class TelemetryCounter(Subscriber):
    """A paho subscriber (its own network thread) that counts telemetry instead of keeping it.

    Every message is parsed (orjson, as the agent itself uses) to check `seq` (+1 each, per
    device) and the poll `ts`: a gap of 1.5 intervals or more between consecutive polls of a
    device is a skipped slot, which is how drift shows from outside (the agent counts its
    skipped polls but does not log them). Arrivals are kept as (monotonic arrival time,
    device, poll ts, readings) so that any window can be counted afterwards.
    """

    def __init__(self, port: int, topic: str, interval: float) -> None:
        super().__init__(port, topic, "bench-sub")
        self.interval_ms = interval * 1000
        self.tallies: dict[str, DeviceTally] = {}
        self.arrivals: list[tuple[float, str, int, int]] = []
        self.latencies_ms: list[float] = []  # arrival minus poll start, while `timing`
        self.timing = False

    def readings_between(self, t0: float, t1: float) -> int:
        """Readings that arrived between monotonic times t0 and t1."""
        return sum(n for t, _, _, n in list(self.arrivals) if t0 <= t < t1)

    def messages_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, _, _, _ in list(self.arrivals) if t0 <= t < t1)

    def poll_times(self, wall0: float, wall1: float) -> dict[str, list[float]]:
        """Per device, the poll start times (seconds, from the payload ts) in a wall window."""
        out: dict[str, list[float]] = {}
        for _, device, ts, _ in list(self.arrivals):
            if wall0 * 1000 <= ts < wall1 * 1000:
                out.setdefault(device, []).append(ts / 1000)
        return out

    def received(self, now: float, wall: float, msg: Telemetry) -> None:
        device, seq, ts, readings = msg.device, msg.seq, msg.ts, msg.readings
        tally = self.tallies.setdefault(device, DeviceTally())
        tally.messages += 1
        tally.readings += msg.count
        tally.bad += sum(1 for r in readings if r.get("q") != "good")
        if tally.last_seq is not None:
            if seq == tally.last_seq + 1:
                pass
            elif seq > tally.last_seq + 1:
                tally.seq_missing += seq - tally.last_seq - 1
            else:
                tally.seq_repeated += 1
        if tally.last_seq is None or seq > tally.last_seq:
            tally.last_seq = seq
        if tally.last_ts is not None and ts > tally.last_ts:
            slots = math.floor((ts - tally.last_ts) / self.interval_ms + 0.5) - 1
            if slots > 0:
                tally.late += 1
                tally.skips.append((ts, slots))
        tally.last_ts = ts
        self.arrivals.append((now, device, ts, msg.count))
        if self.timing:
            self.latencies_ms.append(wall * 1000 - ts)

    def wait_devices(self, names: Sequence[str], timeout: float) -> bool:
        return wait_for(lambda: all(n in self.tallies for n in names), timeout)
