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

Modules
-------
- `base`: the shared types (`Output`, `Event`, `ValueSpec`, the value tables), the state
  helpers and the `_Indicator` base class;
- `stats`: Student t and normal quantiles, Fieller's interval, the MAD of a sorted list;
- `window`: the time window (`_Window`) with its coverage and running sums;
- `windowed`: `RollingStats`, `RateOfChange`, `LinearTrend`, `RobustZ`;
- `transitions`: `RunningHours`, `ThresholdAlarm`, `Ewma` and the step functions;
- `drift`: `DriftDetector` (CUSUM, Page-Hinkley);
- `specs`: `SPECS`, the table the engine builds indicators from.

Standards and sources: ANSI/ISA-18.2-2016 (alarm deadband, on-delay and off-delay);
ISO 7870-4 and Page (1954) (tabular CUSUM with reference value k and decision interval h, both
in units of sigma); Page (1954) / Hinkley (1971) (Page-Hinkley change test with the running
mean); Fieller (1954) / inverse regression (interval of the time a fitted line reaches a
limit); Abramowitz & Stegun 26.7.3-4 (Student t distribution for integer degrees of freedom)
and the Cornish-Fisher expansion of its quantile in powers of 1/df; robust z with the MAD
scaled by 1.4826 (normal consistency constant, as the domain sheet writes it).
"""

from edge_agent.readings import Quality

from .base import (
    DRIFT_VALUES,
    EWMA_VALUES,
    LINEAR_TREND_VALUES,
    RATE_OF_CHANGE_VALUES,
    ROBUST_Z_VALUES,
    ROLLING_STATS_VALUES,
    RUNNING_HOURS_VALUES,
    SECONDS_PER_HOUR,
    STATE_VERSION,
    THRESHOLD_ALARM_VALUES,
    DriftMethod,
    Event,
    EventKind,
    Output,
    State,
    StateValue,
    Value,
    ValueSpec,
)
from .drift import DriftDetector
from .specs import SPECS, IndicatorSpec, StreamingIndicator
from .stats import (
    MAD_SCALE,
    fieller_crossing,
    mad_of_sorted,
    normal_quantile,
    t_quantile,
)
from .stats import _t_abs_prob as _t_abs_prob  # private, re-exported for the tests
from .transitions import Ewma, RunningHours, ThresholdAlarm, alarm_step, ewma_step
from .windowed import LinearTrend, RateOfChange, RobustZ, RollingStats

__all__ = [
    "DRIFT_VALUES",
    "EWMA_VALUES",
    "LINEAR_TREND_VALUES",
    "MAD_SCALE",
    "RATE_OF_CHANGE_VALUES",
    "ROBUST_Z_VALUES",
    "ROLLING_STATS_VALUES",
    "RUNNING_HOURS_VALUES",
    "SECONDS_PER_HOUR",
    "SPECS",
    "STATE_VERSION",
    "THRESHOLD_ALARM_VALUES",
    "DriftDetector",
    "DriftMethod",
    "Event",
    "EventKind",
    "Ewma",
    "IndicatorSpec",
    "LinearTrend",
    "Output",
    "Quality",
    "RateOfChange",
    "RobustZ",
    "RollingStats",
    "RunningHours",
    "State",
    "StateValue",
    "StreamingIndicator",
    "ThresholdAlarm",
    "Value",
    "ValueSpec",
    "alarm_step",
    "ewma_step",
    "fieller_crossing",
    "mad_of_sorted",
    "normal_quantile",
    "t_quantile",
]
