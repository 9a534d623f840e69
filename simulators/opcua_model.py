"""Motor 7 of the OPC UA simulator: process values and vibration waveform (pure, no I/O).

Everything here is a function of ``t`` (seconds since the simulator was created), a ``seed``
and the bearing fault severity ``s`` (the scale of :func:`simulators.degradation.severity`:
0 healthy, 99 end of life).  The same arguments always give the same result, so a test can
predict every value.

The machine: an induction motor (4 poles, 50 Hz, rated 1485 rpm) driving a fan, with a 6205
deep-groove ball bearing at the drive end.

* **Process values** (:func:`motor_at`): the motor runs for 55 min and stops for 5 min in
  every hour (it is running and warm at ``t`` = 0).  Running: ~1485 rpm, ~42.5 A with a
  +-5 % load swing (period 2 min), windings ~78 degC, bearing ~61 degC.  When it stops the
  speed coasts down (time constant 8 s), the current drops to 0 and both temperatures cool
  towards 25 degC; a start ramps the speed up in 5 s with an inrush current of 6x that decays
  within a second.  Seeded noise is added per 0.1 s sample.
* **Bearing fault** (:func:`fault_condition`): a severity ``s`` is mapped to the fault age
  ``h = tau * ln(1 + s)`` of :mod:`simulators.degradation`, whose temperature rise and current
  drift are applied (``s`` = 1: +3.7 degC, +6.9 % current).
* **Vibration** (:func:`waveform`): 4096 samples at 10 kHz of acceleration (m/s2) at the
  drive-end bearing: the running-speed harmonics 1x, 2x, 3x (1.0, 0.35 and 0.2 mm/s RMS of
  velocity, 1.08 mm/s overall: zone A of ISO 10816-3), plus, with a fault, outer-race impacts
  at BPFO = 3.5848 x shaft speed, each ringing the 3 kHz bearing-housing resonance (damping
  5 %), sized so that their RMS is the high-frequency rise of :mod:`simulators.degradation`
  (0.15 g x sqrt(s)); plus white noise of 0.05 g RMS.  Vibration scales with the square of
  the speed (0 when stopped).  Each block has its mean removed (AC coupling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from .degradation import DEFAULT as DEGRADATION
from .degradation import BearingCondition, condition_at

__all__ = [
    "BPFO_ORDER",
    "MOTOR",
    "NOMINAL",
    "SAMPLE_RATE_HZ",
    "WAVEFORM_SAMPLES",
    "G",
    "MotorParameters",
    "MotorReading",
    "fault_condition",
    "motor_at",
    "nominal_reading",
    "waveform",
]

#: Standard gravity, m/s2 per g.
G = 9.80665
#: Sample rate of the vibration waveform, Hz.
SAMPLE_RATE_HZ = 10_000.0
#: Samples in one waveform (0.4096 s at 10 kHz; 2.44 Hz FFT resolution).
WAVEFORM_SAMPLES = 4096
#: Ball pass frequency, outer race, of a 6205 bearing, in orders of the shaft speed.
BPFO_ORDER = 3.5848


@dataclass(frozen=True)
class MotorParameters:
    """Tuning of the motor model; see the module docstring."""

    rated_speed_rpm: float = 1485.0
    rated_current_a: float = 42.5
    winding_temp_c: float = 78.4  # running, steady state
    bearing_temp_c: float = 61.3  # running, steady state, healthy bearing
    ambient_c: float = 25.0
    run_s: float = 3300.0  # running part of every cycle
    stop_s: float = 300.0  # stopped part of every cycle
    start_ramp_s: float = 5.0  # speed ramp at a start
    coast_tau_s: float = 8.0  # speed decay after a stop
    inrush_factor: float = 6.0  # starting current / rated current
    inrush_tau_s: float = 0.3
    winding_tau_s: float = 900.0  # thermal time constants
    bearing_tau_s: float = 1800.0
    load_swing: float = 0.05  # relative amplitude of the load oscillation
    load_period_s: float = 120.0
    speed_noise_rpm: float = 0.5  # standard deviations per 0.1 s sample
    current_noise_a: float = 0.2
    temp_noise_c: float = 0.05
    sample_period_s: float = 0.1
    # vibration
    harmonics_mm_s: tuple[float, ...] = (1.0, 0.35, 0.2)  # velocity RMS of 1x, 2x, 3x
    resonance_hz: float = 3000.0
    resonance_damping: float = 0.05  # damping ratio of the resonance
    noise_g: float = 0.05  # white noise RMS
    impact_jitter: float = 0.01  # standard deviation of impact times, share of the BPFO period
    impact_spread: float = 0.1  # relative standard deviation of the impact amplitudes

    @property
    def cycle_s(self) -> float:
        """Length of one run/stop cycle, seconds."""
        return self.run_s + self.stop_s


MOTOR = MotorParameters()


@dataclass(frozen=True)
class MotorReading:
    """The scalar process values of Motor 7 at one moment."""

    speed_rpm: float
    motor_current_a: float
    winding_temp_c: float
    bearing_temp_c: float
    running: bool


def fault_condition(severity: float) -> BearingCondition:
    """The bearing condition of :mod:`simulators.degradation` at fault severity ``severity``.

    The severity is mapped to the fault age ``h = tau * ln(1 + s)`` (capped at end of life),
    so ``condition_at(h).severity == s``.
    """
    if not severity > 0.0:
        return condition_at(None)
    s = min(severity, DEGRADATION.max_severity)
    return condition_at(DEGRADATION.growth_tau_h * math.log1p(s))


def nominal_reading(severity: float = 0.0, p: MotorParameters = MOTOR) -> MotorReading:
    """The fixed values served in deterministic mode (running, warm, no noise).

    With ``severity`` 0: 1485.0 rpm, 42.5 A, 78.4 degC, 61.3 degC, running.
    """
    fault = fault_condition(severity)
    return MotorReading(
        speed_rpm=p.rated_speed_rpm,
        motor_current_a=round(p.rated_current_a * fault.current_factor, 6),
        winding_temp_c=p.winding_temp_c,
        bearing_temp_c=round(p.bearing_temp_c + fault.temp_rise, 6),
        running=True,
    )


#: Deterministic values of a healthy machine.
NOMINAL = nominal_reading()


def _warm_fraction(
    cycle: int, phase: float, running: bool, tau: float, p: MotorParameters
) -> float:
    """How warm a part is (0 = ambient, 1 = running steady state), first-order thermal model.

    The first cycle starts warm (the motor has been running for ever before ``t`` = 0); each
    later one starts where the previous stop left off.
    """
    after_run = math.exp(-p.run_s / tau)
    after_stop = math.exp(-p.stop_s / tau)
    warm = 1.0  # at the start of the cycle
    for _ in range(min(cycle, 50)):  # converges long before 50 cycles
        warm = (1.0 - (1.0 - warm) * after_run) * after_stop
    if running:
        return 1.0 - (1.0 - warm) * math.exp(-phase / tau)
    end_of_run = 1.0 - (1.0 - warm) * after_run
    return end_of_run * math.exp(-(phase - p.run_s) / tau)


def motor_at(
    t: float, seed: int, severity: float = 0.0, p: MotorParameters = MOTOR
) -> MotorReading:
    """The process values ``t`` seconds after creation (non-deterministic mode).

    Values are held for 0.1 s samples; the noise of a sample depends only on
    (``seed``, sample number).
    """
    sample = math.floor(max(t, 0.0) / p.sample_period_s)
    t = sample * p.sample_period_s
    cycle, phase = divmod(t, p.cycle_s)
    cycle_no = int(cycle)
    running = phase < p.run_s
    rated_rpm = p.rated_speed_rpm
    if running:
        ramp = 1.0 if cycle_no == 0 else min(1.0, phase / p.start_ramp_s)
        inrush = (
            0.0 if cycle_no == 0 else (p.inrush_factor - 1.0) * math.exp(-phase / p.inrush_tau_s)
        )
        load = 1.0 + p.load_swing * math.sin(2.0 * math.pi * t / p.load_period_s)
        speed = rated_rpm * ramp - 6.0 * (load - 1.0) / p.load_swing * ramp  # slip grows with load
        current = p.rated_current_a * (load + inrush)
    else:
        load = 0.0
        speed = rated_rpm * math.exp(-(phase - p.run_s) / p.coast_tau_s)
        current = 0.0
    fault = fault_condition(severity)
    winding = _warm_fraction(cycle_no, phase, running, p.winding_tau_s, p)
    bearing = _warm_fraction(cycle_no, phase, running, p.bearing_tau_s, p)
    noise = np.random.default_rng([seed, sample, 1]).standard_normal(4)
    winding_rise = (p.winding_temp_c - p.ambient_c) * (1.0 + 0.5 * (load - 1.0) if running else 1.0)
    if running:
        speed += p.speed_noise_rpm * float(noise[0])
        current = current * fault.current_factor + p.current_noise_a * float(noise[1])
    return MotorReading(
        speed_rpm=max(0.0, speed),
        motor_current_a=max(0.0, current),
        winding_temp_c=p.ambient_c + winding_rise * winding + p.temp_noise_c * float(noise[2]),
        bearing_temp_c=p.ambient_c
        + (p.bearing_temp_c - p.ambient_c + fault.temp_rise) * bearing
        + p.temp_noise_c * float(noise[3]),
        running=running,
    )


def _harmonic_amplitudes(shaft_hz: float, p: MotorParameters) -> list[float]:
    """Acceleration amplitudes (m/s2, peak) of the harmonics at the rated speed.

    Velocity RMS ``v`` (mm/s) at ``k`` x ``shaft_hz`` is acceleration peak
    ``v * sqrt(2) * 2 pi k f / 1000``.
    """
    return [
        v * math.sqrt(2.0) * 2.0 * math.pi * k * shaft_hz / 1000.0
        for k, v in enumerate(p.harmonics_mm_s, start=1)
    ]


def impact_amplitude(severity: float, speed_rpm: float, p: MotorParameters = MOTOR) -> float:
    """Peak acceleration (m/s2) of one outer-race impact at fault severity ``severity``.

    A ring-down ``A exp(-t / tau) sin(2 pi f_r t)`` repeated at BPFO has mean square
    ``BPFO * A**2 * tau / 4``; ``A`` is chosen so that the RMS of the impacts equals the
    high-frequency rise of :mod:`simulators.degradation`, ``0.15 g * sqrt(s)``, at the rated
    speed, and scales with the square of the speed.
    """
    if not severity > 0.0 or speed_rpm <= 0.0:
        return 0.0
    s = min(severity, DEGRADATION.max_severity)
    rated_bpfo = BPFO_ORDER * p.rated_speed_rpm / 60.0
    tau = 1.0 / (p.resonance_damping * 2.0 * math.pi * p.resonance_hz)
    rms = DEGRADATION.hf_per_sqrt_severity * math.sqrt(s) * G
    return rms / math.sqrt(rated_bpfo * tau / 4.0) * (speed_rpm / p.rated_speed_rpm) ** 2


def waveform(
    t: float,
    seed: int,
    speed_rpm: float = MOTOR.rated_speed_rpm,
    severity: float = 0.0,
    p: MotorParameters = MOTOR,
) -> npt.NDArray[np.float64]:
    """4096 samples at 10 kHz of acceleration (m/s2), the first taken at ``t`` seconds.

    Deterministic given its arguments.  The harmonics' phases depend on ``seed`` only, so
    consecutive blocks join up; impact times and noise depend on (``seed``, ``t``).
    """
    n = WAVEFORM_SAMPLES
    times = t + np.arange(n) / SAMPLE_RATE_HZ
    shaft_hz = max(speed_rpm, 0.0) / 60.0
    scale = (shaft_hz * 60.0 / p.rated_speed_rpm) ** 2
    phases = np.random.default_rng([seed, 0]).uniform(0.0, 2.0 * math.pi, len(p.harmonics_mm_s))
    rated_hz = p.rated_speed_rpm / 60.0
    signal = np.zeros(n)
    for k, (amplitude, phase) in enumerate(
        zip(_harmonic_amplitudes(rated_hz, p), phases, strict=True), start=1
    ):
        # amplitude at the actual speed: velocity ~ speed, so acceleration ~ speed**2
        signal += amplitude * scale * np.sin(2.0 * math.pi * k * shaft_hz * times + phase)
    rng = np.random.default_rng([seed, round(t * 1000.0), 2])
    signal += rng.normal(0.0, p.noise_g * G, n)
    amplitude = impact_amplitude(severity, speed_rpm, p)
    if amplitude > 0.0:
        signal += _impacts(times, BPFO_ORDER * shaft_hz, amplitude, rng, p)
    signal -= signal.mean()  # AC coupled, like an IEPE accelerometer
    return signal


def _impacts(
    times: npt.NDArray[np.float64],
    bpfo_hz: float,
    amplitude: float,
    rng: np.random.Generator,
    p: MotorParameters,
) -> npt.NDArray[np.float64]:
    """Ring-downs of the resonance started by impacts every ``1 / bpfo_hz`` seconds."""
    tau = 1.0 / (p.resonance_damping * 2.0 * math.pi * p.resonance_hz)
    period = 1.0 / bpfo_hz
    first = math.floor((times[0] - 10.0 * tau) / period)  # earlier ones still ringing
    last = math.ceil(times[-1] / period)
    index = np.arange(first, last + 1)
    starts = index * period + rng.normal(0.0, p.impact_jitter * period, len(index))
    sizes = amplitude * np.clip(1.0 + rng.normal(0.0, p.impact_spread, len(index)), 0.0, None)
    since = times[None, :] - starts[:, None]
    ringing = (since >= 0.0) & (since < 10.0 * tau)
    since = np.where(ringing, since, 0.0)
    waves = np.exp(-since / tau) * np.sin(2.0 * math.pi * p.resonance_hz * since)
    result: npt.NDArray[np.float64] = (sizes[:, None] * np.where(ringing, waves, 0.0)).sum(axis=0)
    return result


def with_pins(reading: MotorReading, pins: dict[str, object]) -> MotorReading:
    """``reading`` with the fields named in ``pins`` replaced (pinned by the test API)."""
    fields = {k: v for k, v in pins.items() if k in MotorReading.__dataclass_fields__}
    return replace(reading, **fields) if fields else reading  # type: ignore[arg-type]
