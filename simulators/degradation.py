"""A developing drive-end bearing defect (outer race), as a function of simulated hours.

Pure: no I/O, no clock.  Everything is a closed-form function of ``h``, the simulated hours
since the fault started (``None`` or ``h <= 0``: a healthy bearing).  Noise is added only when
a seeded :class:`random.Random` is passed in; without one the values are exact, so tests can
predict when each boundary is crossed.

Model (defaults of :class:`DegradationParameters`; ``tau`` = ``growth_tau_h``):

* severity ``s(h) = exp(h / tau) - 1``: exponential growth, the usual shape of bearing wear
  (the logarithm of the excess over the healthy level is linear in time), 0 when the fault
  starts.  It stops growing at end of life, ``s = max_severity`` (99, reached at
  ``tau * ln(1 + 99)`` = 46.05 h): from then on every value stays where it is.
* overall velocity (ISO 10816 measure) ``v = 1.1 + 0.1 * s`` mm/s RMS: 1.1 is zone A of
  ISO 10816-3 group 2 rigid (boundaries 1.4 / 2.8 / 4.5).  The boundaries are crossed at
  ``h = tau * ln(1 + (boundary - 1.1) / 0.1)``: A->B at 13.86 h, B->C at 28.90 h,
  C->D at 35.55 h; 11.0 mm/s at end of life.
* high-frequency acceleration RMS ``0.05 + 0.15 * sqrt(s)`` g and the envelope line at BPFO
  ``0.005 + 0.1 * sqrt(s)`` g: both rise early (a square root of the severity), as a bearing
  defect shows in the envelope spectrum long before the overall velocity moves.
* bearing temperature rise over its normal value ``0.5 * h + 0.25 * s`` degC: a steady trend
  of 0.5 degC/h that gets faster as the fault grows (0.525 degC/h at the start, 3 degC/h at
  end of life); +7.7 degC at A->B, +18.7 at B->C, +26.3 at C->D, +47.8 at end of life.
* motor current factor ``1 + 0.01 * h``: a drift of +1 % of the normal current per hour.

With an RNG the three vibration values are multiplied by ``1 + N(0, noise)`` (3 %); the
temperature and the current get their noise from the pump model they are applied to.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = [
    "DEFAULT",
    "HEALTHY",
    "BearingCondition",
    "DegradationParameters",
    "condition_at",
    "hours_to_temp_rise",
    "hours_to_velocity",
    "severity",
]


@dataclass(frozen=True)
class DegradationParameters:
    """Tuning of the bearing fault; see the module docstring for the formulas."""

    growth_tau_h: float = 10.0  # e-folding time of the severity
    max_severity: float = 99.0  # end of life
    velocity_healthy: float = 1.1  # mm/s RMS, zone A for ISO 10816-3 group 2 rigid
    velocity_per_severity: float = 0.1  # mm/s
    hf_healthy: float = 0.05  # g RMS
    hf_per_sqrt_severity: float = 0.15  # g
    envelope_healthy: float = 0.005  # g, the envelope spectrum's floor at BPFO
    envelope_per_sqrt_severity: float = 0.1  # g
    temp_rate_per_h: float = 0.5  # degC per hour
    temp_per_severity: float = 0.25  # degC
    current_drift_per_h: float = 0.01  # share of the normal current per hour
    noise: float = 0.03  # relative standard deviation of the vibration values (with an RNG)

    @property
    def end_of_life_h(self) -> float:
        """Simulated hours after the fault started at which the severity stops growing."""
        return self.growth_tau_h * math.log1p(self.max_severity)

    @property
    def velocity_max(self) -> float:
        """Overall velocity at end of life, mm/s RMS."""
        return self.velocity_healthy + self.velocity_per_severity * self.max_severity


DEFAULT = DegradationParameters()


@dataclass(frozen=True)
class BearingCondition:
    """What the bearing's condition does to the measurements at one moment."""

    hours: float  # simulated hours of fault development counted (0 .. end of life)
    severity: float  # s(h), 0 = healthy
    velocity_rms: float  # mm/s RMS, overall
    hf_accel_rms: float  # g RMS, high-frequency band
    envelope_bpfo: float  # g, envelope spectrum line at BPFO
    temp_rise: float  # degC above the bearing's normal temperature
    current_factor: float  # multiplies the normal motor current


def _effective_hours(hours: float | None, p: DegradationParameters) -> float:
    """Fault hours that count: none before the start, none after end of life."""
    if hours is None or hours <= 0.0:
        return 0.0
    return min(hours, p.end_of_life_h)


def severity(hours: float | None, p: DegradationParameters = DEFAULT) -> float:
    """``s(h) = exp(h / tau) - 1``, 0 before the fault starts, capped at end of life."""
    return math.expm1(_effective_hours(hours, p) / p.growth_tau_h)


def _temp_rise(h: float, s: float, p: DegradationParameters) -> float:
    return p.temp_rate_per_h * h + p.temp_per_severity * s


def condition_at(
    hours: float | None,
    p: DegradationParameters = DEFAULT,
    rng: random.Random | None = None,
) -> BearingCondition:
    """The bearing ``hours`` simulated hours after the fault started (``None``: no fault).

    Exact without ``rng``; with it the vibration values carry relative noise.
    """
    h = _effective_hours(hours, p)
    s = math.expm1(h / p.growth_tau_h)
    root = math.sqrt(s)

    def noisy(value: float) -> float:
        if rng is None:
            return value
        return max(0.0, value * (1.0 + rng.gauss(0.0, p.noise)))

    return BearingCondition(
        hours=h,
        severity=s,
        velocity_rms=noisy(p.velocity_healthy + p.velocity_per_severity * s),
        hf_accel_rms=noisy(p.hf_healthy + p.hf_per_sqrt_severity * root),
        envelope_bpfo=noisy(p.envelope_healthy + p.envelope_per_sqrt_severity * root),
        temp_rise=_temp_rise(h, s, p),
        current_factor=1.0 + p.current_drift_per_h * h,
    )


#: A bearing without a fault (also the deterministic values of a healthy pump).
HEALTHY = condition_at(None)


def hours_to_velocity(velocity: float, p: DegradationParameters = DEFAULT) -> float:
    """Simulated hours after the fault started at which the velocity reaches ``velocity``.

    0 for a value the healthy bearing already has, ``inf`` for one it never reaches.
    """
    if velocity <= p.velocity_healthy:
        return 0.0
    if velocity > p.velocity_max:
        return math.inf
    excess = (velocity - p.velocity_healthy) / p.velocity_per_severity
    return p.growth_tau_h * math.log1p(excess)


def hours_to_temp_rise(rise: float, p: DegradationParameters = DEFAULT) -> float:
    """Simulated hours after the fault started at which the temperature has risen ``rise`` degC.

    The rise is strictly increasing until end of life, so bisection finds it (to 1e-9 h).
    """
    if rise <= 0.0:
        return 0.0
    end = p.end_of_life_h
    if rise > _temp_rise(end, p.max_severity, p):
        return math.inf
    lo, hi = 0.0, end
    while hi - lo > 1e-9:
        mid = (lo + hi) / 2
        if _temp_rise(mid, math.expm1(mid / p.growth_tau_h), p) < rise:
            lo = mid
        else:
            hi = mid
    return hi
