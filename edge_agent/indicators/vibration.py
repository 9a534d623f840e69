"""`vibration_indicators`: the full indicator set of one acceleration window.

What it returns (the input is converted to m/s2 first; velocity is always mm/s):

- mean, rms, peak, p2p: m/s2; peak is 0-to-peak, p2p is max - min (`waveform`);
- crest_factor, kurtosis, skewness, shape_factor, impulse_factor, clearance_factor: ratios;
  kurtosis is Pearson (Gaussian 3);
- velocity_rms_mm_s: RMS velocity over 10-1000 Hz (2-1000 Hz when shaft_hz <= 10 Hz, i.e.
  <= 600 r/min), the acceleration power divided by (2 pi f)**2 bin by bin (`spectrum`);
- iso10816_zone: "A".."D" of velocity_rms_mm_s in `iso` (only with `iso`; omitted when the
  shaft is known to turn below 120 r/min, where no zone applies);
- band_rms_<lo>_<hi>: acceleration RMS over each band, m/s2 (band_rms_10_1000; a fractional
  edge is written with "p": 2.5 -> 2p5);
- amp_1x, amp_2x, amp_3x: 0-to-peak acceleration at 1x, 2x, 3x shaft speed, m/s2 (only with
  `shaft_hz`);
- ftf_amp, bpfo_amp, bpfi_amp, bsf2_amp: envelope line amplitude at the defect frequency
  (its 1x line, +-3 % search), m/s2; ftf_ratio, bpfo_ratio, bpfi_ratio, bsf2_ratio: that
  amplitude / the median envelope floor over 10-500 Hz (only with `bearing` and `shaft_hz`).
  The 2x lines are in `bearing.defect_lines`, not published (see the `bearing` docstring).

ISO 13374 places this in data manipulation (features) and, for the zone, state detection.
Conventions and formulas: the `waveform`, `spectrum`, `bearing` and `iso10816` docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy.typing as npt

from .bearing import BearingGeometry, defect_frequencies, defect_lines
from .iso10816 import MIN_SPEED_RPM, ZoneTable, zone
from .spectrum import band_rms, envelope_spectrum, harmonic_amplitudes, power_spectrum, velocity_rms
from .units import acceleration_factor
from .waveform import as_window, waveform_features

VELOCITY_BAND: Final = (10.0, 1000.0)
"""Band (Hz) of the severity velocity, ISO 10816-3."""
LOW_SPEED_VELOCITY_BAND: Final = (2.0, 1000.0)
"""Band (Hz) of the severity velocity for machines at or below `LOW_SPEED_RPM`."""
LOW_SPEED_RPM: Final = 600.0
ENVELOPE_BAND: Final = (2000.0, 5000.0)
"""Default envelope band-pass (Hz), for sample rates of 12-25.6 kHz."""


def band_key(lo: float, hi: float) -> str:
    """The result key of a band: band_rms_10_1000; a fractional edge 2.5 is written 2p5."""
    return f"band_rms_{_edge(lo)}_{_edge(hi)}"


def _edge(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v)).replace(".", "p")


def vibration_indicators(
    x: npt.ArrayLike,
    fs: float,
    *,
    units: str = "m/s2",
    shaft_hz: float | None = None,
    bearing: BearingGeometry | None = None,
    bands: Sequence[tuple[float, float]] = (),
    iso: ZoneTable | None = None,
    envelope_band: tuple[float, float] = ENVELOPE_BAND,
) -> dict[str, float | str]:
    """The full indicator set of one acceleration window `x` sampled at `fs` Hz.

    `units` is "m/s2" or "g" (converted with g0 = 9.80665 m/s2). `shaft_hz` is the measured
    shaft frequency (rpm / 60), or None when unknown (pass None, not 0, for a stopped
    machine). Keys and units: the module docstring. ValueError for a bad window, unit, sample
    rate or band (a band above fs / 2 is an error, never clipped).
    """
    if shaft_hz is not None and not (math.isfinite(shaft_hz) and shaft_hz > 0.0):
        raise ValueError(f"shaft_hz must be a positive number of Hz or None, got {shaft_hz!r}")
    a = as_window(x)
    factor = acceleration_factor(units)
    if factor != 1.0:
        a = a * factor
    out: dict[str, float | str] = dict(waveform_features(a))

    spec = power_spectrum(a, fs)
    rpm = None if shaft_hz is None else 60.0 * shaft_hz
    lo, hi = VELOCITY_BAND
    if rpm is not None and rpm <= LOW_SPEED_RPM:
        lo, hi = LOW_SPEED_VELOCITY_BAND
    velocity = 1000.0 * velocity_rms(spec, lo, hi)
    out["velocity_rms_mm_s"] = velocity
    if iso is not None and (rpm is None or rpm >= MIN_SPEED_RPM):
        out["iso10816_zone"] = zone(velocity, iso)

    for b_lo, b_hi in bands:
        out[band_key(b_lo, b_hi)] = band_rms(spec, b_lo, b_hi)

    if shaft_hz is not None:
        amp_1x, amp_2x, amp_3x = harmonic_amplitudes(spec, shaft_hz)
        out["amp_1x"], out["amp_2x"], out["amp_3x"] = amp_1x, amp_2x, amp_3x
        if bearing is not None:
            env = envelope_spectrum(a, fs, envelope_band)
            for line in defect_lines(env, defect_frequencies(bearing, shaft_hz)):
                out[f"{line.key}_amp"] = line.amp_1x
                out[f"{line.key}_ratio"] = line.ratio_1x
    return out
