"""Indicators that follow state from one reading to the next: running hours, threshold
alarm (ISA-18.2), EWMA; and their pure step functions.

See the package docstring for the contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from edge_agent.readings import Quality

from .base import (
    EWMA_VALUES,
    RUNNING_HOURS_VALUES,
    SECONDS_PER_HOUR,
    THRESHOLD_ALARM_VALUES,
    Event,
    EventKind,
    Output,
    State,
    StateValue,
    Value,
    _bool,
    _float,
    _Indicator,
    _int,
    _keys,
    _opt_float,
)

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
        """Add one reading; see the package doc for skipped readings."""
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
        """Add one reading; see the package doc for skipped readings."""
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
        """Add one reading; see the package doc for skipped readings."""
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
