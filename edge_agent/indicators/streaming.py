"""Streaming indicators for slow, irregularly polled signals: one reading in, one output out.

ISO 13374 places these in data manipulation (window statistics, slopes, running hours) and
state detection (threshold alarms, drift) on the gateway; `LinearTrend` is the thin prognostic
layer (time to a limit, with its interval). Known answers: docs/indicators.md and the shared
domain sheet, section "Slow signals".

Contract shared by every indicator class
----------------------------------------
- ``update(t, x, good=True) -> Output``. ``t`` is in **seconds** (a float: epoch or monotonic,
  only differences are used; convert a ``ts_ms`` with ``ts_ms / 1000``). Everything is
  time-based, not sample-based, because polls are irregular — except the CUSUM and
  Page-Hinkley statistics, which are per-sample by their definitions.
- A reading is **skipped and counted** (``values["skipped"]``, cumulative, persisted) when
  ``good`` is False, ``x`` is None or not a finite number, ``t`` is not finite, or ``t`` is
  earlier than the last accepted ``t`` (equal is accepted). A skipped reading changes no other
  state: windows, delay timers and counters behave as if it never came. Its output repeats
  the last values with quality **bad**, so a stale value never travels as good (availability
  follows the last reading, as in Home Assistant's coordinator). Continuity across skipped
  readings is judged from the time between good ones (``max_gap_s``).
- Quality is **uncertain** when the indicator has too little good data; the rule is stated
  per class and in `SPECS`. Values are still computed then: use them with care.
- ``events`` lists transitions (`EventKind`); steady states produce none ("log transitions,
  count the rest").
- ``state()`` returns a JSON-safe dict (finite floats, ints, bools, None, one ``kind`` string,
  and for windowed indicators the window's samples as two float lists, so their state is
  O(window)); ``restore(state)`` on a fresh object built with the same parameters continues
  exactly as the uninterrupted object would (counters survive a restart). Values are pure
  functions of the state, which is why a restored object can answer before its next reading.

Conventions
-----------
- Time windows are half-open: at time ``t`` a window of ``window_s`` holds the good samples
  with ``t - window_s < t_i <= t``.
- Coverage of a window = sum over consecutive samples in it of ``min(t_i - t_(i-1),
  max_gap_s)`` (``max_gap_s`` None: no cap, coverage is then the span of the samples). Set
  ``max_gap_s`` to about three poll periods to make coverage see data gaps.
- Moments are population moments (divide by N), as for every indicator of this project.
- Windowed sums (for mean, std and the least-squares line) are running sums of u = t - t_ref
  and v = x - x_ref, relative to the window's mean time and mean value at the last exact
  recompute, so epoch-sized times and large offsets never cancel. They are recomputed exactly
  from the window (math.fsum for the references) after a full turnover of the window, and
  early when an eviction has cancelled more than four digits (a sample far from the rest has
  left: removing it leaves an error of eps * its v^2, however it is done). O(1) amortised;
  the relative error of a variance stays below about 1e-10. Welford's update with removal
  was the alternative: it has the same cancellation on removal and needs the same
  recompute, with more divisions per reading.
- Cost per reading is O(1) amortised (``RobustZ``: O(log n) searches plus a list insert and
  delete, memmoves in C). Treat ``Output.values`` as read-only. No numpy, no scipy, no I/O,
  no logging, no clock.

Standards and sources: ANSI/ISA-18.2-2016 (alarm deadband, on-delay and off-delay);
ISO 7870-4 and Page (1954) (tabular CUSUM with reference value k and decision interval h, both
in units of sigma); Page (1954) / Hinkley (1971) (Page-Hinkley change test with the running
mean); Fieller (1954) / inverse regression (interval of the time a fitted line reaches a
limit); Abramowitz & Stegun 26.7.3-4 (Student t distribution for integer degrees of freedom)
and the Cornish-Fisher expansion of its quantile in powers of 1/df; robust z with the MAD
scaled by 1.4826 (normal consistency constant, as the domain sheet writes it).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import ClassVar, Final, Literal, TypeAlias

from edge_agent.readings import Quality

Value: TypeAlias = float | int | bool | str | None
"""One output value (bool is an int; str only for enumerations such as a drift direction)."""
StateValue: TypeAlias = float | int | bool | str | list[float] | None
State: TypeAlias = dict[str, StateValue]
EventKind: TypeAlias = Literal[
    "alarm_raised", "alarm_cleared", "drift_detected", "drift_cleared", "zone_changed"
]
DriftMethod: TypeAlias = Literal["cusum", "page_hinkley"]

STATE_VERSION: Final = 1
MAD_SCALE: Final = 1.4826
"""MAD -> sigma for normal data (1 / Phi^-1(3/4) = 1.482602..., rounded as the domain sheet)."""
SECONDS_PER_HOUR: Final = 3600.0
_CANCELLATION: Final = 1e-4
"""Recompute a window's sums when n * variance < this * (sum of the squares that cancelled)."""


@dataclass(frozen=True, slots=True)
class Event:
    """A transition: what happened, the value that caused it, the limit it crossed, when.

    ``detail`` says which side: "high"/"low" for alarms, "up"/"down" for drift.
    """

    kind: EventKind
    value: float | None
    limit: float | None
    t: float
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """The result of one reading. ``events`` is a tuple (not a list) so the output is immutable."""

    values: dict[str, Value]
    quality: Quality
    events: tuple[Event, ...] = ()


# -- the tables: what each indicator publishes -------------------------------------------------


@dataclass(frozen=True, slots=True)
class ValueSpec:
    """One published value. ``unit``: "x" is the input's unit; "x/h" per hour; "1" is a ratio."""

    key: str
    unit: str
    doc: str


_SKIPPED = ValueSpec("skipped", "count", "readings skipped (bad, None, non-finite, out of order)")

ROLLING_STATS_VALUES: Final = (
    ValueSpec("count", "count", "good samples in the window"),
    ValueSpec("mean", "x", "mean over the window"),
    ValueSpec("std", "x", "population standard deviation (divide by N)"),
    ValueSpec("min", "x", "minimum over the window"),
    ValueSpec("max", "x", "maximum over the window"),
    _SKIPPED,
)
RUNNING_HOURS_VALUES: Final = (
    ValueSpec("hours", "h", "running time credited, in hours"),
    ValueSpec("running_s", "s", "running time credited, in seconds"),
    ValueSpec("starts", "count", "rising edges between consecutive good readings"),
    ValueSpec("duty", "1", "running_s / observed span (gaps included); None before 2 readings"),
    ValueSpec("running", "bool", "running at the last good reading"),
    ValueSpec("gaps", "count", "intervals longer than max_gap_s (credited max_gap_s at most)"),
    _SKIPPED,
)
THRESHOLD_ALARM_VALUES: Final = (
    ValueSpec("active", "bool", "high or low alarm active"),
    ValueSpec("high_active", "bool", "high alarm active (False when no high setpoint)"),
    ValueSpec("low_active", "bool", "low alarm active (False when no low setpoint)"),
    _SKIPPED,
)
RATE_OF_CHANGE_VALUES: Final = (
    ValueSpec("rate_per_s", "x/s", "(newest - oldest) / (t_newest - t_oldest) in the window"),
    ValueSpec("rate_per_h", "x/h", "the same per hour"),
    ValueSpec("count", "count", "good samples in the window"),
    _SKIPPED,
)
EWMA_VALUES: Final = (
    ValueSpec("ewma", "x", "exponentially weighted mean, time constant tau_s"),
    _SKIPPED,
)
DRIFT_VALUES: Final = (
    ValueSpec("drift", "bool", "a drift is latched (either direction)"),
    ValueSpec("direction", "text", '"up", "down", "both" or None'),
    ValueSpec("stat_up", "x", "CUSUM C+ or Page-Hinkley PH+ (x units)"),
    ValueSpec("stat_down", "x", "CUSUM C- or Page-Hinkley PH- (x units)"),
    ValueSpec("limit", "x", "decision limit: h * sigma (CUSUM) or lambda_ (Page-Hinkley)"),
    ValueSpec("mu0", "x", "CUSUM target mean; Page-Hinkley running mean"),
    ValueSpec("sigma", "x", "CUSUM sigma (None for Page-Hinkley)"),
    ValueSpec("learning", "bool", "still learning the baseline (no drift can signal)"),
    _SKIPPED,
)
LINEAR_TREND_VALUES: Final = (
    ValueSpec("slope_per_h", "x/h", "least-squares slope over the window"),
    ValueSpec("time_to_limit_h", "h", "from the last reading until the fitted line hits limit"),
    ValueSpec("time_to_limit_h_lo", "h", "lower end of its Fieller interval (0 if it is past)"),
    ValueSpec("time_to_limit_h_hi", "h", "upper end of its Fieller interval"),
    ValueSpec("r2", "1", "coefficient of determination of the fit"),
    ValueSpec("count", "count", "good samples in the window"),
    _SKIPPED,
)
ROBUST_Z_VALUES: Final = (
    ValueSpec("z", "1", "(x - median) / (1.4826 MAD) of the newest sample, window includes it"),
    ValueSpec("median", "x", "median over the window"),
    ValueSpec("mad", "x", "median absolute deviation (unscaled)"),
    ValueSpec("count", "count", "good samples in the window"),
    _SKIPPED,
)


def _keys(specs: tuple[ValueSpec, ...]) -> tuple[str, ...]:
    return tuple(s.key for s in specs)


# -- pure value functions ------------------------------------------------------------------------


def ewma_step(prev: float, x: float, dt: float, tau_s: float) -> float:
    """One irregular EWMA step: prev + alpha (x - prev), alpha = 1 - exp(-dt / tau_s)."""
    return prev - math.expm1(-dt / tau_s) * (x - prev)


def alarm_step(
    active: bool,
    since: float | None,
    t: float,
    breach: bool,
    clear: bool,
    on_delay_s: float,
    off_delay_s: float,
) -> tuple[bool, float | None]:
    """One ISA-18.2 step of one alarm side: returns the new (active, since).

    ``breach``: the value is at or beyond the setpoint; ``clear``: it is beyond the deadband on
    the safe side. ``since`` is when the pending condition (breach while inactive, clear while
    active) started; it restarts whenever the condition is interrupted.
    """
    if not active:
        if not breach:
            return False, None
        start = t if since is None else since
        return (True, None) if t - start >= on_delay_s else (False, start)
    if not clear:
        return True, None
    start = t if since is None else since
    return (False, None) if t - start >= off_delay_s else (True, start)


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


# -- shared machinery ------------------------------------------------------------------------------


def _check_window(window_s: float, min_coverage: float, max_gap_s: float | None) -> None:
    if not (math.isfinite(window_s) and window_s > 0.0):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s}")
    if not 0.0 <= min_coverage <= 1.0:
        raise ValueError(f"min_coverage must be in [0, 1], got {min_coverage}")
    if max_gap_s is not None and not max_gap_s > 0.0:
        raise ValueError(f"max_gap_s must be positive or None, got {max_gap_s}")


def _float(state: Mapping[str, StateValue], key: str) -> float:
    v = state[key]
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"state[{key!r}] must be a number, got {v!r}")
    return float(v)


def _opt_float(state: Mapping[str, StateValue], key: str) -> float | None:
    return None if state[key] is None else _float(state, key)


def _int(state: Mapping[str, StateValue], key: str) -> int:
    v = state[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"state[{key!r}] must be an int, got {v!r}")
    return v


def _bool(state: Mapping[str, StateValue], key: str) -> bool:
    v = state[key]
    if not isinstance(v, bool):
        raise ValueError(f"state[{key!r}] must be a bool, got {v!r}")
    return v


def _floats(state: Mapping[str, StateValue], key: str) -> list[float]:
    v = state[key]
    if not isinstance(v, list):
        raise ValueError(f"state[{key!r}] must be a list of numbers")
    return [float(e) for e in v]


class _Window:
    """Good samples in (t - span, t] with coverage and shifted running sums (see module doc).

    ``moments``: 0 keeps no sums, 1 keeps sums of v = x - x_ref, 2 also of u = t - t_ref.
    ``mag`` adds up v^2 of every sample added or removed since the last exact recompute: the
    size of the terms that cancel in svv - sv^2/n, so the rounding error is about
    eps * mag. An eviction that leaves n * variance below ``_CANCELLATION * mag`` (a sample
    100 sigma away has left) triggers a recompute, as does a full turnover of the window.
    """

    __slots__ = (
        "buf",
        "covered",
        "evicted",
        "mag",
        "max_gap",
        "moments",
        "span",
        "su",
        "suu",
        "suv",
        "sv",
        "svv",
        "t_ref",
        "x_ref",
    )

    def __init__(self, span: float, max_gap: float | None, moments: int) -> None:
        self.span = span
        self.max_gap = max_gap
        self.moments = moments
        self.buf: deque[tuple[float, float, float]] = deque()  # (t, x, credit to previous)
        self.covered = 0.0  # sum of the credits of all samples but the oldest
        self.evicted = 0  # samples gone since the last exact recompute
        self.t_ref = 0.0
        self.x_ref = 0.0
        self.su = self.sv = self.suu = self.suv = self.svv = self.mag = 0.0

    def _credit(self, dt: float) -> float:
        mg = self.max_gap
        return dt if mg is None or dt <= mg else mg

    def push(self, t: float, x: float) -> None:
        buf = self.buf
        if buf:
            c = t - buf[-1][0]
            mg = self.max_gap
            if mg is not None and c > mg:
                c = mg
            self.covered += c
        else:
            c = 0.0
            self.covered = 0.0
            self.evicted = 0
            self.t_ref = t
            self.x_ref = x
            self.su = self.sv = self.suu = self.suv = self.svv = self.mag = 0.0
        buf.append((t, x, c))
        if self.moments:
            v = x - self.x_ref
            vv = v * v
            self.sv += v
            self.svv += vv
            self.mag += vv
            if self.moments == 2:
                u = t - self.t_ref
                self.su += u
                self.suu += u * u
                self.suv += u * v

    def expire(self, t_now: float, on_evict: Callable[[float], None] | None = None) -> None:
        """Drop the samples at or before t_now - span (``on_evict`` sees each x dropped)."""
        cutoff = t_now - self.span
        buf = self.buf
        if not buf or buf[0][0] > cutoff:
            return
        moments = self.moments
        while buf and buf[0][0] <= cutoff:
            t, x, _ = buf.popleft()
            if buf:
                self.covered -= buf[0][2]
            self.evicted += 1
            if moments:
                v = x - self.x_ref
                vv = v * v
                self.sv -= v
                self.svv -= vv
                self.mag += vv
                if moments == 2:
                    u = t - self.t_ref
                    self.su -= u
                    self.suu -= u * u
                    self.suv -= u * v
            if on_evict is not None:
                on_evict(x)
        n = len(buf)
        if n and (
            self.evicted >= n
            or (moments and self.svv - self.sv * self.sv / n < _CANCELLATION * self.mag)
        ):
            self.recompute()

    def recompute(self) -> None:
        """Exact sums from the window, relative to its mean time and mean value."""
        buf = self.buf
        n = len(buf)
        t_ref = math.fsum(t for t, _, _ in buf) / n
        x_ref = math.fsum(x for _, x, _ in buf) / n
        self.t_ref, self.x_ref = t_ref, x_ref
        self.covered = math.fsum(c for _, _, c in itertools.islice(buf, 1, None))
        su = sv = suu = suv = svv = 0.0
        for t, x, _ in buf:
            v = x - x_ref
            u = t - t_ref
            sv += v
            svv += v * v
            su += u
            suu += u * u
            suv += u * v
        self.sv, self.svv, self.mag = sv, svv, svv
        if self.moments == 2:
            self.su, self.suu, self.suv = su, suu, suv
        self.evicted = 0

    def coverage_ok(self, min_coverage: float) -> bool:
        return self.covered >= min_coverage * self.span

    def state(self) -> State:
        return {
            "t": [t for t, _, _ in self.buf],
            "x": [x for _, x, _ in self.buf],
            "covered": self.covered,
            "evicted": self.evicted,
            "t_ref": self.t_ref,
            "x_ref": self.x_ref,
            "su": self.su,
            "sv": self.sv,
            "suu": self.suu,
            "suv": self.suv,
            "svv": self.svv,
            "mag": self.mag,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        ts, xs = _floats(state, "t"), _floats(state, "x")
        if len(ts) != len(xs):
            raise ValueError("state: window lists 't' and 'x' differ in length")
        self.buf.clear()
        prev: float | None = None
        for t, x in zip(ts, xs, strict=True):
            self.buf.append((t, x, 0.0 if prev is None else self._credit(t - prev)))
            prev = t
        self.covered = _float(state, "covered")
        self.evicted = _int(state, "evicted")
        self.t_ref, self.x_ref = _float(state, "t_ref"), _float(state, "x_ref")
        self.su, self.sv = _float(state, "su"), _float(state, "sv")
        self.suu, self.suv, self.svv = (_float(state, k) for k in ("suu", "suv", "svv"))
        self.mag = _float(state, "mag")


class _Indicator:
    """Skip accounting, state framing and the bad output shared by every indicator."""

    __slots__ = ("_last_t", "_skipped", "_values")
    KIND: ClassVar[str] = ""
    VALUES: ClassVar[tuple[ValueSpec, ...]] = ()
    KEYS: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self._last_t: float | None = None
        self._skipped = 0
        self._values: dict[str, Value] = dict.fromkeys(self.KEYS)
        self._values["skipped"] = 0

    def _state_values(self) -> dict[str, Value]:
        """The values as a pure function of the state (without "skipped")."""
        raise NotImplementedError

    def _refresh(self) -> None:
        self._values = self._state_values()
        self._values["skipped"] = self._skipped

    def _accept(self, t: float, x: float | bool | None, good: bool) -> float | None:
        """x as a float, or None after counting the reading as skipped."""
        if good and x is not None and math.isfinite(t):
            try:
                xf = float(x)
            except (TypeError, ValueError):
                xf = math.nan
            last = self._last_t
            if math.isfinite(xf) and (last is None or t >= last):
                self._last_t = t
                return xf
        self._skipped += 1
        return None

    def _skip(self) -> Output:
        values = dict(self._values)
        values["skipped"] = self._skipped
        return Output(values, Quality.BAD)

    def _emit(
        self, values: dict[str, Value], quality: Quality, events: tuple[Event, ...] = ()
    ) -> Output:
        values["skipped"] = self._skipped
        self._values = values
        return Output(values, quality, events)

    def _base_state(self) -> State:
        return {
            "kind": self.KIND,
            "v": STATE_VERSION,
            "last_t": self._last_t,
            "skipped": self._skipped,
        }

    def _restore_base(self, state: Mapping[str, StateValue]) -> None:
        if state.get("kind") != self.KIND or state.get("v") != STATE_VERSION:
            raise ValueError(
                f"state is for {state.get('kind')!r} v{state.get('v')}, "
                f"not {self.KIND!r} v{STATE_VERSION}"
            )
        try:
            self._last_t = _opt_float(state, "last_t")
            self._skipped = _int(state, "skipped")
        except KeyError as err:
            raise ValueError(f"state for {self.KIND!r} lacks {err}") from err

    @property
    def values(self) -> dict[str, Value]:
        """The last values (a copy), also right after `restore`."""
        return dict(self._values)


# -- 1. rolling statistics -------------------------------------------------------------------------


class RollingStats(_Indicator):
    """count, mean, population std, min and max of the good samples in (t - window_s, t].

    Mean and std come from shifted running sums (see module doc); min and max from monotonic
    deques (each sample enters and leaves each deque once). Uncertain when the window holds
    fewer than ``min_count`` samples or its coverage is below ``min_coverage * window_s``.
    """

    __slots__ = ("_max", "_min", "_win", "min_count", "min_coverage", "window_s")
    KIND = "rolling_stats"
    VALUES = ROLLING_STATS_VALUES
    KEYS = _keys(ROLLING_STATS_VALUES)

    def __init__(
        self,
        window_s: float,
        *,
        min_count: int = 2,
        min_coverage: float = 0.5,
        max_gap_s: float | None = None,
    ) -> None:
        _check_window(window_s, min_coverage, max_gap_s)
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        super().__init__()
        self.window_s = window_s
        self.min_count = min_count
        self.min_coverage = min_coverage
        self._win = _Window(window_s, max_gap_s, 1)
        self._max: deque[tuple[float, float]] = deque()  # x strictly decreasing
        self._min: deque[tuple[float, float]] = deque()  # x strictly increasing
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        win = self._win
        win.expire(t)
        win.push(t, xf)
        mx, mn = self._max, self._min
        while mx and mx[-1][1] <= xf:
            mx.pop()
        mx.append((t, xf))
        while mn and mn[-1][1] >= xf:
            mn.pop()
        mn.append((t, xf))
        cutoff = t - self.window_s
        while mx[0][0] <= cutoff:
            mx.popleft()
        while mn[0][0] <= cutoff:
            mn.popleft()
        return self._emit(*self._evaluate())

    def _push_extrema(self, t: float, xf: float) -> None:
        mx, mn = self._max, self._min
        while mx and mx[-1][1] <= xf:
            mx.pop()
        mx.append((t, xf))
        while mn and mn[-1][1] >= xf:
            mn.pop()
        mn.append((t, xf))

    def _state_values(self) -> dict[str, Value]:
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, Value], Quality]:
        win = self._win
        n = len(win.buf)
        if not n:
            return {
                "count": 0,
                "mean": None,
                "std": None,
                "min": None,
                "max": None,
            }, Quality.UNCERTAIN
        mean = win.x_ref + win.sv / n
        var = (win.svv - win.sv * win.sv / n) / n
        values: dict[str, Value] = {
            "count": n,
            "mean": mean,
            "std": math.sqrt(var) if var > 0.0 else 0.0,
            "min": self._min[0][1],
            "max": self._max[0][1],
        }
        good = n >= self.min_count and win.covered >= self.min_coverage * self.window_s
        return values, Quality.GOOD if good else Quality.UNCERTAIN

    def state(self) -> State:
        """JSON-safe state (the window's samples included)."""
        return self._base_state() | self._win.state()

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._win.restore(state)
        self._max.clear()
        self._min.clear()
        for t, x, _ in self._win.buf:
            self._push_extrema(t, x)
        self._refresh()


# -- 2. running hours ------------------------------------------------------------------------------


class RunningHours(_Indicator):
    """Running time, starts and duty of a machine from a bool (or a scalar above a threshold).

    Between consecutive good readings k, k+1, the interval is credited min(t_(k+1) - t_k,
    max_gap_s) when reading k was running; a longer interval is a data gap, not credited beyond
    ``max_gap_s`` (and counted in ``gaps``). A start is a rising edge between consecutive good
    readings (a machine already running at the very first reading has no observed start).
    duty = running_s / observed span, where the span is t_last - t_first over all readings
    ever (gaps included: a lower bound when data is missing). Running means ``x > running_above``
    when that is set, else ``x`` is read as a bool (non-zero = running).

    Uncertain for the first reading (no interval yet) and for a reading that closes a data gap.
    """

    __slots__ = (
        "_gaps",
        "_running",
        "_running_s",
        "_span_s",
        "_starts",
        "max_gap_s",
        "running_above",
    )
    KIND = "running_hours"
    VALUES = RUNNING_HOURS_VALUES
    KEYS = _keys(RUNNING_HOURS_VALUES)

    def __init__(self, *, max_gap_s: float, running_above: float | None = None) -> None:
        if not (math.isfinite(max_gap_s) and max_gap_s > 0.0):
            raise ValueError(f"max_gap_s must be a positive number of seconds, got {max_gap_s}")
        super().__init__()
        self.max_gap_s = max_gap_s
        self.running_above = None if running_above is None else float(running_above)
        self._running_s = 0.0
        self._span_s = 0.0
        self._starts = 0
        self._gaps = 0
        self._running: bool | None = None
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        last_t = self._last_t
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        running = xf > self.running_above if self.running_above is not None else xf != 0.0
        gap = False
        if last_t is not None:
            dt = t - last_t
            self._span_s += dt
            if dt > self.max_gap_s:
                gap = True
                self._gaps += 1
                dt = self.max_gap_s
            if self._running:
                self._running_s += dt
            if running and not self._running:
                self._starts += 1
        self._running = running
        values = self._state_values()
        return self._emit(values, Quality.UNCERTAIN if gap or last_t is None else Quality.GOOD)

    def _state_values(self) -> dict[str, Value]:
        return {
            "hours": self._running_s / SECONDS_PER_HOUR,
            "running_s": self._running_s,
            "starts": self._starts,
            "duty": self._running_s / self._span_s if self._span_s > 0.0 else None,
            "running": self._running,
            "gaps": self._gaps,
        }

    def state(self) -> State:
        """JSON-safe state: totals, starts, gaps, last t and last running flag."""
        return self._base_state() | {
            "running_s": self._running_s,
            "span_s": self._span_s,
            "starts": self._starts,
            "gaps": self._gaps,
            "running": self._running,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._running_s = _float(state, "running_s")
        self._span_s = _float(state, "span_s")
        self._starts = _int(state, "starts")
        self._gaps = _int(state, "gaps")
        self._running = None if state["running"] is None else _bool(state, "running")
        self._refresh()


# -- 3. threshold alarm ----------------------------------------------------------------------------


class ThresholdAlarm(_Indicator):
    """High and/or low alarm with deadband, on-delay and off-delay (ANSI/ISA-18.2 semantics).

    High: raised when x >= high continuously for ``on_delay_s``; cleared when
    x < high - deadband continuously for ``off_delay_s``. Low, mirrored: raised when x <= low
    for ``on_delay_s``; cleared when x > low + deadband for ``off_delay_s``. "Continuously" is
    judged at the good readings (sample and hold): a delay of 0 acts on the reading itself.
    Skipped readings neither advance nor interrupt a delay; an interval between good readings
    longer than ``max_gap_s`` (if set) interrupts it, and that reading is uncertain (the alarm
    state is held from before the gap). Events: alarm_raised / alarm_cleared, detail
    "high"/"low", with the reading's value, the setpoint and t.
    """

    __slots__ = (
        "_high_active",
        "_high_since",
        "_low_active",
        "_low_since",
        "deadband",
        "high",
        "low",
        "max_gap_s",
        "off_delay_s",
        "on_delay_s",
    )
    KIND = "threshold_alarm"
    VALUES = THRESHOLD_ALARM_VALUES
    KEYS = _keys(THRESHOLD_ALARM_VALUES)

    def __init__(
        self,
        *,
        high: float | None = None,
        low: float | None = None,
        deadband: float = 0.0,
        on_delay_s: float = 0.0,
        off_delay_s: float = 0.0,
        max_gap_s: float | None = None,
    ) -> None:
        if high is None and low is None:
            raise ValueError("a threshold alarm needs a high or a low setpoint")
        if high is not None and low is not None and not low < high:
            raise ValueError(f"low setpoint {low} must be below high setpoint {high}")
        if deadband < 0.0 or on_delay_s < 0.0 or off_delay_s < 0.0:
            raise ValueError("deadband, on_delay_s and off_delay_s must be >= 0")
        if max_gap_s is not None and not max_gap_s > 0.0:
            raise ValueError(f"max_gap_s must be positive or None, got {max_gap_s}")
        super().__init__()
        self.high = None if high is None else float(high)
        self.low = None if low is None else float(low)
        self.deadband = float(deadband)
        self.on_delay_s, self.off_delay_s, self.max_gap_s = on_delay_s, off_delay_s, max_gap_s
        self._high_active = self._low_active = False
        self._high_since: float | None = None
        self._low_since: float | None = None
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        last_t = self._last_t
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        gap = last_t is not None and self.max_gap_s is not None and t - last_t > self.max_gap_s
        if gap:
            self._high_since = self._low_since = None
        events: list[Event] = []
        high, low = self.high, self.low
        if high is not None:
            was = self._high_active
            self._high_active, self._high_since = alarm_step(
                was, self._high_since, t, xf >= high, xf < high - self.deadband,
                self.on_delay_s, self.off_delay_s,
            )  # fmt: skip
            if self._high_active != was:
                kind: EventKind = "alarm_raised" if self._high_active else "alarm_cleared"
                events.append(Event(kind, xf, high, t, "high"))
        if low is not None:
            was = self._low_active
            self._low_active, self._low_since = alarm_step(
                was, self._low_since, t, xf <= low, xf > low + self.deadband,
                self.on_delay_s, self.off_delay_s,
            )  # fmt: skip
            if self._low_active != was:
                kind = "alarm_raised" if self._low_active else "alarm_cleared"
                events.append(Event(kind, xf, low, t, "low"))
        quality = Quality.UNCERTAIN if gap else Quality.GOOD
        return self._emit(self._state_values(), quality, tuple(events))

    def _state_values(self) -> dict[str, Value]:
        return {
            "active": self._high_active or self._low_active,
            "high_active": self._high_active,
            "low_active": self._low_active,
        }

    def state(self) -> State:
        """JSON-safe state: both sides' active flags and pending-delay start times."""
        return self._base_state() | {
            "high_active": self._high_active,
            "high_since": self._high_since,
            "low_active": self._low_active,
            "low_since": self._low_since,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._high_active = _bool(state, "high_active")
        self._low_active = _bool(state, "low_active")
        self._high_since = _opt_float(state, "high_since")
        self._low_since = _opt_float(state, "low_since")
        self._refresh()


# -- 4. rate of change ----------------------------------------------------------------------------


class RateOfChange(_Indicator):
    """Difference quotient between the oldest and the newest good sample in the window.

    rate = (x_newest - x_oldest) / (t_newest - t_oldest), over (t - window_s, t]; None with
    fewer than two distinct times. Sensitive to noise at both ends by design (the classic
    rate-of-change check); `LinearTrend` gives the least-squares slope. Uncertain with fewer
    than ``min_count`` samples or coverage below ``min_coverage * window_s``.
    """

    __slots__ = ("_win", "min_count", "min_coverage", "window_s")
    KIND = "rate_of_change"
    VALUES = RATE_OF_CHANGE_VALUES
    KEYS = _keys(RATE_OF_CHANGE_VALUES)

    def __init__(
        self,
        window_s: float,
        *,
        min_count: int = 2,
        min_coverage: float = 0.5,
        max_gap_s: float | None = None,
    ) -> None:
        _check_window(window_s, min_coverage, max_gap_s)
        super().__init__()
        self.window_s = window_s
        self.min_count = max(2, min_count)
        self.min_coverage = min_coverage
        self._win = _Window(window_s, max_gap_s, 0)
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        win = self._win
        win.expire(t)
        win.push(t, xf)
        return self._emit(*self._evaluate())

    def _state_values(self) -> dict[str, Value]:
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, Value], Quality]:
        buf = self._win.buf
        n = len(buf)
        rate: float | None = None
        if n >= 2:
            (t0, x0, _), (t1, x1, _) = buf[0], buf[-1]
            if t1 > t0:
                rate = (x1 - x0) / (t1 - t0)
        good = n >= self.min_count and rate is not None and self._win.coverage_ok(self.min_coverage)
        values: dict[str, Value] = {
            "rate_per_s": rate,
            "rate_per_h": None if rate is None else rate * SECONDS_PER_HOUR,
            "count": n,
        }
        return values, Quality.GOOD if good else Quality.UNCERTAIN

    def state(self) -> State:
        """JSON-safe state (the window's samples included)."""
        return self._base_state() | self._win.state()

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._win.restore(state)
        self._refresh()


# -- 5a. EWMA --------------------------------------------------------------------------------------


class Ewma(_Indicator):
    """Exponentially weighted moving average for irregular steps, time constant ``tau_s``.

    ewma_k = ewma_(k-1) + alpha_k (x_k - ewma_(k-1)), alpha_k = 1 - exp(-dt_k / tau_s); the
    first good reading initialises it. A reading stands for the interval that ends at it, so
    a step seen by many uneven polls or by one gives the same value; a reading at the same t
    as the previous one has weight 0. Uncertain until ``warmup_s`` (default ``tau_s``: the
    first value then weighs at most 1/e) has passed since the first good reading.
    """

    __slots__ = ("_ewma", "_first_t", "tau_s", "warmup_s")
    KIND = "ewma"
    VALUES = EWMA_VALUES
    KEYS = _keys(EWMA_VALUES)

    def __init__(self, tau_s: float, *, warmup_s: float | None = None) -> None:
        if not (math.isfinite(tau_s) and tau_s > 0.0):
            raise ValueError(f"tau_s must be a positive number of seconds, got {tau_s}")
        super().__init__()
        self.tau_s = tau_s
        self.warmup_s = tau_s if warmup_s is None else warmup_s
        self._ewma: float | None = None
        self._first_t: float | None = None
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        last_t = self._last_t
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        if self._ewma is None or last_t is None:
            self._ewma = xf
            self._first_t = t
        else:
            self._ewma = ewma_step(self._ewma, xf, t - last_t, self.tau_s)
        return self._emit(self._state_values(), self._quality())

    def _quality(self) -> Quality:
        first, last = self._first_t, self._last_t
        if first is None or last is None or last - first < self.warmup_s:
            return Quality.UNCERTAIN
        return Quality.GOOD

    def _state_values(self) -> dict[str, Value]:
        return {"ewma": self._ewma}

    def state(self) -> State:
        """JSON-safe state: the average, its first t and the last t."""
        return self._base_state() | {"ewma": self._ewma, "first_t": self._first_t}

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._ewma = _opt_float(state, "ewma")
        self._first_t = _opt_float(state, "first_t")
        self._refresh()


# -- 5b. drift: CUSUM or Page-Hinkley --------------------------------------------------------------


class DriftDetector(_Indicator):
    """Two-sided drift detection, ``method`` "cusum" (default) or "page_hinkley".

    CUSUM (tabular, ISO 7870-4): C+ = max(0, x - (mu0 + k sigma) + C+prev),
    C- = max(0, (mu0 - k sigma) - x + C-prev); drift up when C+ > h sigma, down when
    C- > h sigma. ``mu0`` and ``sigma`` are either given, or learned from the first good readings
    (at least ``learn_n`` readings and ``learn_s`` seconds: mean, and sample standard deviation
    with n - 1, floored at ``sigma_min``) and then frozen; learning readings do not feed the
    sums. A signal means "deviates from the baseline" and stays while the level stays shifted.

    Page-Hinkley: with the running mean xbar_t of the readings since the last (re)baseline,
    m+ += x - xbar_t - delta, PH+ = m+ - min(m+); m- += x - xbar_t + delta,
    PH- = max(m-) - m-; drift when PH > lambda_ (``delta`` and ``lambda_`` in x units), not
    before ``learn_n`` readings and ``learn_s`` seconds. A signal means "the level changed".
    The running mean spans every reading since the last (re)baseline, so after a lasting step
    the statistic returns to 0 only slowly (a return to the old level is signalled as a change
    the other way): call `rebaseline` to accept a new level.

    A drift latches (event drift_detected, detail "up"/"down", with the reading's value and the
    limit). It clears (event drift_cleared) when its statistic is back to 0 (``auto_clear``;
    CUSUM: the excess has been used up, the process is back near mu0), or at `rebaseline`.
    Uncertain while learning. Both statistics are per reading: with irregular polls the
    detection delay in time scales with the poll period.
    """

    __slots__ = (
        "_dn",
        "_drift_dn",
        "_drift_up",
        "_learn_m2",
        "_learn_mean",
        "_learn_n",
        "_learn_t0",
        "_m_dn",
        "_m_up",
        "_mu0",
        "_ph_mean",
        "_ph_n",
        "_sigma",
        "_up",
        "_xtr_dn",
        "_xtr_up",
        "auto_clear",
        "delta",
        "h",
        "k",
        "lambda_",
        "learn_n",
        "learn_s",
        "method",
        "mu0",
        "sigma",
        "sigma_min",
    )
    KIND = "drift"
    VALUES = DRIFT_VALUES
    KEYS = _keys(DRIFT_VALUES)

    def __init__(
        self,
        *,
        method: DriftMethod = "cusum",
        mu0: float | None = None,
        sigma: float | None = None,
        k: float = 0.5,
        h: float = 5.0,
        delta: float | None = None,
        lambda_: float | None = None,
        learn_n: int = 30,
        learn_s: float = 0.0,
        sigma_min: float = 0.0,
        auto_clear: bool = True,
    ) -> None:
        if method not in ("cusum", "page_hinkley"):
            raise ValueError(f"method must be 'cusum' or 'page_hinkley', got {method!r}")
        if method == "page_hinkley" and (delta is None or lambda_ is None):
            raise ValueError("page_hinkley needs delta and lambda_ (in the input's unit)")
        if method == "cusum" and sigma is None and learn_n < 2:
            raise ValueError("learning sigma needs learn_n >= 2")
        if sigma is not None and not sigma > 0.0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        if k < 0.0 or h <= 0.0 or learn_n < 0 or learn_s < 0.0 or sigma_min < 0.0:
            raise ValueError("k, learn_n, learn_s, sigma_min must be >= 0 and h > 0")
        super().__init__()
        self.method: DriftMethod = method
        self.mu0 = None if mu0 is None else float(mu0)
        self.sigma = None if sigma is None else float(sigma)
        self.k, self.h = float(k), float(h)
        self.delta = None if delta is None else float(delta)
        self.lambda_ = None if lambda_ is None else float(lambda_)
        self.learn_n, self.learn_s, self.sigma_min = learn_n, learn_s, sigma_min
        self.auto_clear = auto_clear
        self._reset(relearn=True)
        self._refresh()

    def _reset(self, relearn: bool) -> None:
        self._up = self._dn = 0.0
        self._drift_up = self._drift_dn = False
        self._m_up = self._m_dn = self._xtr_up = self._xtr_dn = 0.0
        if relearn:
            self._mu0, self._sigma = self.mu0, self.sigma
            self._learn_n = 0
            self._learn_mean = self._learn_m2 = 0.0
            self._learn_t0: float | None = None
            self._ph_n = 0
            self._ph_mean = 0.0

    @property
    def learning(self) -> bool:
        """True while the baseline is being learned (no drift can be signalled)."""
        if self.method == "cusum":
            return self._mu0 is None or self._sigma is None
        t0, last = self._learn_t0, self._last_t
        return self._ph_n < self.learn_n or t0 is None or last is None or last - t0 < self.learn_s

    def _limit(self) -> float | None:
        if self.method == "page_hinkley":
            return self.lambda_
        return None if self._sigma is None else self.h * self._sigma

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        if self._learn_t0 is None:
            self._learn_t0 = t
        if self.method == "cusum":
            if self._mu0 is None or self._sigma is None:
                self._learn(t, xf)
                return self._emit(self._state_values(), Quality.UNCERTAIN)
            ks = self.k * self._sigma
            self._up = max(0.0, xf - (self._mu0 + ks) + self._up)
            self._dn = max(0.0, (self._mu0 - ks) - xf + self._dn)
        else:
            self._page_hinkley(xf)
        if self.learning:
            return self._emit(self._state_values(), Quality.UNCERTAIN)
        limit = self._limit()
        assert limit is not None
        events: list[Event] = []
        for side, stat in (("up", self._up), ("down", self._dn)):
            latched = self._drift_up if side == "up" else self._drift_dn
            if not latched and stat > limit:
                latched = True
                events.append(Event("drift_detected", xf, limit, t, side))
            elif latched and self.auto_clear and stat <= 0.0:
                latched = False
                events.append(Event("drift_cleared", xf, limit, t, side))
            if side == "up":
                self._drift_up = latched
            else:
                self._drift_dn = latched
        return self._emit(self._state_values(), Quality.GOOD, tuple(events))

    def _learn(self, t: float, xf: float) -> None:
        self._learn_n += 1
        d = xf - self._learn_mean
        self._learn_mean += d / self._learn_n
        self._learn_m2 += d * (xf - self._learn_mean)
        t0 = self._learn_t0
        if self._learn_n >= max(self.learn_n, 1) and t0 is not None and t - t0 >= self.learn_s:
            if self._mu0 is None:
                self._mu0 = self._learn_mean
            if self._sigma is None:
                s = math.sqrt(self._learn_m2 / (self._learn_n - 1)) if self._learn_n > 1 else 0.0
                self._sigma = max(s, self.sigma_min)

    def _page_hinkley(self, xf: float) -> None:
        delta = self.delta
        assert delta is not None
        self._ph_n += 1
        self._ph_mean += (xf - self._ph_mean) / self._ph_n
        dev = xf - self._ph_mean
        self._m_up += dev - delta
        self._xtr_up = min(self._xtr_up, self._m_up)
        self._up = self._m_up - self._xtr_up
        self._m_dn += dev + delta
        self._xtr_dn = max(self._xtr_dn, self._m_dn)
        self._dn = self._xtr_dn - self._m_dn

    def rebaseline(self, t: float, *, relearn: bool = True) -> Output:
        """Clear any latched drift (drift_cleared events at ``t``) and zero the statistics.

        ``relearn`` (default): also forget what was learned: CUSUM learns again the mu0/sigma
        that were not given; Page-Hinkley restarts its running mean and warm-up. Use it after
        maintenance or a deliberate change of operating point. ``relearn=False`` only restarts
        the statistics against the same baseline.
        """
        limit = self._limit()
        events = tuple(
            Event("drift_cleared", None, limit, t, side)
            for side, latched in (("up", self._drift_up), ("down", self._drift_dn))
            if latched
        )
        self._reset(relearn)
        quality = Quality.UNCERTAIN if self.learning else Quality.GOOD
        return self._emit(self._state_values(), quality, events)

    def _state_values(self) -> dict[str, Value]:
        up, dn = self._drift_up, self._drift_dn
        cusum = self.method == "cusum"
        return {
            "drift": up or dn,
            "direction": "both" if up and dn else "up" if up else "down" if dn else None,
            "stat_up": self._up,
            "stat_down": self._dn,
            "limit": self._limit(),
            "mu0": self._mu0 if cusum else (self._ph_mean if self._ph_n else None),
            "sigma": self._sigma if cusum else None,
            "learning": self.learning,
        }

    def state(self) -> State:
        """JSON-safe state: baseline, learning sums, statistics and latched sides."""
        return self._base_state() | {
            "mu0": self._mu0,
            "sigma": self._sigma,
            "learn_n": self._learn_n,
            "learn_mean": self._learn_mean,
            "learn_m2": self._learn_m2,
            "learn_t0": self._learn_t0,
            "up": self._up,
            "down": self._dn,
            "m_up": self._m_up,
            "m_down": self._m_dn,
            "extreme_up": self._xtr_up,
            "extreme_down": self._xtr_dn,
            "ph_n": self._ph_n,
            "ph_mean": self._ph_mean,
            "drift_up": self._drift_up,
            "drift_down": self._drift_dn,
        }

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._mu0, self._sigma = _opt_float(state, "mu0"), _opt_float(state, "sigma")
        self._learn_n = _int(state, "learn_n")
        self._learn_mean, self._learn_m2 = _float(state, "learn_mean"), _float(state, "learn_m2")
        self._learn_t0 = _opt_float(state, "learn_t0")
        self._up, self._dn = _float(state, "up"), _float(state, "down")
        self._m_up, self._m_dn = _float(state, "m_up"), _float(state, "m_down")
        self._xtr_up, self._xtr_dn = _float(state, "extreme_up"), _float(state, "extreme_down")
        self._ph_n, self._ph_mean = _int(state, "ph_n"), _float(state, "ph_mean")
        self._drift_up, self._drift_dn = _bool(state, "drift_up"), _bool(state, "drift_down")
        self._refresh()


# -- 6. linear trend and time to a limit -----------------------------------------------------------


class LinearTrend(_Indicator):
    """Least-squares line over (t - window_s, t] and the time until it reaches ``limit``.

    The slope comes from shifted running sums (O(1) per reading, see module doc). The time to
    the limit is t* - t_last, t* = tbar + (limit - ybar) / slope, with the Fieller interval at
    ``confidence`` (`fieller_crossing`; Student t quantile from `t_quantile`, n - 2 degrees
    of freedom). All three are None when no finite estimate exists: no limit, fewer than 3
    samples, a slope not significantly different from 0 (this is "slope ~ 0"), or a slope
    pointing away (t* earlier than the last reading: the line moves away from the limit, also
    when it is already beyond it: that is a threshold alarm's job). The lower end is clipped
    at 0 (the limit may be reached now). r2 is None when x is constant. Uncertain with fewer
    than ``min_count`` (>= 3) samples or coverage below ``min_coverage * window_s``.
    """

    __slots__ = ("_win", "confidence", "limit", "min_count", "min_coverage", "window_s")
    KIND = "linear_trend"
    VALUES = LINEAR_TREND_VALUES
    KEYS = _keys(LINEAR_TREND_VALUES)

    def __init__(
        self,
        window_s: float,
        limit: float | None = None,
        *,
        confidence: float = 0.95,
        min_count: int = 3,
        min_coverage: float = 0.5,
        max_gap_s: float | None = None,
    ) -> None:
        _check_window(window_s, min_coverage, max_gap_s)
        if not 0.0 < confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        super().__init__()
        self.window_s, self.confidence = window_s, confidence
        self.limit = None if limit is None else float(limit)
        self.min_count = max(3, min_count)
        self.min_coverage = min_coverage
        self._win = _Window(window_s, max_gap_s, 2)
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        win = self._win
        win.expire(t)
        win.push(t, xf)
        return self._emit(*self._evaluate())

    def _state_values(self) -> dict[str, Value]:
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, Value], Quality]:
        win = self._win
        n = len(win.buf)
        values: dict[str, Value] = dict.fromkeys(self.KEYS)
        values["count"] = n
        stt = win.suu - win.su * win.su / n if n else 0.0
        if n < 2 or stt <= 1e-12 * win.suu or stt <= 0.0:
            return values, Quality.UNCERTAIN
        stv = win.suv - win.su * win.sv / n
        svv = max(0.0, win.svv - win.sv * win.sv / n)
        slope = stv / stt
        values["slope_per_h"] = slope * SECONDS_PER_HOUR
        values["r2"] = min(1.0, stv * stv / (stt * svv)) if svv > 0.0 else None
        limit, t_last = self.limit, self._last_t
        if n >= 3 and limit is not None and t_last is not None:
            sse = max(0.0, svv - slope * stv)
            ybar = win.x_ref + win.sv / n
            cross = fieller_crossing(n, slope, ybar, stt, sse, limit, self.confidence)
            to_tbar = (win.t_ref - t_last) + win.su / n  # tbar - t_last, without epoch-sized terms
            if cross is not None and to_tbar + cross[0] >= 0.0:
                d, lo, hi = cross
                values["time_to_limit_h"] = (to_tbar + d) / SECONDS_PER_HOUR
                values["time_to_limit_h_lo"] = max(0.0, to_tbar + lo) / SECONDS_PER_HOUR
                values["time_to_limit_h_hi"] = (to_tbar + hi) / SECONDS_PER_HOUR
        good = n >= self.min_count and win.covered >= self.min_coverage * self.window_s
        return values, Quality.GOOD if good else Quality.UNCERTAIN

    def state(self) -> State:
        """JSON-safe state (the window's samples included)."""
        return self._base_state() | self._win.state()

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._win.restore(state)
        self._refresh()


# -- 7. robust z -----------------------------------------------------------------------------------


class RobustZ(_Indicator):
    """Robust z of the newest reading: (x - median) / (1.4826 MAD) over (t - window_s, t].

    The window includes the newest reading. A sorted copy of the window is kept (bisect
    insert/remove: a C-level memmove), the median is read off it and the MAD found in
    O(log n) (`mad_of_sorted`). z is None when MAD = 0 (e.g. a quantised, steady signal).
    Uncertain with fewer than ``min_count`` samples, coverage below
    ``min_coverage * window_s``, or MAD = 0.
    """

    __slots__ = ("_sorted", "_win", "min_count", "min_coverage", "window_s")
    KIND = "robust_z"
    VALUES = ROBUST_Z_VALUES
    KEYS = _keys(ROBUST_Z_VALUES)

    def __init__(
        self,
        window_s: float,
        *,
        min_count: int = 5,
        min_coverage: float = 0.5,
        max_gap_s: float | None = None,
    ) -> None:
        _check_window(window_s, min_coverage, max_gap_s)
        super().__init__()
        self.window_s = window_s
        self.min_count = max(1, min_count)
        self.min_coverage = min_coverage
        self._win = _Window(window_s, max_gap_s, 0)
        self._sorted: list[float] = []
        self._refresh()

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the module doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        self._win.expire(t, self._drop)
        self._win.push(t, xf)
        bisect.insort(self._sorted, xf)
        return self._emit(*self._evaluate())

    def _drop(self, x: float) -> None:
        srt = self._sorted
        del srt[bisect.bisect_left(srt, x)]

    def _state_values(self) -> dict[str, Value]:
        return self._evaluate()[0]

    def _evaluate(self) -> tuple[dict[str, Value], Quality]:
        srt = self._sorted
        n = len(srt)
        if not n:
            return {"z": None, "median": None, "mad": None, "count": 0}, Quality.UNCERTAIN
        half = n // 2
        median = srt[half] if n % 2 else 0.5 * (srt[half - 1] + srt[half])
        mad = mad_of_sorted(srt, median)
        x = self._win.buf[-1][1]
        z = (x - median) / (MAD_SCALE * mad) if mad > 0.0 else None
        good = z is not None and n >= self.min_count and self._win.coverage_ok(self.min_coverage)
        values: dict[str, Value] = {"z": z, "median": median, "mad": mad, "count": n}
        return values, Quality.GOOD if good else Quality.UNCERTAIN

    def state(self) -> State:
        """JSON-safe state (the window's samples included)."""
        return self._base_state() | self._win.state()

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._win.restore(state)
        self._sorted = sorted(x for _, x, _ in self._win.buf)
        self._refresh()


# -- the table of indicators -----------------------------------------------------------------------

StreamingIndicator: TypeAlias = (
    RollingStats
    | RunningHours
    | ThresholdAlarm
    | RateOfChange
    | Ewma
    | DriftDetector
    | LinearTrend
    | RobustZ
)


@dataclass(frozen=True, slots=True)
class IndicatorSpec:
    """One kind of streaming indicator: its config name, class, values, events, data rule."""

    kind: str
    factory: Callable[..., StreamingIndicator]
    values: tuple[ValueSpec, ...]
    events: tuple[EventKind, ...]
    uncertain_when: str


_WINDOW_RULE = "fewer than min_count samples, or window coverage < min_coverage * window_s"

SPECS: Final[Mapping[str, IndicatorSpec]] = MappingProxyType(
    {
        s.kind: s
        for s in (
            IndicatorSpec("rolling_stats", RollingStats, ROLLING_STATS_VALUES, (),
                          _WINDOW_RULE + " (defaults 2 and 0.5)"),
            IndicatorSpec("running_hours", RunningHours, RUNNING_HOURS_VALUES, (),
                          "the first reading, and a reading that closes a data gap"),
            IndicatorSpec("threshold_alarm", ThresholdAlarm, THRESHOLD_ALARM_VALUES,
                          ("alarm_raised", "alarm_cleared"),
                          "a reading after a gap longer than max_gap_s (delays restarted)"),
            IndicatorSpec("rate_of_change", RateOfChange, RATE_OF_CHANGE_VALUES, (),
                          _WINDOW_RULE + " (defaults 2 and 0.5), or no rate"),
            IndicatorSpec("ewma", Ewma, EWMA_VALUES, (),
                          "less than warmup_s (default tau_s) since the first reading"),
            IndicatorSpec("drift", DriftDetector, DRIFT_VALUES,
                          ("drift_detected", "drift_cleared"),
                          "learning the baseline (learn_n readings and learn_s seconds)"),
            IndicatorSpec("linear_trend", LinearTrend, LINEAR_TREND_VALUES, (),
                          _WINDOW_RULE + " (defaults 3 and 0.5)"),
            IndicatorSpec("robust_z", RobustZ, ROBUST_Z_VALUES, (),
                          _WINDOW_RULE + " (defaults 5 and 0.5), or MAD = 0"),
        )
    }
)  # fmt: skip
"""Every streaming indicator by its config name (the engine builds them from this table)."""
