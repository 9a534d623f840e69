"""Shared types of the streaming indicators: outputs, events, value tables, the base class.

The contract these serve (skipped readings, quality, state) is in the package docstring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
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
SECONDS_PER_HOUR: Final = 3600.0


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


# -- state helpers and the base class --------------------------------------------------------------


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
