"""The statistics behind the streaming indicators: Student t and normal quantiles, Fieller's
interval for the time a fitted line reaches a limit, the MAD of a sorted window.

Pure functions of floats (sources in the package docstring); no numpy, no scipy.
"""

from __future__ import annotations

import bisect
import math
from functools import lru_cache
from typing import Final

MAD_SCALE: Final = 1.4826
"""MAD -> sigma for normal data (1 / Phi^-1(3/4) = 1.482602..., rounded as the domain sheet)."""


def _t_abs_prob(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer df >= 1 (Abramowitz & Stegun 26.7.3-4)."""
    theta = math.atan(t / math.sqrt(df))
    s = math.sin(theta)
    c = math.cos(theta)
    c2 = c * c
    if df % 2:
        if df == 1:
            return 2.0 * theta / math.pi
        term = total = c
        for p in range(3, df - 1, 2):
            term *= c2 * (p - 1) / p
            total += term
        return 2.0 / math.pi * (theta + s * total)
    term = total = 1.0
    for p in range(2, df - 1, 2):
        term *= c2 * (p - 1) / p
        total += term
    return s * total


def normal_quantile(p: float) -> float:
    """Phi^-1(p) for 0.5 <= p < 1, by bisection on math.erf (exact to a few ulp)."""
    lo, hi = 0.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if 0.5 * (1.0 + math.erf(mid / math.sqrt(2.0))) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@lru_cache(maxsize=256)
def t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student t quantile: the t with P(|T| <= t) = confidence (t_(1+c)/2, df).

    df <= 30: exact, by bisection on the closed form for integer df (A&S 26.7.3-4).
    df > 30: Cornish-Fisher expansion to 1/df^4 around the normal quantile; checked against
    the exact distribution function to 1e-8 in probability (tests) for confidence <= 0.999.
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if df > 30:
        z = normal_quantile(0.5 * (1.0 + confidence))
        z2 = z * z
        g1 = z * (z2 + 1.0) / 4.0
        g2 = z * ((5.0 * z2 + 16.0) * z2 + 3.0) / 96.0
        g3 = z * (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) / 384.0
        g4 = z * ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) / 92160.0
        nu = float(df)
        return z + g1 / nu + g2 / nu**2 + g3 / nu**3 + g4 / nu**4
    lo, hi = 0.0, 0.5 * math.pi  # bisect on theta = atan(t / sqrt(df))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_abs_prob(math.sqrt(df) * math.tan(mid), df) < confidence:
            lo = mid
        else:
            hi = mid
    return math.sqrt(df) * math.tan(0.5 * (lo + hi))


def fieller_crossing(
    n: int,
    slope: float,
    ybar: float,
    stt: float,
    sse: float,
    limit: float,
    confidence: float,
) -> tuple[float, float, float] | None:
    """When the fitted line y = ybar + slope (t - tbar) reaches ``limit``, with an interval.

    Returns (d, d_lo, d_hi) measured from tbar (the mean sample time), or None when the slope
    is not significantly different from zero at ``confidence`` (then the Fieller set is
    unbounded: no finite estimate is published). The interval is the set of d where the
    confidence band of the mean line contains the limit:
    (limit - ybar - slope d)^2 <= q^2 s^2 (1/n + d^2 / stt), q = t_quantile(confidence, n - 2),
    s^2 = sse / (n - 2). Needs n >= 3 and stt > 0.
    """
    q = t_quantile(confidence, n - 2)
    q2s2 = q * q * sse / (n - 2)
    dy = limit - ybar
    a = slope * slope - q2s2 / stt
    if a <= 0.0:
        return None
    b = slope * dy
    root = math.sqrt(max(0.0, b * b - a * (dy * dy - q2s2 / n)))
    return dy / slope, (b - root) / a, (b + root) / a


def mad_of_sorted(s: list[float], median: float) -> float:
    """Median of |s_i - median| for an ascending list, in O(log n).

    The deviations below the median, read right to left (L), and those at or above it, read
    left to right (R), are two ascending sequences. The lower middle element of their merge is
    found by binary search on how many of the first m = (n + 1) // 2 come from L; for an even
    n the next element is the smaller of the two sequences' next ones.
    """
    n = len(s)
    p = bisect.bisect_left(s, median)  # L has p elements, R has n - p
    m = (n + 1) // 2
    lo, hi = max(0, m - (n - p)), min(m, p)
    while lo < hi:  # smallest i with L[i] >= R[m - i - 1]
        i = (lo + hi) // 2
        if median - s[p - 1 - i] < s[p + m - i - 1] - median:
            lo = i + 1
        else:
            hi = i
    i, j = lo, m - lo
    left = median - s[p - i] if i else -math.inf  # L[i - 1]
    right = s[p + j - 1] - median if j else -math.inf  # R[j - 1]
    lower = left if left > right else right
    if n % 2:
        return lower
    next_left = median - s[p - 1 - i] if i < p else math.inf  # L[i]
    next_right = s[p + j] - median if p + j < n else math.inf  # R[j]
    return 0.5 * (lower + (next_left if next_left < next_right else next_right))
