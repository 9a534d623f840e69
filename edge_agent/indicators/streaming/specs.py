"""The table of streaming indicators: config name -> class, values, events, data rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

from .base import (
    DRIFT_VALUES,
    EWMA_VALUES,
    LINEAR_TREND_VALUES,
    RATE_OF_CHANGE_VALUES,
    ROBUST_Z_VALUES,
    ROLLING_STATS_VALUES,
    RUNNING_HOURS_VALUES,
    THRESHOLD_ALARM_VALUES,
    EventKind,
    ValueSpec,
)
from .drift import DriftDetector
from .transitions import Ewma, RunningHours, ThresholdAlarm
from .windowed import LinearTrend, RateOfChange, RobustZ, RollingStats

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
