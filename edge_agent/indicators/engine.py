"""The indicators of one device: built from its config, fed each poll's readings, returning
what is due for publication and the events that just happened. No I/O: the pipeline sends,
the buffer stores the states.

Each configured indicator becomes an evaluator with `update(t, x, good) -> Output`,
`state()` and `restore()`. The scalar ones are in the streaming package; the ISO zone of a scalar
velocity and the drift detector's EWMA baseline are composed here. Waveform (vibration)
indicators need an array point, which Modbus devices do not have: the config refuses them
there until a driver provides waveforms.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..config.indicators import (
    Drift,
    Indicator,
    IsoZone,
    Rate,
    RunningHours,
    Stats,
    Threshold,
    Trend,
    Vibration,
)
from ..readings import Batch, Quality
from . import streaming as s
from .iso10816 import iso10816_3_table, zone
from .units import in_s_to_mm_s, rms_from_sine_peak


class Evaluator(Protocol):
    def update(self, t: float, x: float | bool | None, good: bool = True) -> s.Output: ...

    def state(self) -> s.State: ...

    def restore(self, state: Mapping[str, s.StateValue]) -> None: ...


class ZoneOfVelocity:
    """ISO 10816-3 zone of a transmitter's overall velocity, with the unit conversion made
    explicit (in/s to mm/s, peak to RMS for a sine): the tables take RMS mm/s."""

    def __init__(self, cfg: IsoZone) -> None:
        self.table = iso10816_3_table(cfg.iso10816.group, cfg.iso10816.foundation)
        self.to_mm_s = in_s_to_mm_s if cfg.units == "in/s" else float
        self.peak = cfg.measure == "peak"
        self.zone: str | None = None
        self.skipped = 0

    def update(self, t: float, x: float | bool | None, good: bool = True) -> s.Output:
        if not good or x is None or not math.isfinite(float(x)) or float(x) < 0:
            self.skipped += 1
            return s.Output({"zone": self.zone, "skipped": self.skipped}, s.Quality.BAD)
        v = self.to_mm_s(float(x))
        rms = rms_from_sine_peak(v) if self.peak else v
        new = zone(rms, self.table)
        events: tuple[s.Event, ...] = ()
        if self.zone is not None and new != self.zone:
            limit = _boundary(self.table.boundaries, self.zone, new)
            events = (s.Event("zone_changed", rms, limit, t, f"{self.zone}->{new}"),)
        self.zone = new
        values: dict[str, s.Value] = {
            "velocity_rms_mm_s": rms,
            "zone": new,
            "skipped": self.skipped,
        }
        return s.Output(values, s.Quality.GOOD, events)

    def state(self) -> s.State:
        return {"kind": "iso_zone", "zone": self.zone, "skipped": self.skipped}

    def restore(self, state: Mapping[str, s.StateValue]) -> None:
        zone_ = state.get("zone")
        self.zone = zone_ if isinstance(zone_, str) else None
        skipped = state.get("skipped")
        self.skipped = skipped if isinstance(skipped, int) else 0


def _boundary(boundaries: tuple[float, float, float], old: str, new: str) -> float:
    """The boundary crossed between two zones (the higher one when rising)."""
    order = "ABCD"
    hi = max(order.index(old), order.index(new))
    return boundaries[hi - 1]


class DriftWithBaseline:
    """Drift detection (CUSUM or Page-Hinkley) beside an EWMA baseline of the same signal."""

    def __init__(self, cfg: Drift) -> None:
        self.drift = s.DriftDetector(
            method=cfg.method,
            k=cfg.k,
            h=cfg.h,
            delta=cfg.delta,
            lambda_=cfg.threshold,
            learn_n=cfg.learn_readings,
            learn_s=cfg.learn,
        )
        self.ewma = s.Ewma(cfg.baseline)

    def update(self, t: float, x: float | bool | None, good: bool = True) -> s.Output:
        d = self.drift.update(t, x, good)
        e = self.ewma.update(t, x, good)
        values = dict(d.values)
        values["baseline"] = e.values.get("ewma")
        return s.Output(values, d.quality, d.events)

    def state(self) -> s.State:
        return {
            "kind": "drift+ewma",
            "drift": _dumps(self.drift.state()),
            "ewma": _dumps(self.ewma.state()),
        }

    def restore(self, state: Mapping[str, s.StateValue]) -> None:
        self.drift.restore(orjson.loads(str(state["drift"])))
        self.ewma.restore(orjson.loads(str(state["ewma"])))


class WaveformIndicators:
    """The vibration set (vibration.py) of each waveform that arrives, with the shaft speed
    from another point of the same device (or a fixed rpm), and zone-change events."""

    def __init__(self, cfg: Vibration) -> None:
        from .bearing import BearingGeometry  # numpy: loaded only for vibration indicators
        from .vibration import vibration_indicators

        self.compute = vibration_indicators
        self.cfg = cfg
        b = cfg.bearing
        self.geometry = (
            BearingGeometry(b.balls, b.ball_diameter, b.pitch_diameter, b.contact_angle)
            if b
            else None
        )
        iso = cfg.iso10816
        self.table = iso10816_3_table(iso.group, iso.foundation) if iso else None
        self.rpm: float | None = (
            float(cfg.shaft_speed) if isinstance(cfg.shaft_speed, int | float) else None
        )
        self.zone: str | None = None
        self.skipped = 0

    def update(self, t: float, x: Any, good: bool = True) -> s.Output:
        if not good or not isinstance(x, list | tuple) or len(x) < 64:
            self.skipped += 1
            return s.Output({"skipped": self.skipped}, Quality.BAD)
        import numpy as np

        shaft_hz = self.rpm / 60 if self.rpm and self.rpm > 0 else None
        try:
            values: dict[str, s.Value] = dict(
                self.compute(
                    np.asarray(x, dtype=float),
                    self.cfg.sample_rate,
                    units=self.cfg.units,
                    shaft_hz=shaft_hz,
                    bearing=self.geometry if shaft_hz else None,
                    bands=self.cfg.bands,
                    iso=self.table,
                )
            )
        except ValueError as err:  # a window the maths refuses (NaN, too short for a band)
            self.skipped += 1
            return s.Output({"skipped": self.skipped, "error": str(err)}, Quality.BAD)
        values["skipped"] = self.skipped
        events: tuple[s.Event, ...] = ()
        zone_ = values.get("iso10816_zone")
        if isinstance(zone_, str):
            if self.zone is not None and zone_ != self.zone and self.table is not None:
                limit = _boundary(self.table.boundaries, self.zone, zone_)
                velocity = values.get("velocity_rms_mm_s")
                events = (
                    s.Event(
                        "zone_changed",
                        velocity if isinstance(velocity, float) else None,
                        limit,
                        t,
                        f"{self.zone}->{zone_}",
                    ),
                )
            self.zone = zone_
        # Without the shaft speed the speed-dependent lines are missing: say so.
        quality = Quality.GOOD if shaft_hz or self.cfg.shaft_speed is None else Quality.UNCERTAIN
        return s.Output(values, quality, events)

    def state(self) -> s.State:
        return {"kind": "vibration", "zone": self.zone, "skipped": self.skipped}

    def restore(self, state: Mapping[str, s.StateValue]) -> None:
        zone_ = state.get("zone")
        self.zone = zone_ if isinstance(zone_, str) else None


def _dumps(state: s.State) -> str:
    return orjson.dumps(state).decode()


def build(cfg: Indicator) -> Evaluator:
    """The evaluator for one configured indicator."""
    if isinstance(cfg, Threshold):
        return s.ThresholdAlarm(
            high=cfg.high,
            low=cfg.low,
            deadband=cfg.hysteresis,
            on_delay_s=cfg.on_delay,
            off_delay_s=cfg.off_delay,
        )
    if isinstance(cfg, RunningHours):
        return s.RunningHours(max_gap_s=cfg.max_gap, running_above=cfg.running_above)
    if isinstance(cfg, Trend):
        return s.LinearTrend(cfg.window, limit=cfg.limit)
    if isinstance(cfg, Stats):
        return s.RollingStats(cfg.window)
    if isinstance(cfg, Rate):
        return s.RateOfChange(cfg.window)
    if isinstance(cfg, Drift):
        return DriftWithBaseline(cfg)
    if isinstance(cfg, IsoZone):
        return ZoneOfVelocity(cfg)
    return WaveformIndicators(cfg)


@dataclass
class _Slot:
    cfg: Indicator
    evaluator: Evaluator
    last: s.Output | None = None
    last_t: float = 0.0


@dataclass
class DeviceIndicators:
    """All indicators of one device. `feed` each poll's batch."""

    device: str
    slots: list[_Slot]
    interval: float
    restore_errors: list[str] = field(default_factory=list)
    latest: dict[str, float] = field(default_factory=dict)  # last good number of each point
    _next_publish: float | None = None

    @classmethod
    def create(
        cls, device: str, indicators: list[Indicator], interval: float, states: Mapping[str, bytes]
    ) -> DeviceIndicators:
        slots, errors = [], []
        for cfg in indicators:
            evaluator = build(cfg)
            saved = states.get(state_key(device, cfg.name))
            if saved is not None:
                try:
                    evaluator.restore(orjson.loads(saved))
                except (ValueError, KeyError, TypeError) as err:
                    errors.append(f"{cfg.name}: saved state not usable ({err}); starting afresh")
            slots.append(_Slot(cfg, evaluator))
        return cls(device, slots, interval, errors)

    def feed(self, batch: Batch) -> tuple[list[dict[str, Any]] | None, list[dict[str, Any]]]:
        """(the indicator entries to publish now or None, the events of this batch)."""
        readings = {r.point: r for r in batch.readings}
        for r in batch.readings:
            if r.quality is Quality.GOOD and isinstance(r.value, int | float):
                self.latest[r.point] = float(r.value)
        t = batch.ts_ms / 1000
        events: list[dict[str, Any]] = []
        for slot in self.slots:
            r = readings.get(slot.cfg.source)
            if r is None:
                continue  # not in this batch (another poll group): nothing to feed
            if isinstance(slot.evaluator, WaveformIndicators) and isinstance(
                slot.cfg.shaft_speed, str
            ):
                slot.evaluator.rpm = self.latest.get(slot.cfg.shaft_speed)
            out = slot.evaluator.update(r.ts_ms / 1000, r.value, r.quality is Quality.GOOD)
            slot.last, slot.last_t = out, r.ts_ms / 1000
            for ev in out.events:
                events.append(
                    {
                        "indicator": slot.cfg.name,
                        "event": ev.kind,
                        "value": ev.value,
                        "limit": ev.limit,
                        "ts": round(ev.t * 1000),
                        "detail": ev.detail,
                        "point": slot.cfg.source,
                    }
                )
        if self._next_publish is None:
            self._next_publish = t + self.interval
            return None, events
        if t < self._next_publish:
            return None, events
        self._next_publish = max(self._next_publish + self.interval, t)
        due = [
            {
                "name": sl.cfg.name,
                "kind": sl.cfg.kind,
                "ts": round(sl.last_t * 1000),
                "q": sl.last.quality.value,
                "values": sl.last.values,
            }
            for sl in self.slots
            if sl.last is not None
        ]
        return due or None, events

    def states(self) -> dict[str, bytes]:
        return {
            state_key(self.device, sl.cfg.name): orjson.dumps(sl.evaluator.state())
            for sl in self.slots
        }


def state_key(device: str, indicator: str) -> str:
    return f"indicator/{device}/{indicator}"
