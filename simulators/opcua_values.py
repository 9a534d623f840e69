"""Motor 7's values in the OPC UA simulator: model, pins, forced statuses, bearing fault.

:class:`MotorValues` is mixed into :class:`simulators.opcua_sim.OpcUaSimulator`, which sets
up the state below in ``__init__`` and owns the server and its lifecycle.  Every change
made through the Python API is written to the address space at once while the server
listens (subscribers are notified); :meth:`MotorValues._write_all` brings everything up to
date when it starts listening.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from asyncua import Server, ua

from .degradation import severity as degradation_severity
from .opcua_model import (
    SAMPLE_RATE_HZ,
    MotorReading,
    motor_at,
    nominal_reading,
    waveform,
    with_pins,
)
from .opcua_variables import (
    BROKEN,
    MOTOR_VARIABLES,
    SAMPLE_RATE,
    TYPE_VALUES,
    WAVEFORM,
    canonical,
    checked_value,
    node_string,
)

__all__ = ["MotorValues", "checked_severity"]

# The simulator's logger, as before the value handling moved here.
_log = logging.getLogger("simulators.opcua_sim")


class MotorValues:
    """Mixed into :class:`~simulators.opcua_sim.OpcUaSimulator`: these methods use its
    settings and state (set in its ``__init__``) and its asyncua server."""

    deterministic: bool
    seed: int
    time_scale: float
    _clock: Callable[[], float]
    _t0: float
    _fault_severity: float
    _fault_start_h: float | None
    _server: Server | None
    _ns: int
    _listening: bool
    _writes: set[asyncio.Task[None]]
    _pins: dict[str, Any]
    _statuses: dict[str, ua.StatusCode]
    _types: dict[str, Any]
    _reading: MotorReading
    _waveform: list[float]

    # -- values ------------------------------------------------------------------------

    def node_id(self, name: str) -> ua.NodeId:
        """The node id of a variable: ``"Speed"`` -> ``ns=2;s=Motor7.Speed``."""
        return ua.NodeId(node_string(canonical(name)), self._ns)

    @property
    def reading(self) -> MotorReading:
        """The scalar values last written to the address space (pins applied)."""
        return self._reading

    @property
    def fault_severity(self) -> float:
        """Static bearing fault severity (0 = healthy .. 99 = end of life); settable.

        Used while no fault develops over time (``degrade_after_h`` None and no
        :meth:`start_fault`); see :attr:`current_severity` for the one in use.
        """
        return self._fault_severity

    @fault_severity.setter
    def fault_severity(self, value: float) -> None:
        self._fault_severity = checked_severity(value)
        if self.deterministic:
            self._schedule(self._write_model(waveform_too=True))

    @property
    def simulated_seconds(self) -> float:
        """Simulated seconds since creation (clock x ``time_scale``)."""
        return (self._clock() - self._t0) * self.time_scale

    @property
    def simulated_hours(self) -> float:
        """Simulated hours since creation (clock x ``time_scale``)."""
        return self.simulated_seconds / 3600.0

    @property
    def fault_start_h(self) -> float | None:
        """Simulated hour (since creation) at which the bearing fault starts, or None."""
        return self._fault_start_h

    @property
    def fault_hours(self) -> float | None:
        """Simulated hours since the bearing fault started; None before it or without one."""
        if self._fault_start_h is None:
            return None
        hours = self.simulated_hours - self._fault_start_h
        return hours if hours >= 0 else None

    @property
    def current_severity(self) -> float:
        """The severity in use now: the developing fault's, else :attr:`fault_severity`."""
        if self._fault_start_h is None:
            return self._fault_severity
        return degradation_severity(self.fault_hours)

    def start_fault(self) -> float:
        """Start the developing bearing fault now (a fault already developing starts over).

        Returns the simulated hour of the start (see :attr:`simulated_hours`).
        """
        self._fault_start_h = self.simulated_hours
        self._schedule(self._write_model(waveform_too=True))
        return self._fault_start_h

    def set_value(self, name: str, value: Any) -> None:
        """Serve ``value`` for variable ``name`` (``"Speed"``, ``"Types.Int16"``, ...).

        Model-driven values stay pinned until :meth:`clear_values`.  The value is written
        to the address space at once if the server runs (subscribers are notified), else
        at :meth:`start`.  ``value`` must fit the variable's type.
        """
        key = canonical(name)
        if key in (BROKEN, SAMPLE_RATE):
            raise ValueError(f"{name} cannot be set")
        checked = checked_value(key, value)
        if key.startswith("Types."):
            self._types[key.removeprefix("Types.")] = checked
        else:
            self._pins[key] = checked
        if key == WAVEFORM:
            self._waveform = checked
        elif key in MOTOR_VARIABLES:
            self._reading = replace(self._reading, **{MOTOR_VARIABLES[key].field: checked})
        self._schedule(self._write(key))

    def clear_values(self) -> None:
        """Release pinned values and restore the Types values."""
        self._pins.clear()
        self._types = {name: value for name, (_, value) in TYPE_VALUES.items()}
        self._schedule(self._write_all())

    def set_status(self, name: str, status: ua.StatusCode | int) -> None:
        """Serve ``name`` with ``status`` (e.g. ``ua.StatusCodes.BadSensorFailure``).

        Bad statuses carry no value (OPC UA Part 4 7.7.1: null); Uncertain ones keep the
        value.  A Good status (0) clears the forced status.  Stays until cleared.
        """
        key = canonical(name)
        if key == BROKEN:
            raise ValueError("Broken is always BadSensorFailure")
        code = _status(status)
        if code.value == 0:
            self._statuses.pop(key, None)
        else:
            self._statuses[key] = code
        self._schedule(self._write(key))

    def clear_statuses(self) -> None:
        """Back to Good for every variable (Broken stays Bad)."""
        names = list(self._statuses)
        self._statuses.clear()
        for key in names:
            self._schedule(self._write(key))

    # -- writing values ---------------------------------------------------------------

    def _schedule(self, write: Any) -> None:
        """Run a write coroutine now if listening (else drop it: start writes everything)."""
        if not self._listening:
            write.close()
            return
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("writing a value failed", exc_info=task.exception())

    def _model_reading(self) -> MotorReading:
        if self.deterministic:
            reading = nominal_reading(self.current_severity)
        else:
            reading = motor_at(self.simulated_seconds, self.seed, self.current_severity)
        pins = {
            spec.field: self._pins[name]
            for name, spec in MOTOR_VARIABLES.items()
            if name in self._pins
        }
        return with_pins(reading, pins)

    def _model_waveform(self) -> list[float]:
        if WAVEFORM in self._pins:
            return list(self._pins[WAVEFORM])
        severity = self.current_severity
        if self.deterministic:
            samples = waveform(0.0, self.seed, nominal_reading().speed_rpm, severity)
        else:
            t = self.simulated_seconds
            speed = self._model_reading().speed_rpm  # a pinned speed counts
            samples = waveform(t, self.seed, speed, severity)
        values: list[float] = samples.tolist()
        return values

    async def _write_all(self) -> None:
        await self._write_model(waveform_too=True)
        for name in TYPE_VALUES:
            await self._write(f"Types.{name}")
        await self._write(SAMPLE_RATE)

    async def _write_model(self, waveform_too: bool) -> None:
        self._reading = self._model_reading()
        for name in MOTOR_VARIABLES:
            await self._write(name)
        if waveform_too:
            self._waveform = self._model_waveform()
            await self._write(WAVEFORM)

    async def _write(self, key: str) -> None:
        """Write the current value of ``key`` with its status, time-stamped now."""
        server = self._server
        if server is None:
            return
        variant = self._variant(key)
        status = self._statuses.get(key, ua.StatusCode())
        now = dt.datetime.now(dt.UTC)
        if status.is_bad():
            variant = ua.Variant(None, ua.VariantType.Null)
        value = ua.DataValue(
            Value=variant, StatusCode=status, SourceTimestamp=now, ServerTimestamp=now
        )
        await server.write_attribute_value(self.node_id(key), value)

    def _variant(self, key: str) -> ua.Variant:
        if key in MOTOR_VARIABLES:
            spec = MOTOR_VARIABLES[key]
            if key in self._pins:
                return ua.Variant(self._pins[key], spec.variant)
            return ua.Variant(getattr(self._reading, spec.field), spec.variant)
        if key == WAVEFORM:
            return ua.Variant(self._waveform, ua.VariantType.Double)
        if key == SAMPLE_RATE:
            return ua.Variant(SAMPLE_RATE_HZ, ua.VariantType.Double)
        name = key.removeprefix("Types.")
        return ua.Variant(self._types[name], TYPE_VALUES[name][0])


def _status(code: ua.StatusCode | int) -> ua.StatusCode:
    return code if isinstance(code, ua.StatusCode) else ua.StatusCode(code)


def checked_severity(value: float) -> float:
    value = float(value)
    if not 0.0 <= value < math.inf:
        raise ValueError("fault_severity must be a finite number >= 0")
    return value
