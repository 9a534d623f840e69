"""Rolling-element bearing defect frequencies and their envelope-spectrum lines.

Kinematic defect frequencies (inner ring rotating, outer ring fixed, no slip), with n rolling
elements of diameter d on pitch diameter D at contact angle a, r = (d / D) cos a and shaft
frequency fr = rpm / 60:

- FTF  = fr / 2 (1 - r)            cage (fundamental train)
- BPFO = n fr / 2 (1 - r)          outer-race defect
- BPFI = n fr / 2 (1 + r)          inner-race defect
- BSF  = fr D / (2 d) (1 - r**2)   ball spin; a ball defect strikes both races once per spin,
  so its line is at **2 x BSF** (key "bsf2"; many published tables, the CWRU one among them,
  list 2 x BSF under the name BSF).

Real bearings slip 1-2 %, so each line is searched in a +-3 % window (and at least +-1 bin).
For each defect the envelope line amplitude is read at 1x and 2x its frequency: the largest
bin of the Hann amplitude spectrum inside each search window, and each is divided by the
envelope floor, the median envelope amplitude over 10-500 Hz. A ratio with a zero floor, and a
line above fs / 2, is NaN.

The 1x line is the headline (`vibration_indicators` publishes it): 2x lines of one defect can
fall inside another's window. For a 6205, 2 x BPFI = 10.831x and 3 x BPFO = 10.754x shaft
speed are 0.7 % apart, so an outer-race fault would lift an inner-race figure that folded in
its 2x line. Read the 2x line as confirmation of the 1x one, not on its own.

Diameters may be in any length unit (only d / D matters).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from .spectrum import AmplitudeSpectrum, band_bins

SEARCH_TOLERANCE: Final = 0.03
"""Half-width of the line search window, as a fraction of the line frequency."""
FLOOR_BAND: Final = (10.0, 500.0)
"""Band (Hz) whose median envelope amplitude is the floor."""


@dataclass(frozen=True, slots=True)
class BearingGeometry:
    """A rolling-element bearing: element count, diameters (same length unit), contact angle."""

    balls: int
    ball_diameter: float
    pitch_diameter: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.balls < 1:
            raise ValueError(f"a bearing needs at least one rolling element, got {self.balls}")
        if not 0.0 < self.ball_diameter < self.pitch_diameter:
            raise ValueError(
                f"need 0 < ball_diameter ({self.ball_diameter}) < pitch_diameter "
                f"({self.pitch_diameter})"
            )
        if not 0.0 <= self.contact_angle_deg < 90.0:
            raise ValueError(f"contact angle must be in [0, 90) deg, got {self.contact_angle_deg}")


@dataclass(frozen=True, slots=True)
class DefectFrequencies:
    """FTF, BPFO, BPFI and BSF: in Hz, or in orders of shaft speed when fr = 1."""

    ftf: float
    bpfo: float
    bpfi: float
    bsf: float

    @property
    def bsf2(self) -> float:
        """2 x BSF: where a rolling-element defect shows."""
        return 2.0 * self.bsf


def defect_frequencies(geometry: BearingGeometry, shaft_hz: float = 1.0) -> DefectFrequencies:
    """Defect frequencies at shaft frequency `shaft_hz` (default 1: orders of shaft speed)."""
    r = geometry.ball_diameter / geometry.pitch_diameter
    r *= math.cos(math.radians(geometry.contact_angle_deg))
    half = shaft_hz / 2.0
    return DefectFrequencies(
        ftf=half * (1.0 - r),
        bpfo=geometry.balls * half * (1.0 - r),
        bpfi=geometry.balls * half * (1.0 + r),
        bsf=half * geometry.pitch_diameter / geometry.ball_diameter * (1.0 - r * r),
    )


@dataclass(frozen=True, slots=True)
class DefectSpec:
    """One published bearing line: its key and where its frequency comes from."""

    key: str
    description: str
    frequency: Callable[[DefectFrequencies], float]


DEFECTS: Final = (
    DefectSpec("ftf", "cage (fundamental train frequency)", lambda f: f.ftf),
    DefectSpec("bpfo", "outer race (ball pass frequency, outer)", lambda f: f.bpfo),
    DefectSpec("bpfi", "inner race (ball pass frequency, inner)", lambda f: f.bpfi),
    DefectSpec("bsf2", "rolling element (2 x ball spin frequency)", lambda f: f.bsf2),
)
"""The defects published, in order."""


@dataclass(frozen=True, slots=True)
class DefectLine:
    """A defect's envelope lines at 1x and 2x its frequency (0-to-peak, in the envelope's
    units), and the envelope floor they are compared with."""

    key: str
    freq_hz: float
    amp_1x: float
    amp_2x: float
    floor: float

    @property
    def ratio_1x(self) -> float:
        """amp_1x / envelope floor (NaN when the floor is zero)."""
        return _ratio(self.amp_1x, self.floor)

    @property
    def ratio_2x(self) -> float:
        """amp_2x / envelope floor (NaN when the floor is zero)."""
        return _ratio(self.amp_2x, self.floor)


def _ratio(amp: float, floor: float) -> float:
    return amp / floor if floor > 0.0 else math.nan


def line_amplitude(
    env: AmplitudeSpectrum, freq_hz: float, tolerance: float = SEARCH_TOLERANCE
) -> float:
    """Largest amplitude within +-`tolerance` x freq_hz (at least +-1 bin) of `freq_hz`.

    NaN when `freq_hz` is above fs / 2 (the line cannot be seen).
    """
    df = env.df
    last = env.amplitude.size - 1
    if not 0.0 < freq_hz <= last * df:
        return math.nan
    half = max(tolerance * freq_hz, df)
    k_lo = max(1, math.ceil((freq_hz - half) / df))
    k_hi = min(last, math.floor((freq_hz + half) / df))
    return float(env.amplitude[k_lo : k_hi + 1].max())


def envelope_floor(env: AmplitudeSpectrum, band: tuple[float, float] = FLOOR_BAND) -> float:
    """Median envelope amplitude over `band` (default 10-500 Hz)."""
    return float(np.median(env.amplitude[band_bins(env.n, env.fs, band[0], band[1])]))


def defect_lines(
    env: AmplitudeSpectrum,
    frequencies: DefectFrequencies,
    *,
    tolerance: float = SEARCH_TOLERANCE,
    floor_band: tuple[float, float] = FLOOR_BAND,
) -> tuple[DefectLine, ...]:
    """The envelope lines of every defect in `DEFECTS`, from an envelope spectrum."""
    floor = envelope_floor(env, floor_band)
    lines: list[DefectLine] = []
    for spec in DEFECTS:
        f = spec.frequency(frequencies)
        lines.append(
            DefectLine(
                key=spec.key,
                freq_hz=f,
                amp_1x=line_amplitude(env, f, tolerance),
                amp_2x=line_amplitude(env, 2.0 * f, tolerance),
                floor=floor,
            )
        )
    return tuple(lines)
