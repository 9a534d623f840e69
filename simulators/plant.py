"""Process model of a centrifugal pump, free of any I/O.

The model is event driven rather than ticked: stop/start events are drawn as
exponentially distributed run and stop periods, and everything in between
(running hours, bearing temperature) has a closed-form solution.  Asking for
the state an hour after the last request therefore costs a handful of steps,
and no background task is needed, so an idle simulator uses no CPU.

Measurement noise is drawn from a generator seeded with (seed, sample number),
where samples are ``sample_period`` seconds apart.  The value a client sees at
time t therefore depends only on the seed and t, not on how often (or whether)
anybody polled before.

A bearing fault (:mod:`.degradation`) is applied on top of any reading by
:func:`with_bearing`; the model itself always has a healthy bearing.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace

from .degradation import HEALTHY, BearingCondition

__all__ = [
    "BEARING_NAMES",
    "NOMINAL",
    "VALUE_NAMES",
    "PumpModel",
    "PumpParameters",
    "PumpReading",
    "with_bearing",
]


@dataclass(frozen=True)
class PumpReading:
    """Everything the PLC knows about the pump, in engineering units."""

    discharge_pressure: float  # bar
    flow: float  # m3/h
    motor_current: float  # A
    bearing_temp: float  # degC
    velocity_rms: float  # mm/s RMS, overall vibration velocity at the drive-end bearing
    hf_accel_rms: float  # g RMS, high-frequency acceleration
    envelope_bpfo: float  # g, envelope spectrum line at the bearing's BPFO
    speed_rpm: int
    running: bool
    fault: bool
    remote: bool
    start_counter: int
    running_seconds: int
    overload_trip: bool
    door_open: bool
    tag: str


#: The fixed values served in deterministic mode.
NOMINAL = PumpReading(
    discharge_pressure=3.42,
    flow=51.5,
    motor_current=18.25,
    bearing_temp=61.3,
    velocity_rms=HEALTHY.velocity_rms,
    hf_accel_rms=HEALTHY.hf_accel_rms,
    envelope_bpfo=HEALTHY.envelope_bpfo,
    speed_rpm=2950,
    running=True,
    fault=False,
    remote=True,
    start_counter=42,
    running_seconds=123456,
    overload_trip=False,
    door_open=False,
    tag="PUMP-101",
)

#: Names accepted by ``ModbusSimulator.set_value``.
VALUE_NAMES: frozenset[str] = frozenset(f.name for f in fields(PumpReading))

#: The values a bearing fault changes (see :func:`with_bearing`).
BEARING_NAMES: tuple[str, ...] = (
    "velocity_rms",
    "hf_accel_rms",
    "envelope_bpfo",
    "bearing_temp",
    "motor_current",
)


@dataclass(frozen=True)
class PumpParameters:
    """Tuning of the pump model; the defaults give a believable duty pump."""

    mean_run_s: float = 900.0
    mean_stop_s: float = 45.0
    trip_share: float = 0.2  # share of stops that are overload trips
    ambient_temp: float = 25.0
    running_temp: float = 60.0
    initial_temp: float = 35.0
    thermal_tau_s: float = 600.0
    pressure_bar: float = 3.4
    static_pressure_bar: float = 0.3
    flow_m3h: float = 50.0
    current_a: float = 18.0
    speed_rpm: int = 2950
    sample_period_s: float = 0.1


class PumpModel:
    """A pump that runs, occasionally stops (sometimes tripping) and restarts.

    Call :meth:`reading_at` with the seconds elapsed since the model was
    created; time never runs backwards (earlier times are treated as the
    latest one seen).
    """

    def __init__(
        self,
        seed: int,
        params: PumpParameters | None = None,
        start: PumpReading = NOMINAL,
    ) -> None:
        self._seed = seed
        self._p = params or PumpParameters()
        self._events = random.Random(seed)
        self._tag = start.tag
        self._remote = start.remote
        self._t = 0.0
        self._running = True
        self._tripped = False
        self._starts = start.start_counter
        self._run_s = float(start.running_seconds)
        self._temp = self._p.initial_temp
        self._next_switch = self._events.expovariate(1.0 / self._p.mean_run_s)

    @property
    def sample_period(self) -> float:
        """Seconds between measurement samples (noise changes once per sample)."""
        return self._p.sample_period_s

    def reading_at(self, t: float) -> PumpReading:
        """The pump as measured at ``t`` seconds after the model was created."""
        self._advance(t)
        return self._measure()

    def _advance(self, t: float) -> None:
        """Move the state to time ``t``, replaying every stop/start on the way."""
        while self._next_switch <= t:
            self._integrate(self._next_switch)
            self._switch()
        self._integrate(max(t, self._t))

    def _integrate(self, t: float) -> None:
        """Evolve the continuous state to ``t``; nothing switches in between."""
        dt = t - self._t
        if dt <= 0:
            return
        p = self._p
        if self._running:
            self._run_s += dt
        target = p.running_temp if self._running else p.ambient_temp
        self._temp = target + (self._temp - target) * math.exp(-dt / p.thermal_tau_s)
        self._t = t

    def _switch(self) -> None:
        """Stop a running pump or start a stopped one, and draw the next event."""
        p = self._p
        if self._running:
            self._running = False
            self._tripped = self._events.random() < p.trip_share
            mean = p.mean_stop_s
        else:
            self._running = True
            self._tripped = False
            self._starts += 1
            mean = p.mean_run_s
        self._next_switch = self._t + self._events.expovariate(1.0 / mean)

    def _measure(self) -> PumpReading:
        """Turn the state into sensor values, with per-sample noise."""
        p = self._p
        sample = int(self._t / p.sample_period_s)
        noise = random.Random(f"{self._seed}:{sample}")
        if self._running:
            pressure = p.pressure_bar + noise.gauss(0.0, 0.03)
            flow = p.flow_m3h + noise.gauss(0.0, 0.6)
            current = p.current_a + noise.gauss(0.0, 0.15)
            speed = p.speed_rpm
            vibration = (HEALTHY.velocity_rms, HEALTHY.hf_accel_rms, HEALTHY.envelope_bpfo)
        else:
            pressure = p.static_pressure_bar + noise.gauss(0.0, 0.01)
            flow = current = 0.0
            speed = 0
            vibration = (0.0, 0.0, 0.0)
        return PumpReading(
            discharge_pressure=round(pressure, 3),
            flow=round(max(flow, 0.0), 2),
            motor_current=round(max(current, 0.0), 2),
            bearing_temp=round(self._temp + noise.gauss(0.0, 0.05), 1),
            velocity_rms=vibration[0],
            hf_accel_rms=vibration[1],
            envelope_bpfo=vibration[2],
            speed_rpm=speed,
            running=self._running,
            fault=self._tripped,
            remote=self._remote,
            start_counter=self._starts,
            running_seconds=int(self._run_s),
            overload_trip=self._tripped,
            door_open=False,
            tag=self._tag,
        )


def with_bearing(
    reading: PumpReading, condition: BearingCondition, params: PumpParameters | None = None
) -> PumpReading:
    """``reading`` of a pump whose drive-end bearing is in ``condition``.

    While the pump runs the vibration values are the condition's and the motor current is
    scaled by its drift; a stopped pump does not vibrate.  The temperature rise is weighted
    by how warm the bearing is from running (0 at ambient, 1 at running temperature and
    above), so a stopped pump cools down smoothly instead of jumping.
    """
    p = params or PumpParameters()
    warmth = (reading.bearing_temp - p.ambient_temp) / (p.running_temp - p.ambient_temp)
    warmth = min(max(warmth, 0.0), 1.0)
    running = reading.running
    return replace(
        reading,
        velocity_rms=condition.velocity_rms if running else 0.0,
        hf_accel_rms=condition.hf_accel_rms if running else 0.0,
        envelope_bpfo=condition.envelope_bpfo if running else 0.0,
        bearing_temp=round(reading.bearing_temp + condition.temp_rise * warmth, 1),
        motor_current=round(reading.motor_current * condition.current_factor, 2),
    )
