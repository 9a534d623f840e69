"""Explicit unit conversions for vibration and temperature values.

Each conversion is a tiny named function so a call site says what it converts; no unit is
ever implied. Constants:

- standard gravity g0 = 9.80665 m/s2 (exact, by definition; CGPM 1901, ISO 80000-3);
- 1 in = 25.4 mm (exact, international inch of 1959);
- degC = (degF - 32) * 5 / 9;
- peak = sqrt(2) * RMS, for a **pure sine only**. Any other waveform has its own crest factor,
  so converting an overall (broadband) peak reading with `rms_from_sine_peak` is an
  approximation that the caller owns (ISO 10816 zone tables take RMS).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

STANDARD_GRAVITY: Final = 9.80665
"""m/s2 per g (exact)."""
MM_PER_INCH: Final = 25.4
"""mm per inch (exact)."""
SINE_CREST: Final = math.sqrt(2.0)
"""Peak / RMS of a pure sine."""

ACCELERATION_TO_M_S2: Final[Mapping[str, float]] = MappingProxyType(
    {"m/s2": 1.0, "g": STANDARD_GRAVITY}
)
"""Factor taking an acceleration in the keyed unit to m/s2 (the units `vibration_indicators`
accepts)."""


def g_to_m_s2(value: float) -> float:
    """Acceleration in g (standard gravity) -> m/s2."""
    return value * STANDARD_GRAVITY


def m_s2_to_g(value: float) -> float:
    """Acceleration in m/s2 -> g (standard gravity)."""
    return value / STANDARD_GRAVITY


def in_s_to_mm_s(value: float) -> float:
    """Velocity in in/s -> mm/s."""
    return value * MM_PER_INCH


def mm_s_to_in_s(value: float) -> float:
    """Velocity in mm/s -> in/s."""
    return value / MM_PER_INCH


def degf_to_degc(value: float) -> float:
    """Temperature in degrees Fahrenheit -> degrees Celsius."""
    return (value - 32.0) * 5.0 / 9.0


def degc_to_degf(value: float) -> float:
    """Temperature in degrees Celsius -> degrees Fahrenheit."""
    return value * 9.0 / 5.0 + 32.0


def rms_from_sine_peak(peak: float) -> float:
    """0-to-peak amplitude of a pure sine -> its RMS (divide by sqrt 2)."""
    return peak / SINE_CREST


def sine_peak_from_rms(rms: float) -> float:
    """RMS of a pure sine -> its 0-to-peak amplitude (multiply by sqrt 2)."""
    return rms * SINE_CREST


def acceleration_factor(units: str) -> float:
    """Factor taking an acceleration in `units` ("m/s2" or "g") to m/s2.

    Raises ValueError for any other unit: an unknown unit is never guessed.
    """
    try:
        return ACCELERATION_TO_M_S2[units]
    except KeyError:
        known = ", ".join(repr(u) for u in ACCELERATION_TO_M_S2)
        raise ValueError(f"unknown acceleration unit {units!r}: use one of {known}") from None
