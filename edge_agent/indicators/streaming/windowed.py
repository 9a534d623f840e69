"""Indicators over a time window: rolling statistics, rate of change, linear trend, robust z.

Each keeps a `_Window` of its good samples; see the package docstring for the contract.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Mapping

from edge_agent.readings import Quality

from .base import (
    LINEAR_TREND_VALUES,
    RATE_OF_CHANGE_VALUES,
    ROBUST_Z_VALUES,
    ROLLING_STATS_VALUES,
    SECONDS_PER_HOUR,
    Output,
    State,
    StateValue,
    Value,
    _Indicator,
    _keys,
)
from .stats import MAD_SCALE, fieller_crossing, mad_of_sorted
from .window import _check_window, _Window


class _Windowed(_Indicator):
    """What the window indicators share: a reading slides the window and the values are
    evaluated afresh; the state is the base's plus the window's samples. A subclass gives
    `_evaluate`, and `_pushed` / `_expire` / `_rebuild` when it keeps more than the window."""

    __slots__ = ("_win", "min_count", "min_coverage", "window_s")

    def _setup(self, window_s: float, min_count: int, min_coverage: float, win: _Window) -> None:
        self.window_s = window_s
        self.min_count = min_count
        self.min_coverage = min_coverage
        self._win = win

    def update(self, t: float, x: float | bool | None, good: bool = True) -> Output:
        """Add one reading; see the package doc for skipped readings."""
        xf = self._accept(t, x, good)
        if xf is None:
            return self._skip()
        self._expire(t)
        self._win.push(t, xf)
        self._pushed(t, xf)
        return self._emit(*self._evaluate())

    def _expire(self, t: float) -> None:
        self._win.expire(t)

    def _pushed(self, t: float, x: float) -> None:
        """After (t, x) joined the window."""

    def _rebuild(self) -> None:
        """After restore(): rebuild what is kept beside the window from its samples."""

    def _evaluate(self) -> tuple[dict[str, Value], Quality]:
        raise NotImplementedError

    def _state_values(self) -> dict[str, Value]:
        return self._evaluate()[0]

    def state(self) -> State:
        """JSON-safe state (the window's samples included)."""
        return self._base_state() | self._win.state()

    def restore(self, state: Mapping[str, StateValue]) -> None:
        """Continue from `state` (from an object built with the same parameters)."""
        self._restore_base(state)
        self._win.restore(state)
        self._rebuild()
        self._refresh()


# -- 1. rolling statistics -------------------------------------------------------------------------


class RollingStats(_Windowed):
    """count, mean, population std, min and max of the good samples in (t - window_s, t].

    Mean and std come from shifted running sums (see package doc); min and max from monotonic
    deques (each sample enters and leaves each deque once). Uncertain when the window holds
    fewer than ``min_count`` samples or its coverage is below ``min_coverage * window_s``.
    """

    __slots__ = ("_max", "_min")
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
        self._setup(window_s, min_count, min_coverage, _Window(window_s, max_gap_s, 1))
        self._max: deque[tuple[float, float]] = deque()  # x strictly decreasing
        self._min: deque[tuple[float, float]] = deque()  # x strictly increasing
        self._refresh()

    def _pushed(self, t: float, x: float) -> None:
        self._push_extrema(t, x)
        mx, mn = self._max, self._min
        cutoff = t - self.window_s
        while mx[0][0] <= cutoff:
            mx.popleft()
        while mn[0][0] <= cutoff:
            mn.popleft()

    def _push_extrema(self, t: float, xf: float) -> None:
        mx, mn = self._max, self._min
        while mx and mx[-1][1] <= xf:
            mx.pop()
        mx.append((t, xf))
        while mn and mn[-1][1] >= xf:
            mn.pop()
        mn.append((t, xf))

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

    def _rebuild(self) -> None:
        self._max.clear()
        self._min.clear()
        for t, x, _ in self._win.buf:
            self._push_extrema(t, x)


# -- 4. rate of change ----------------------------------------------------------------------------


class RateOfChange(_Windowed):
    """Difference quotient between the oldest and the newest good sample in the window.

    rate = (x_newest - x_oldest) / (t_newest - t_oldest), over (t - window_s, t]; None with
    fewer than two distinct times. Sensitive to noise at both ends by design (the classic
    rate-of-change check); `LinearTrend` gives the least-squares slope. Uncertain with fewer
    than ``min_count`` samples or coverage below ``min_coverage * window_s``.
    """

    __slots__ = ()
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
        self._setup(window_s, max(2, min_count), min_coverage, _Window(window_s, max_gap_s, 0))
        self._refresh()

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


# -- 6. linear trend and time to a limit -----------------------------------------------------------


class LinearTrend(_Windowed):
    """Least-squares line over (t - window_s, t] and the time until it reaches ``limit``.

    The slope comes from shifted running sums (O(1) per reading, see package doc). The time to
    the limit is t* - t_last, t* = tbar + (limit - ybar) / slope, with the Fieller interval at
    ``confidence`` (`fieller_crossing`; Student t quantile from `t_quantile`, n - 2 degrees
    of freedom). All three are None when no finite estimate exists: no limit, fewer than 3
    samples, a slope not significantly different from 0 (this is "slope ~ 0"), or a slope
    pointing away (t* earlier than the last reading: the line moves away from the limit, also
    when it is already beyond it: that is a threshold alarm's job). The lower end is clipped
    at 0 (the limit may be reached now). r2 is None when x is constant. Uncertain with fewer
    than ``min_count`` (>= 3) samples or coverage below ``min_coverage * window_s``.
    """

    __slots__ = ("confidence", "limit")
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
        self._setup(window_s, max(3, min_count), min_coverage, _Window(window_s, max_gap_s, 2))
        self.confidence = confidence
        self.limit = None if limit is None else float(limit)
        self._refresh()

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


# -- 7. robust z -----------------------------------------------------------------------------------


class RobustZ(_Windowed):
    """Robust z of the newest reading: (x - median) / (1.4826 MAD) over (t - window_s, t].

    The window includes the newest reading. A sorted copy of the window is kept (bisect
    insert/remove: a C-level memmove), the median is read off it and the MAD found in
    O(log n) (`mad_of_sorted`). z is None when MAD = 0 (e.g. a quantised, steady signal).
    Uncertain with fewer than ``min_count`` samples, coverage below
    ``min_coverage * window_s``, or MAD = 0.
    """

    __slots__ = ("_sorted",)
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
        self._setup(window_s, max(1, min_count), min_coverage, _Window(window_s, max_gap_s, 0))
        self._sorted: list[float] = []
        self._refresh()

    def _expire(self, t: float) -> None:
        self._win.expire(t, self._drop)

    def _pushed(self, t: float, x: float) -> None:
        bisect.insort(self._sorted, x)

    def _drop(self, x: float) -> None:
        srt = self._sorted
        del srt[bisect.bisect_left(srt, x)]

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

    def _rebuild(self) -> None:
        self._sorted = sorted(x for _, x, _ in self._win.buf)
