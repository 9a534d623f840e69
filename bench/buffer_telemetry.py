"""bench.buffer's telemetry: messages made as the agent makes them, and a subscriber checking
what arrives."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.buffer_setup import DEVICE, INTERVAL, POINTS, SITE
from bench.common import wait_for
from bench.subscriber import Subscriber, Telemetry


def shortest_float32(value: float) -> float:
    """The value as the agent's Modbus driver publishes a float32: the shortest decimal that
    is the same float32 (edge_agent/drivers/modbus/decode.py)."""
    exact = struct.pack(">f", value)
    wide = struct.unpack(">f", exact)[0]
    for digits in (7, 8):
        candidate = float(f"{wide:.{digits}g}")
        if struct.pack(">f", candidate) == exact:
            return candidate
    return float(wide)


def bank_values(elapsed: float, fixed: bool) -> list[float]:
    """What the simulator serves in the first POINTS floats of its bench bank."""
    from simulators.register_map import bench_values

    raw = bench_values(None if fixed else elapsed)[:POINTS]
    return [shortest_float32(v) for v in raw]


def telemetry(
    prefix: str, count: int, fixed: bool, first_ts_ms: int, sink: Callable[[Any], None]
) -> None:
    """`count` telemetry messages of DEVICE, one per poll slot from `first_ts_ms`, made by
    the agent's own Pipeline (seq, JSON) from the simulator's values; handed to `sink`."""
    from edge_agent.pipeline import Pipeline
    from edge_agent.readings import Batch, Quality, Reading

    pipeline = Pipeline(prefix, 1, sink, {})
    names = [f"v{i:03d}" for i in range(POINTS)]
    step = round(INTERVAL * 1000)
    for n in range(count):
        ts = first_ts_ms + n * step
        values = bank_values(n * INTERVAL, fixed)
        pipeline.emit(
            Batch(
                DEVICE,
                ts,
                [Reading(name, v, Quality.GOOD, ts) for name, v in zip(names, values, strict=True)],
            )
        )


def payload_sizes(fixed: bool) -> tuple[float, float]:
    """Mean JSON size and mean stored (zlib) size of a telemetry message, bytes."""
    from edge_agent.buffer.store import encode

    out: list[Any] = []
    telemetry(f"maintenance4/{SITE}/gw", 50, fixed, 1_790_000_000_000, out.append)
    raw = sum(len(m.payload) for m in out) / len(out)
    stored = sum(len(encode(m.payload)[1]) for m in out) / len(out)
    return raw, stored


@dataclass
class Tally:
    """What arrived of one device's telemetry."""

    messages: int = 0
    readings: int = 0
    seqs: set[int] = field(default_factory=set)
    repeated: int = 0  # a seq seen again
    target: int = 0  # seq 1..target is the backlog being drained
    target_got: int = 0
    complete_at: float | None = None  # monotonic: the last of seq 1..target arrived

    @property
    def missing(self) -> int:
        """Numbers absent between 1 (or the first seen) and the highest seen."""
        if not self.seqs:
            return self.target
        low = 1 if self.target else min(self.seqs)
        return max(self.seqs) - low + 1 - len(self.seqs)


class TelemetrySubscriber(Subscriber):
    """A paho subscriber (QoS 1, its own network thread) that checks every telemetry message
    (orjson, as the agent uses) and keeps (arrival, device, seq, poll ts, readings)."""

    def __init__(self, port: int, topic: str) -> None:
        super().__init__(port, topic, f"bench-buffer-sub-{time.monotonic_ns()}")
        self.tallies: dict[str, Tally] = {}
        self.arrivals: list[tuple[float, float, str, int, int, int]] = []

    def expect_backlog(self, device: str, upto: int) -> None:
        self.tallies.setdefault(device, Tally()).target = upto

    def tally(self) -> Tally:
        with self.lock:
            return self.tallies.setdefault(DEVICE, Tally())

    def readings_between(self, t0: float, t1: float) -> int:
        with self.lock:
            return sum(n for t, _, _, _, _, n in self.arrivals if t0 <= t < t1)

    def wait_first(self, timeout: float) -> bool:
        return wait_for(lambda: bool(self.arrivals), timeout)

    def received(self, now: float, wall: float, msg: Telemetry) -> None:
        with self.lock:
            t = self.tallies.setdefault(msg.device, Tally())
            t.messages += 1
            t.readings += msg.count
            if msg.seq in t.seqs:
                t.repeated += 1
            else:
                t.seqs.add(msg.seq)
                if msg.seq <= t.target:
                    t.target_got += 1
                    if t.target_got == t.target:
                        t.complete_at = now
            self.arrivals.append((now, wall, msg.device, msg.seq, msg.ts, msg.count))
