"""Streaming indicators: known answers, streaming == batch, restarts, skipped and thin data.

Known answers come from the domain sheet ("Slow signals"); batch references are written here
independently of the streaming code (two-pass sums, statistics.median, partial-sum forms).
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.indicators.streaming import (
    MAD_SCALE,
    SPECS,
    DriftDetector,
    Event,
    Ewma,
    LinearTrend,
    Output,
    RateOfChange,
    RobustZ,
    RollingStats,
    RunningHours,
    StreamingIndicator,
    ThresholdAlarm,
    _t_abs_prob,
    fieller_crossing,
    mad_of_sorted,
    t_quantile,
)
from edge_agent.readings import Quality

Sample = tuple[float, float | None, bool]  # (t, x, good)

T0 = 1_764_000_000.0  # an epoch-sized start, so cancellation against large t would show
SETTINGS = settings(max_examples=100, deadline=None, database=None)
PER_KIND = settings(max_examples=40, deadline=None, database=None)  # x 9 indicator configs


def feed(ind: StreamingIndicator, samples: Sequence[Sample]) -> list[Output]:
    return [ind.update(t, x, good) for t, x, good in samples]


def good_only(samples: Sequence[Sample]) -> list[tuple[float, float]]:
    return [(t, x) for t, x, g in samples if g and x is not None]


@st.composite
def series(
    draw: st.DrawFn,
    *,
    max_size: int = 60,
    dt_max: float = 5.0,
    x_min: float = -1e3,
    x_max: float = 1e3,
    bad: bool = True,
) -> list[Sample]:
    """Irregular time series with repeated times, data gaps, and optionally bad readings."""
    n = draw(st.integers(1, max_size))
    t = T0 + draw(st.floats(0, 1e5))
    out: list[Sample] = []
    for _ in range(n):
        t += draw(
            st.one_of(
                st.floats(0.0, dt_max),
                st.sampled_from([0.0, 1.0, 2.5]),
                st.floats(dt_max, 20 * dt_max),  # a data gap
            )
        )
        x = draw(st.floats(x_min, x_max))
        if bad and draw(st.integers(0, 5)) == 0:
            out.append((t, draw(st.sampled_from([x, None])), False))
        elif bad and draw(st.integers(0, 9)) == 0:
            out.append((t, None, True))
        else:
            out.append((t, x, True))
    return out


# -- known answers (domain sheet, "Slow signals") ------------------------------------------------


def test_running_hours_known_answer() -> None:
    rh = RunningHours(max_gap_s=30.0)
    t = [0, 10, 20, 30, 40, 100, 110, 200]
    run = [0, 1, 1, 1, 0, 1, 1, 1]
    out = [rh.update(ti, bool(r)) for ti, r in zip(t, run, strict=True)][-1]
    assert out.values["running_s"] == 70.0
    assert out.values["hours"] == 70.0 / 3600.0
    assert out.values["starts"] == 2
    assert out.values["duty"] == 0.35
    assert out.values["gaps"] == 2  # 40 -> 100 (stopped) and 110 -> 200 (credited 30 s)


def test_running_hours_from_a_scalar_threshold() -> None:
    rh = RunningHours(max_gap_s=30.0, running_above=5.0)
    t = [0, 10, 20, 30, 40, 100, 110, 200]
    amps = [0.0, 12.0, 11.0, 9.0, 5.0, 7.0, 6.0, 8.0]  # 5.0 itself is not running
    out = [rh.update(ti, a) for ti, a in zip(t, amps, strict=True)][-1]
    assert (out.values["running_s"], out.values["starts"], out.values["duty"]) == (70.0, 2, 0.35)


ALARM_X = [70, 81, 82, 79, 81, 82, 83, 84, 76, 74, 73, 81, 70]
ALARM_ACTIVE = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_high_alarm_known_answer_and_events() -> None:
    alarm = ThresholdAlarm(high=80.0, deadband=5.0, on_delay_s=2.0, off_delay_s=1.0)
    outs = [alarm.update(float(i), x) for i, x in enumerate(ALARM_X)]
    assert [1 if o.values["active"] else 0 for o in outs] == ALARM_ACTIVE
    assert [o.values["high_active"] for o in outs] == [bool(a) for a in ALARM_ACTIVE]
    events = [e for o in outs for e in o.events]
    assert events == [
        Event("alarm_raised", 83.0, 80.0, 6.0, "high"),
        Event("alarm_cleared", 73.0, 80.0, 10.0, "high"),
    ]
    assert all(o.quality is Quality.GOOD for o in outs)


def test_low_alarm_is_the_mirror_image() -> None:
    alarm = ThresholdAlarm(low=-80.0, deadband=5.0, on_delay_s=2.0, off_delay_s=1.0)
    outs = [alarm.update(float(i), -x) for i, x in enumerate(ALARM_X)]
    assert [1 if o.values["low_active"] else 0 for o in outs] == ALARM_ACTIVE
    assert [1 if o.values["active"] else 0 for o in outs] == ALARM_ACTIVE
    assert not any(o.values["high_active"] for o in outs)
    assert [(e.kind, e.t, e.detail) for o in outs for e in o.events] == [
        ("alarm_raised", 6.0, "low"),
        ("alarm_cleared", 10.0, "low"),
    ]


def test_setpoints_belong_to_the_alarm_side() -> None:
    high = ThresholdAlarm(high=80.0, deadband=5.0)
    assert high.update(0.0, 80.0).values["high_active"]  # x >= SP raises
    assert high.update(1.0, 75.0).values["high_active"]  # clears only below SP - deadband
    assert not high.update(2.0, 74.99).values["high_active"]
    low = ThresholdAlarm(low=20.0, deadband=5.0)
    assert low.update(0.0, 20.0).values["low_active"]  # x <= SP raises
    assert low.update(1.0, 25.0).values["low_active"]  # clears only above SP + deadband
    assert not low.update(2.0, 25.01).values["low_active"]


def test_a_machine_running_at_the_first_reading_has_no_observed_start() -> None:
    rh = RunningHours(max_gap_s=30.0)
    outs = feed(rh, [(0.0, 1.0, True), (10.0, 1.0, True), (20.0, 0.0, True), (30.0, 1.0, True)])
    assert [o.values["starts"] for o in outs] == [0, 0, 0, 1]
    assert outs[-1].values["running_s"] == 20.0


def test_alarm_delays_are_time_based_not_sample_based() -> None:
    alarm = ThresholdAlarm(high=80.0, deadband=5.0, on_delay_s=2.0, off_delay_s=1.0)
    # irregular polls: 0.5 s apart, then one 3 s step; continuity is judged at readings
    outs = feed(alarm, [(0.0, 81.0, True), (0.5, 81.0, True), (1.9, 81.0, True)])
    assert not any(o.values["active"] for o in outs)
    assert alarm.update(2.0, 81.0).values["active"]
    zero_delay = ThresholdAlarm(high=80.0)
    assert zero_delay.update(0.0, 80.0).values["active"]  # >= SP, no delay: raised at once
    assert not zero_delay.update(1.0, 79.9).values["active"]  # deadband 0, no delay


def test_cusum_known_answer() -> None:
    det = DriftDetector(method="cusum", mu0=10.0, sigma=1.0, k=0.5, h=5.0)
    xs = [10.0] * 10 + [11.5] * 10
    outs = [det.update(float(i), x) for i, x in enumerate(xs)]
    first = next(i for i, o in enumerate(outs) if o.values["drift"])
    assert first == 15
    assert outs[15].values["stat_up"] == 6.0
    assert outs[14].values["stat_up"] == 5.0  # 5.0 is not > h sigma
    assert outs[15].events == (Event("drift_detected", 11.5, 5.0, 15.0, "up"),)
    assert [i for i, o in enumerate(outs) if o.events] == [15]  # latched, not repeated
    assert outs[15].values["direction"] == "up"
    assert all(o.quality is Quality.GOOD for o in outs)


def test_linear_trend_known_answer_fieller() -> None:
    y = [1.0, 1.2, 1.1, 1.4, 1.5, 1.4, 1.7, 1.8, 1.7, 2.0]
    trend = LinearTrend(window_s=10.0, limit=3.0)
    out = feed(trend, [(float(i), v, True) for i, v in enumerate(y)])[-1]
    v = out.values
    assert isinstance(v["slope_per_h"], float)
    assert round(v["slope_per_h"] / 3600.0, 7) == 0.1018182
    hours = (v["time_to_limit_h"], v["time_to_limit_h_lo"], v["time_to_limit_h_hi"])
    assert all(isinstance(h, float) for h in hours)
    t_star, lo, hi = (9.0 + h * 3600.0 for h in hours)  # type: ignore[operator]
    assert (round(t_star, 4), round(lo, 4), round(hi, 4)) == (19.4286, 16.3697, 24.4861)
    assert out.quality is Quality.GOOD


def test_linear_trend_known_answer_on_epoch_time() -> None:
    y = [1.0, 1.2, 1.1, 1.4, 1.5, 1.4, 1.7, 1.8, 1.7, 2.0]
    trend = LinearTrend(window_s=10.0, limit=3.0)
    v = feed(trend, [(T0 + i, yi, True) for i, yi in enumerate(y)])[-1].values
    assert isinstance(v["time_to_limit_h"], float)
    assert v["time_to_limit_h"] * 3600.0 == pytest.approx(10.4286, abs=5e-5)


def test_robust_z_known_answer() -> None:
    rz = RobustZ(window_s=10.0)
    out = feed(rz, [(float(i), x, True) for i, x in enumerate([1.0, 2.0, 3.0, 4.0, 100.0])])[-1]
    assert out.values["median"] == 3.0
    assert out.values["mad"] == 1.0
    assert isinstance(out.values["z"], float)
    assert round(out.values["z"], 4) == 65.4256


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (3, 3.1824), (5, 2.5706), (8, 2.3060), (10, 2.2281),
     (20, 2.0860), (30, 2.0423), (31, 2.0395), (40, 2.0211), (60, 2.0003), (120, 1.9799)],
)  # fmt: skip
def test_t_quantile_matches_the_printed_table(df: int, expected: float) -> None:
    assert round(t_quantile(0.95, df), 4) == expected


@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99, 0.999])
def test_t_quantile_inverts_the_exact_cdf(confidence: float) -> None:
    for df in range(1, 31):
        assert _t_abs_prob(t_quantile(confidence, df), df) == pytest.approx(confidence, abs=1e-12)
    for df in (31, 35, 50, 100, 500):  # Cornish-Fisher side, checked against the exact CDF
        assert _t_abs_prob(t_quantile(confidence, df), df) == pytest.approx(confidence, abs=1e-8)
    assert t_quantile(0.99, 1) == pytest.approx(63.6567, abs=1e-4)


def test_fieller_unbounded_when_the_slope_is_not_significant() -> None:
    # slope 0.01 with residual sd ~1 over 10 points: no finite crossing time
    assert fieller_crossing(10, 0.01, 0.0, 82.5, 8.0, 3.0, 0.95) is None
    assert fieller_crossing(10, 0.1018182, 1.48, 82.5, 0.1, 3.0, 0.95) is not None


def test_ewma_irregular_steps() -> None:
    ew = Ewma(tau_s=10.0)
    ew.update(0.0, 0.0)
    out = ew.update(10.0, 1.0)
    assert out.values["ewma"] == pytest.approx(1.0 - math.exp(-1.0), rel=1e-15)
    assert out.quality is Quality.GOOD  # one tau of data
    # the same step seen by uneven polls gives the same value: alpha composes in time (a new
    # reading stands for the interval that ends at it)
    split = Ewma(tau_s=10.0)
    outs = feed(split, [(0.0, 0.0, True), (0.3, 1.0, True), (4.0, 1.0, True), (10.0, 1.0, True)])
    assert outs[-1].values["ewma"] == pytest.approx(1.0 - math.exp(-1.0), rel=1e-12)
    assert outs[1].quality is Quality.UNCERTAIN


@given(steps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=20), tau=st.floats(0.5, 100))
@SETTINGS
def test_ewma_of_a_step_depends_on_elapsed_time_only(steps: list[float], tau: float) -> None:
    ew = Ewma(tau_s=tau)
    ew.update(T0, 0.0)
    t = T0
    for dt in steps:
        t += dt
        out = ew.update(t, 1.0)
    expected = -math.expm1(-(t - T0) / tau)
    assert out.values["ewma"] == pytest.approx(expected, rel=1e-9, abs=1e-12)


# -- streaming == batch --------------------------------------------------------------------


def window_of(
    samples: Sequence[tuple[float, float]], t: float, w: float
) -> list[tuple[float, float]]:
    return [(ti, xi) for ti, xi in samples if t - w < ti <= t]


@given(samples=series(), w=st.floats(0.5, 60.0))
@SETTINGS
def test_rolling_stats_equal_a_direct_computation(samples: list[Sample], w: float) -> None:
    rs = RollingStats(window_s=w)
    seen: list[tuple[float, float]] = []
    for t, x, good in samples:
        out = rs.update(t, x, good)
        if not good or x is None:
            continue
        seen.append((t, x))
        xs = [xi for _, xi in window_of(seen, t, w)]
        span = max(xs) - min(xs)
        v = out.values
        assert v["count"] == len(xs)
        assert v["min"] == min(xs)
        assert v["max"] == max(xs)
        assert v["mean"] == pytest.approx(statistics.fmean(xs), rel=1e-12, abs=1e-9 * (span + 1))
        std = statistics.pstdev(xs)  # exact (fractions inside)
        assert isinstance(v["std"], float)
        assert v["std"] ** 2 == pytest.approx(std**2, rel=1e-9, abs=1e-10 * (span + 1) ** 2)


def test_rolling_stats_no_cancellation_on_a_large_offset() -> None:
    rs = RollingStats(window_s=100.0)
    xs = [1e9 + (0.001 if i % 2 else -0.001) for i in range(1000)]
    out = feed(rs, [(T0 + i, x, True) for i, x in enumerate(xs)])[-1]
    # naive sums of x and x^2 would lose every digit here (x^2 ~ 1e18, variance ~ 1e-6)
    assert out.values["std"] == pytest.approx(statistics.pstdev(xs[-100:]), rel=1e-9)
    assert out.values["mean"] == statistics.fmean(xs[-100:])


def test_an_outlier_leaving_the_window_leaves_no_error() -> None:
    small = [0.001, -0.002, 0.0015, 0.0005, -0.001, 0.002]
    samples = [(T0, 1e6, True)] + [(T0 + 1 + i, x, True) for i, x in enumerate(small)]
    rs = RollingStats(window_s=5.0)
    trend = LinearTrend(window_s=5.0)
    stats = feed(rs, samples)[-1].values
    slope = feed(trend, samples)[-1].values["slope_per_h"]
    window = small[-5:]  # t = T0 + 2 ... T0 + 6; the 1e6 left the window one reading ago
    assert stats["std"] == pytest.approx(statistics.pstdev(window), rel=1e-9)
    assert stats["mean"] == pytest.approx(statistics.fmean(window), rel=1e-9)
    ref_slope, _ = direct_ols([(float(i), x) for i, x in enumerate(window)])
    assert isinstance(slope, float)
    assert slope / 3600.0 == pytest.approx(ref_slope, rel=1e-9)


def direct_ols(pts: Sequence[tuple[float, float]]) -> tuple[float, float | None]:
    """Two-pass least squares: slope and r2."""
    n = len(pts)
    tb = math.fsum(t for t, _ in pts) / n
    yb = math.fsum(y for _, y in pts) / n
    stt = math.fsum((t - tb) ** 2 for t, _ in pts)
    sty = math.fsum((t - tb) * (y - yb) for t, y in pts)
    syy = math.fsum((y - yb) ** 2 for _, y in pts)
    return sty / stt, (sty * sty / (stt * syy) if syy > 0 else None)


@given(samples=series(dt_max=3.0), w=st.floats(2.0, 60.0), drift=st.floats(-5, 5))
@SETTINGS
def test_linear_trend_slope_equals_direct_least_squares(
    samples: list[Sample], w: float, drift: float
) -> None:
    trend = LinearTrend(window_s=w)
    seen: list[tuple[float, float]] = []
    for t, x, good in samples:
        x2 = None if x is None else x + drift * (t - T0)  # a real trend under the noise
        out = trend.update(t, x2, good)
        if not good or x2 is None:
            continue
        seen.append((t, x2))
        pts = window_of(seen, t, w)
        ts = [p[0] for p in pts]
        if len(pts) < 2 or max(ts) - min(ts) < 1e-3:
            continue
        slope, r2 = direct_ols(pts)
        yspan = max(abs(y - pts[0][1]) for _, y in pts) + 1.0
        tspan = max(ts) - min(ts)
        got = out.values["slope_per_h"]
        assert isinstance(got, float)
        assert got / 3600.0 == pytest.approx(slope, rel=1e-7, abs=1e-9 * yspan / tspan)
        if r2 is not None and out.values["r2"] is not None:
            assert out.values["r2"] == pytest.approx(r2, abs=1e-6)


@given(samples=series(bad=False, max_size=40), w=st.floats(5.0, 60.0))
@SETTINGS
def test_rate_of_change_equals_the_end_points(samples: list[Sample], w: float) -> None:
    roc = RateOfChange(window_s=w)
    seen: list[tuple[float, float]] = []
    for t, x, good in samples:
        out = roc.update(t, x, good)
        assert x is not None
        seen.append((t, x))
        pts = window_of(seen, t, w)
        (t0, x0), (t1, x1) = pts[0], pts[-1]
        expected = (x1 - x0) / (t1 - t0) if t1 > t0 else None
        assert out.values["rate_per_s"] == expected
        assert out.values["count"] == len(pts)


@given(
    t=st.lists(st.floats(0.0, 100.0), min_size=1, max_size=40).map(lambda d: list(d)),
    run=st.lists(st.booleans(), min_size=40, max_size=40),
    max_gap=st.floats(0.5, 60.0),
)
@SETTINGS
def test_running_hours_equal_a_direct_sum(t: list[float], run: list[bool], max_gap: float) -> None:
    times = [T0]
    for dt in t[1:]:
        times.append(times[-1] + dt)
    flags = run[: len(times)]
    rh = RunningHours(max_gap_s=max_gap)
    outs = [rh.update(ti, r) for ti, r in zip(times, flags, strict=True)]
    dts = [b - a for a, b in itertools.pairwise(times)]
    credited = [min(d, max_gap) for d, r in zip(dts, flags, strict=False) if r]
    v = outs[-1].values
    assert v["running_s"] == pytest.approx(math.fsum(credited), rel=1e-12, abs=1e-6)
    assert v["starts"] == sum(1 for a, b in itertools.pairwise(flags) if b and not a)
    span = times[-1] - times[0]
    if span > 0:
        assert v["duty"] == pytest.approx(math.fsum(credited) / span, rel=1e-9, abs=1e-9)
    else:
        assert v["duty"] is None


def direct_mad(xs: Sequence[float]) -> tuple[float, float]:
    med = statistics.median(xs)
    return med, statistics.median([abs(x - med) for x in xs])


@given(xs=st.lists(st.integers(-20, 20).map(float) | st.floats(-1e3, 1e3), min_size=1))
@SETTINGS
def test_mad_of_sorted_equals_a_direct_median(xs: list[float]) -> None:
    s = sorted(xs)
    med, mad = direct_mad(s)
    assert mad_of_sorted(s, med) == mad


@given(samples=series(), w=st.floats(1.0, 60.0))
@SETTINGS
def test_robust_z_equals_a_direct_computation(samples: list[Sample], w: float) -> None:
    rz = RobustZ(window_s=w, min_count=1)
    seen: list[tuple[float, float]] = []
    for t, x, good in samples:
        out = rz.update(t, x, good)
        if not good or x is None:
            continue
        seen.append((t, x))
        xs = [xi for _, xi in window_of(seen, t, w)]
        med, mad = direct_mad(xs)
        assert out.values["median"] == med
        assert out.values["mad"] == mad
        assert out.values["z"] == ((x - med) / (MAD_SCALE * mad) if mad > 0 else None)


def reference_alarm(
    xs: Sequence[float], ts: Sequence[float], sp: float, db: float, on: float, off: float
) -> list[bool]:
    """ISA-18.2 from the words: look back over the run of consecutive readings in condition."""
    active = False
    out: list[bool] = []
    for i in range(len(xs)):
        j = i
        while j >= 0 and (xs[j] < sp - db if active else xs[j] >= sp):
            j -= 1
        if j < i and ts[i] - ts[j + 1] >= (on if not active else off):
            active = not active
        out.append(active)
    return out


@given(
    xs=st.lists(st.sampled_from([70.0, 74.0, 75.0, 76.0, 79.9, 80.0, 81.0, 90.0]), max_size=50),
    dts=st.lists(st.sampled_from([0.0, 0.4, 1.0, 1.5, 3.0]), min_size=50, max_size=50),
    on=st.sampled_from([0.0, 1.0, 2.0, 2.5]),
    off=st.sampled_from([0.0, 1.0, 3.0]),
    db=st.sampled_from([0.0, 5.0]),
)
@SETTINGS
def test_alarm_equals_the_definition(
    xs: list[float], dts: list[float], on: float, off: float, db: float
) -> None:
    ts = [T0]
    for d in dts[1 : len(xs)]:
        ts.append(ts[-1] + d)
    alarm = ThresholdAlarm(high=80.0, deadband=db, on_delay_s=on, off_delay_s=off)
    outs = [alarm.update(t, x) for t, x in zip(ts, xs, strict=False)]
    expected = reference_alarm(xs, ts, 80.0, db, on, off)
    assert [o.values["active"] for o in outs] == expected
    # events are exactly the transitions
    prev = False
    for o, a in zip(outs, expected, strict=True):
        kinds = [e.kind for e in o.events]
        assert kinds == ([] if a == prev else ["alarm_raised" if a else "alarm_cleared"])
        prev = a


@given(xs=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=60), k=st.floats(0, 1))
@SETTINGS
def test_cusum_equals_its_partial_sum_form(xs: list[float], k: float) -> None:
    """C+_T = S_T - min_(j<=T) S_j, S the partial sums of x - (mu0 + k sigma) (S_0 = 0)."""
    det = DriftDetector(mu0=0.0, sigma=1.0, k=k, h=1e9)
    s_up = s_dn = 0.0
    min_up = min_dn = 0.0
    for i, x in enumerate(xs):
        out = det.update(float(i), x)
        s_up += x - k
        s_dn += -k - x
        min_up, min_dn = min(min_up, s_up), min(min_dn, s_dn)
        assert out.values["stat_up"] == pytest.approx(s_up - min_up, abs=1e-9)
        assert out.values["stat_down"] == pytest.approx(s_dn - min_dn, abs=1e-9)


@given(xs=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=60), delta=st.floats(0, 1))
@SETTINGS
def test_page_hinkley_equals_a_direct_computation(xs: list[float], delta: float) -> None:
    det = DriftDetector(method="page_hinkley", delta=delta, lambda_=1e9, learn_n=0)
    for i, x in enumerate(xs):
        out = det.update(float(i), x)
        seen = xs[: i + 1]
        devs = [seen[j] - statistics.fmean(seen[: j + 1]) for j in range(len(seen))]
        m_up = [math.fsum(d - delta for d in devs[:j]) for j in range(len(devs) + 1)]
        m_dn = [math.fsum(d + delta for d in devs[:j]) for j in range(len(devs) + 1)]
        assert out.values["stat_up"] == pytest.approx(m_up[-1] - min(m_up), abs=1e-9)
        assert out.values["stat_down"] == pytest.approx(max(m_dn) - m_dn[-1], abs=1e-9)
        assert out.values["mu0"] == pytest.approx(statistics.fmean(seen), abs=1e-12)


# -- drift: learning, clearing, re-baselining ---------------------------------------------------


def test_cusum_learns_mu0_and_sigma_then_freezes_them() -> None:
    det = DriftDetector(learn_n=4, k=0.5, h=5.0)
    outs = feed(det, [(float(i), x, True) for i, x in enumerate([9.0, 11.0, 9.0, 11.0])])
    assert [o.quality for o in outs] == [Quality.UNCERTAIN] * 4
    assert [o.values["learning"] for o in outs] == [True, True, True, False]
    assert outs[-1].values["mu0"] == 10.0
    assert outs[-1].values["sigma"] == pytest.approx(statistics.stdev([9.0, 11.0, 9.0, 11.0]))
    out = det.update(4.0, 30.0)  # frozen: an outlier moves the statistic, not the baseline
    assert out.quality is Quality.GOOD
    assert out.values["mu0"] == 10.0
    sigma = out.values["sigma"]
    assert isinstance(sigma, float)
    assert out.values["stat_up"] == pytest.approx(30.0 - (10.0 + 0.5 * sigma))


def test_learning_also_needs_learn_s() -> None:
    det = DriftDetector(learn_n=2, learn_s=60.0, sigma=1.0)
    outs = feed(det, [(t, 10.0, True) for t in (0.0, 10.0, 30.0, 59.0, 60.0)])
    assert [o.values["learning"] for o in outs] == [True, True, True, True, False]


def test_cusum_auto_clears_when_the_excess_is_used_up() -> None:
    det = DriftDetector(mu0=10.0, sigma=1.0, k=0.5, h=5.0)
    xs = [10.0] * 10 + [11.5] * 6 + [10.0] * 20
    outs = [det.update(float(i), x) for i, x in enumerate(xs)]
    cleared = [i for i, o in enumerate(outs) if any(e.kind == "drift_cleared" for e in o.events)]
    # C+ = 6 at index 15, then falls by k sigma = 0.5 per sample at 10.0: 0 at index 27
    assert cleared == [27]
    assert outs[26].values["drift"]
    assert not outs[27].values["drift"]
    kept = DriftDetector(mu0=10.0, sigma=1.0, k=0.5, h=5.0, auto_clear=False)
    assert feed(kept, [(float(i), x, True) for i, x in enumerate(xs)])[-1].values["drift"]


def test_cusum_signals_down_too() -> None:
    det = DriftDetector(mu0=10.0, sigma=1.0, k=0.5, h=5.0)
    outs = [det.update(float(i), x) for i, x in enumerate([10.0] * 10 + [8.5] * 10)]
    assert outs[15].events == (Event("drift_detected", 8.5, 5.0, 15.0, "down"),)
    assert outs[15].values["direction"] == "down"


def test_rebaseline_clears_and_relearns() -> None:
    det = DriftDetector(learn_n=10, k=0.5, h=5.0, sigma_min=0.1)
    xs = [10.0 + 0.5 * (-1) ** i for i in range(10)] + [14.0] * 5
    outs = feed(det, [(float(i), x, True) for i, x in enumerate(xs)])
    assert outs[-1].values["drift"]
    out = det.rebaseline(15.0)
    assert [(e.kind, e.detail, e.value) for e in out.events] == [("drift_cleared", "up", None)]
    assert out.values["learning"]
    assert out.quality is Quality.UNCERTAIN
    assert out.values["stat_up"] == 0.0
    assert not out.values["drift"]
    more = [det.update(16.0 + i, 14.0 + 0.5 * (-1) ** i) for i in range(20)]
    assert more[-1].values["mu0"] == pytest.approx(14.0, abs=0.06)
    assert not any(o.values["drift"] for o in more)


def test_page_hinkley_detects_a_step_and_is_rebaselined() -> None:
    det = DriftDetector(method="page_hinkley", delta=0.1, lambda_=5.0, learn_n=10)
    outs = [det.update(float(i), x) for i, x in enumerate([0.0] * 50 + [2.0] * 200)]
    events = [(i, e.kind, e.detail, e.limit) for i, o in enumerate(outs) for e in o.events]
    assert len(events) == 1
    i, kind, detail, limit = events[0]
    assert 50 < i < 56
    assert (kind, detail, limit) == ("drift_detected", "up", 5.0)
    out = det.rebaseline(250.0)
    assert [(e.kind, e.detail) for e in out.events] == [("drift_cleared", "up")]
    after = [det.update(251.0 + i, 2.0) for i in range(200)]
    assert not any(o.events for o in after)
    assert after[-1].values["mu0"] == 2.0
    quiet = DriftDetector(method="page_hinkley", delta=0.1, lambda_=5.0, learn_n=10)
    assert not any(o.events for o in feed(quiet, [(float(i), 3.0, True) for i in range(200)]))


def test_page_hinkley_sees_a_transient_both_ways_then_clears() -> None:
    det = DriftDetector(method="page_hinkley", delta=0.1, lambda_=5.0, learn_n=10)
    xs = [0.0] * 50 + [2.0] * 10 + [0.0] * 100
    outs = [det.update(float(i), x) for i, x in enumerate(xs)]
    kinds = [(e.kind, e.detail) for o in outs for e in o.events]
    assert kinds == [
        ("drift_detected", "up"),
        ("drift_detected", "down"),  # the return to the old level is a change too
        ("drift_cleared", "up"),
    ]


def test_page_hinkley_needs_its_parameters() -> None:
    with pytest.raises(ValueError, match="delta and lambda_"):
        DriftDetector(method="page_hinkley")


# -- restarts: state round trip -----------------------------------------------------------------


FACTORIES: dict[str, Callable[[], StreamingIndicator]] = {
    "rolling_stats": lambda: RollingStats(window_s=12.0, max_gap_s=4.0),
    "running_hours": lambda: RunningHours(max_gap_s=6.0, running_above=0.0),
    "threshold_alarm": lambda: ThresholdAlarm(
        high=300.0, low=-300.0, deadband=50.0, on_delay_s=2.0, off_delay_s=3.0, max_gap_s=10.0
    ),
    "rate_of_change": lambda: RateOfChange(window_s=8.0),
    "ewma": lambda: Ewma(tau_s=7.0),
    "drift": lambda: DriftDetector(learn_n=5, k=0.5, h=2.0),
    "drift_ph": lambda: DriftDetector(method="page_hinkley", delta=10.0, lambda_=500.0, learn_n=3),
    "linear_trend": lambda: LinearTrend(window_s=15.0, limit=500.0),
    "robust_z": lambda: RobustZ(window_s=9.0, min_count=3),
}


@pytest.mark.parametrize("name", sorted(FACTORIES))
@given(samples=series(max_size=80), cut=st.integers(0, 80))
@PER_KIND
def test_state_round_trip_continues_exactly(name: str, samples: list[Sample], cut: int) -> None:
    make = FACTORIES[name]
    cut = min(cut, len(samples))
    uninterrupted = make()
    whole = feed(uninterrupted, samples)
    first = make()
    feed(first, samples[:cut])
    saved = json.loads(json.dumps(first.state(), allow_nan=False))  # JSON-safe, finite
    restarted = make()
    restarted.restore(saved)
    if cut:
        assert restarted.values == whole[cut - 1].values
    assert feed(restarted, samples[cut:]) == whole[cut:]
    assert restarted.state() == uninterrupted.state()


def test_counters_survive_a_restart() -> None:
    rh = RunningHours(max_gap_s=30.0)
    t = [0, 10, 20, 30, 40, 100, 110, 200]
    run = [0, 1, 1, 1, 0, 1, 1, 1]
    for ti, r in list(zip(t, run, strict=True))[:4]:
        rh.update(ti, r)
    rh.update(25, None, good=False)
    saved = json.loads(json.dumps(rh.state()))
    rh2 = RunningHours(max_gap_s=30.0)
    rh2.restore(saved)
    assert rh2.values["running_s"] == 20.0
    assert rh2.values["skipped"] == 1
    out = [rh2.update(ti, r) for ti, r in list(zip(t, run, strict=True))[4:]][-1]
    assert (out.values["running_s"], out.values["starts"], out.values["duty"]) == (70.0, 2, 0.35)
    assert out.values["skipped"] == 1


def test_restore_refuses_another_indicators_state() -> None:
    state = RollingStats(window_s=10.0).state()
    with pytest.raises(ValueError, match="rolling_stats"):
        RateOfChange(window_s=10.0).restore(state)
    bad = RunningHours(max_gap_s=1.0).state()
    del bad["starts"]
    with pytest.raises(KeyError):
        RunningHours(max_gap_s=1.0).restore(bad)
    bad = RunningHours(max_gap_s=1.0).state() | {"starts": "2"}
    with pytest.raises(ValueError, match="starts"):
        RunningHours(max_gap_s=1.0).restore(bad)


# -- skipped readings and thin data -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FACTORIES))
@given(samples=series(max_size=60))
@PER_KIND
def test_skipped_readings_are_counted_and_change_nothing(name: str, samples: list[Sample]) -> None:
    make = FACTORIES[name]
    mixed = feed(make(), samples)
    clean = iter(feed(make(), [(t, x, True) for t, x in good_only(samples)]))
    skipped = 0
    for (_, x, good), out in zip(samples, mixed, strict=True):
        if not good or x is None:
            skipped += 1
            assert out.quality is Quality.BAD
            assert out.events == ()
        else:
            ref = next(clean)
            assert out.quality == ref.quality
            assert out.events == ref.events
            assert {k: v for k, v in out.values.items() if k != "skipped"} == {
                k: v for k, v in ref.values.items() if k != "skipped"
            }
        assert out.values["skipped"] == skipped


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_non_finite_and_out_of_order_readings_are_skipped(name: str) -> None:
    ind = FACTORIES[name]()
    ind.update(100.0, 1.0)
    outs = [
        ind.update(101.0, math.nan),
        ind.update(102.0, math.inf),
        ind.update(99.0, 1.0),  # earlier than the last accepted reading
        ind.update(math.nan, 1.0),
        ind.update(103.0, "n/a"),  # type: ignore[arg-type]  # a misconfigured point
    ]
    assert [o.quality for o in outs] == [Quality.BAD] * 5
    assert outs[-1].values["skipped"] == 5
    assert ind.update(100.0, 2.0).quality is not Quality.BAD  # equal t is accepted


def test_bad_before_any_good_reading() -> None:
    out = RollingStats(window_s=10.0).update(0.0, 5.0, good=False)
    assert out.quality is Quality.BAD
    assert out.values == {"count": 0, "mean": None, "std": None, "min": None, "max": None,
                          "skipped": 1}  # fmt: skip
    alarm = ThresholdAlarm(high=1.0).update(0.0, None)
    assert alarm.quality is Quality.BAD
    assert alarm.values == {"active": False, "high_active": False, "low_active": False,
                            "skipped": 1}  # fmt: skip


def test_rolling_stats_thin_window_is_uncertain() -> None:
    rs = RollingStats(window_s=10.0)
    q = [o.quality for o in feed(rs, [(float(t), 1.0, True) for t in range(12)])]
    # one sample: too few; span 1..4 s of a 10 s window: < half; from 5 s: good
    assert q[:5] == [Quality.UNCERTAIN] * 5
    assert q[5:] == [Quality.GOOD] * 7


def test_rolling_stats_coverage_sees_a_data_gap_with_max_gap() -> None:
    samples = [(float(t), 1.0, True) for t in (0, 1, 2, 9, 10)]  # no data from 2 to 9
    # at t = 10 the window (0, 10] holds t = 1, 2, 9, 10
    gapless = feed(RollingStats(window_s=10.0), samples)[-1]
    assert gapless.quality is Quality.GOOD  # coverage = span = 9 s >= 5 s
    capped = feed(RollingStats(window_s=10.0, max_gap_s=2.0), samples)[-1]
    assert capped.quality is Quality.UNCERTAIN  # coverage = 1 + 2 (capped) + 1 = 4 s < 5 s
    assert capped.values["count"] == 4


def test_running_hours_quality() -> None:
    rh = RunningHours(max_gap_s=30.0)
    outs = feed(rh, [(0.0, 1.0, True), (10.0, 1.0, True), (100.0, 1.0, True), (110.0, 1.0, True)])
    assert [o.quality for o in outs] == [
        Quality.UNCERTAIN,  # no interval yet
        Quality.GOOD,
        Quality.UNCERTAIN,  # closes a data gap
        Quality.GOOD,
    ]
    assert outs[0].values["duty"] is None


def test_alarm_after_a_gap_restarts_its_delay_and_is_uncertain() -> None:
    alarm = ThresholdAlarm(high=80.0, on_delay_s=2.0, max_gap_s=5.0)
    outs = feed(alarm, [(0.0, 90.0, True), (1.0, 90.0, True), (20.0, 90.0, True)])
    assert outs[2].quality is Quality.UNCERTAIN
    assert not outs[2].values["active"]  # the delay restarted at t = 20
    assert alarm.update(22.0, 90.0).values["active"]
    # skipped readings neither advance nor interrupt a delay
    held = ThresholdAlarm(high=80.0, on_delay_s=2.0)
    outs = feed(held, [(0.0, 90.0, True), (1.0, 50.0, False), (2.0, 90.0, True)])
    assert outs[2].values["active"]


def test_linear_trend_thin_data_and_no_finite_estimate() -> None:
    trend = LinearTrend(window_s=10.0, limit=3.0)
    outs = feed(trend, [(0.0, 1.0, True), (1.0, 1.1, True)])
    assert all(o.quality is Quality.UNCERTAIN for o in outs)
    assert outs[0].values["slope_per_h"] is None
    assert outs[1].values["time_to_limit_h"] is None  # two points: no interval
    away = LinearTrend(window_s=20.0, limit=3.0)
    v = feed(away, [(float(i), 2.0 - 0.1 * i, True) for i in range(10)])[-1].values
    assert v["slope_per_h"] == pytest.approx(-360.0)
    assert v["time_to_limit_h"] is None  # pointing away from the limit
    flat = LinearTrend(window_s=20.0, limit=3.0)
    noisy = [1.0, 1.3, 0.8, 1.2, 0.9, 1.1, 1.25, 0.85, 1.0, 1.05]
    v = feed(flat, [(float(i), y, True) for i, y in enumerate(noisy)])[-1].values
    assert v["time_to_limit_h"] is None  # not significant
    assert v["time_to_limit_h_hi"] is None
    const = LinearTrend(window_s=20.0, limit=3.0)
    v = feed(const, [(float(i), 1.0, True) for i in range(10)])[-1].values
    assert v["slope_per_h"] == 0.0
    assert v["r2"] is None
    assert v["time_to_limit_h"] is None


def test_linear_trend_a_falling_signal_reaches_a_low_limit() -> None:
    trend = LinearTrend(window_s=20.0, limit=0.0)
    v = feed(trend, [(float(i), 2.0 - 0.1 * i + 0.01 * (-1) ** i, True) for i in range(10)])
    assert v[-1].values["time_to_limit_h"] == pytest.approx(11.0 / 3600.0, rel=0.02)


def test_robust_z_thin_or_flat_is_uncertain() -> None:
    rz = RobustZ(window_s=100.0)
    outs = feed(rz, [(float(i), x, True) for i, x in enumerate([1.0, 2.0, 3.0, 4.0, 5.0, 100.0])])
    assert [o.quality for o in outs][:4] == [Quality.UNCERTAIN] * 4
    flat = feed(RobustZ(window_s=10.0), [(float(i), 7.0, True) for i in range(10)])[-1]
    assert flat.values["mad"] == 0.0
    assert flat.values["z"] is None
    assert flat.quality is Quality.UNCERTAIN


def test_rate_of_change_per_hour() -> None:
    roc = RateOfChange(window_s=60.0)
    out = feed(roc, [(T0 + 10.0 * i, 20.0 + 0.05 * i, True) for i in range(7)])[-1]
    assert out.values["rate_per_s"] == pytest.approx(0.005)
    assert out.values["rate_per_h"] == pytest.approx(18.0)
    assert out.quality is Quality.GOOD


# -- the table and the module's hygiene ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_outputs_have_exactly_the_keys_of_the_table(name: str) -> None:
    ind = FACTORIES[name]()
    spec = SPECS[ind.KIND]
    assert isinstance(ind, spec.factory)  # type: ignore[arg-type]
    keys = [v.key for v in spec.values]
    outs = feed(ind, [(float(i), 100.0 * i, i != 3) for i in range(30)])
    assert all(list(o.values) == keys for o in outs)
    for o in outs:
        assert {e.kind for e in o.events} <= set(spec.events)


def test_outputs_and_events_are_frozen() -> None:
    out = RollingStats(window_s=1.0).update(0.0, 1.0)
    with pytest.raises(FrozenInstanceError):
        out.quality = Quality.GOOD  # type: ignore[misc]
    event = Event("alarm_raised", 1.0, 1.0, 0.0)
    with pytest.raises(FrozenInstanceError):
        event.t = 1.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "make",
    [
        lambda: RollingStats(window_s=0.0),
        lambda: RollingStats(window_s=1.0, min_coverage=1.5),
        lambda: RunningHours(max_gap_s=0.0),
        lambda: ThresholdAlarm(),
        lambda: ThresholdAlarm(high=1.0, low=2.0),
        lambda: ThresholdAlarm(high=1.0, on_delay_s=-1.0),
        lambda: Ewma(tau_s=0.0),
        lambda: DriftDetector(method="ewma"),  # type: ignore[arg-type]
        lambda: DriftDetector(learn_n=1),
        lambda: LinearTrend(window_s=10.0, confidence=1.0),
    ],
)
def test_bad_parameters_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011  # each message names its own parameter
        make()


def test_importing_does_not_load_numpy() -> None:
    code = "import sys, edge_agent.indicators.streaming; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
