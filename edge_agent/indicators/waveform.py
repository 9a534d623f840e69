"""Time-domain features of one vibration window (ISO 13374 data manipulation).

Conventions (docs/indicators.md):

- `mean` is the mean of the raw window; every other feature is computed on the window with
  its mean removed, d = x - mean(x).
- Moments are **population** moments (divide by N): m_k = mean(d**k).
- Kurtosis is **Pearson** kurtosis m4 / m2**2 (Gaussian 3, sine 1.5, square 1), not the
  excess kurtosis that scipy, pandas, tsfresh and tsfel return by default (Gaussian 0).
- Skewness is m3 / m2**1.5.
- `peak` is 0-to-peak, max|d|; `p2p` is max(x) - min(x); `rms` is sqrt(m2).
- crest = peak / rms; shape = rms / mean|d|; impulse = peak / mean|d|;
  clearance = peak / mean(sqrt|d|)**2.
- A flat window (peak within rounding of the mean: a flat-lined sensor) has rms = peak = 0
  and every ratio NaN, never an exception or a rounding-noise value.

Results are in the units of the input.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# A window whose ripple is within this fraction of its largest magnitude is flat: what remains
# after removing the mean is rounding of the mean, not signal.
_FLAT: Final = 64 * float(np.finfo(np.float64).eps)

WAVEFORM_KEYS: Final = (
    "mean",
    "rms",
    "peak",
    "p2p",
    "crest_factor",
    "kurtosis",
    "skewness",
    "shape_factor",
    "impulse_factor",
    "clearance_factor",
)
"""The keys `waveform_features` returns, in order."""


def as_window(x: npt.ArrayLike) -> FloatArray:
    """`x` as a 1-D float64 array; ValueError if it is empty, not 1-D or not finite."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"expected a non-empty 1-D window, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("the window holds NaN or infinite samples")
    return a


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 else math.nan


def _flat(mean: float) -> dict[str, float]:
    ratios = dict.fromkeys(WAVEFORM_KEYS[4:], math.nan)
    return {"mean": mean, "rms": 0.0, "peak": 0.0, "p2p": 0.0, **ratios}


def waveform_features(x: npt.ArrayLike) -> dict[str, float]:
    """The time-domain features of one window, keyed as in `WAVEFORM_KEYS`.

    Population moments, Pearson kurtosis, mean removed first (see the module docstring).
    """
    a = as_window(x)
    n = a.size
    mean = float(a.mean())
    d = a - mean
    absd = np.abs(d)
    peak = float(absd.max())
    if peak <= _FLAT * abs(mean):
        return _flat(mean)
    # d*d once, reused for m2 and m4: an order of magnitude faster than d**3, d**4.
    d2 = d * d
    m2 = float(d2.sum()) / n
    m3 = float(np.dot(d2, d)) / n
    m4 = float(np.dot(d2, d2)) / n
    mean_abs = float(absd.sum()) / n
    mean_sqrt = float(np.sqrt(absd).sum()) / n
    rms = math.sqrt(m2)
    return {
        "mean": mean,
        "rms": rms,
        "peak": peak,
        "p2p": float(a.max() - a.min()),
        "crest_factor": _ratio(peak, rms),
        "kurtosis": _ratio(m4, m2 * m2),
        "skewness": _ratio(m3, m2 * rms),
        "shape_factor": _ratio(rms, mean_abs),
        "impulse_factor": _ratio(peak, mean_abs),
        "clearance_factor": _ratio(peak, mean_sqrt * mean_sqrt),
    }
