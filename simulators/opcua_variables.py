"""The variables Motor 7 serves over OPC UA: names, node ids, types and value checks.

Pure, no I/O: :mod:`simulators.opcua_server` builds the address space from these
definitions and :class:`simulators.opcua_sim.OpcUaSimulator` checks the values set through
its Python API against them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from asyncua import ua

__all__ = [
    "BROKEN",
    "MOTOR_VARIABLES",
    "SAMPLE_RATE",
    "SCALAR_PERIOD_S",
    "TYPE_VALUES",
    "WAVEFORM",
    "WAVEFORM_PERIOD_S",
    "MotorVariable",
    "canonical",
    "checked_value",
    "node_string",
]

#: Scalars refresh every 0.1 s, the waveform every second (non-deterministic mode).
SCALAR_PERIOD_S = 0.1
WAVEFORM_PERIOD_S = 1.0


@dataclass(frozen=True)
class MotorVariable:
    """One variable of Motor 7 fed by the motor model."""

    field: str  # MotorReading field
    variant: ua.VariantType
    unit: str | None  # UNECE common code (EngineeringUnits), None: no unit
    unit_name: str
    eu_range: tuple[float, float] | None  # EURange property (AnalogItemType)
    description: str


#: Motor 7's scalar variables, by browse name; node id ``Motor7.<name>``.
MOTOR_VARIABLES: dict[str, MotorVariable] = {
    "Speed": MotorVariable(
        "speed_rpm", ua.VariantType.Double, "RPM", "rpm", (0.0, 1800.0), "Shaft speed"
    ),
    "MotorCurrent": MotorVariable(
        "motor_current_a", ua.VariantType.Double, "AMP", "A", (0.0, 100.0), "Motor current"
    ),
    "WindingTemp": MotorVariable(
        "winding_temp_c", ua.VariantType.Double, "CEL", "°C", (0.0, 200.0), "Winding temperature"
    ),
    "BearingTemp": MotorVariable(
        "bearing_temp_c",
        ua.VariantType.Double,
        "CEL",
        "°C",
        (0.0, 200.0),
        "Drive-end bearing temperature",
    ),
    "Running": MotorVariable("running", ua.VariantType.Boolean, None, "", None, "Motor running"),
}

WAVEFORM = "Vibration.Waveform"
SAMPLE_RATE = "Vibration.SampleRate"
BROKEN = "Broken"

#: The type-coverage variables, by browse name; node id ``Types.<name>``.  Fixed values.
TYPE_VALUES: dict[str, tuple[ua.VariantType, Any]] = {
    "Boolean": (ua.VariantType.Boolean, True),
    "Int16": (ua.VariantType.Int16, -12345),
    "UInt16": (ua.VariantType.UInt16, 54321),
    "Int32": (ua.VariantType.Int32, -123456789),
    "UInt32": (ua.VariantType.UInt32, 3456789012),
    "Int64": (ua.VariantType.Int64, -1234567890123456789),
    "UInt64": (ua.VariantType.UInt64, 12345678901234567890),
    "Float": (ua.VariantType.Float, 3.14159),  # 3.141590118408203 as float32
    "Double": (ua.VariantType.Double, 2.718281828459045),
    "String": (ua.VariantType.String, "EDGE-AGENT-TEST! µ°C ✓"),
    "DateTime": (
        ua.VariantType.DateTime,
        dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    ),
    "ByteString": (ua.VariantType.ByteString, bytes.fromhex("00017f80feff") + b"EDGE"),
}


def canonical(name: str) -> str:
    """``"Motor7.Speed"`` / ``"Speed"`` -> ``"Speed"``; ``"Types.Int16"`` stays."""
    key = name.removeprefix("Motor7.")
    if key in MOTOR_VARIABLES or key in (WAVEFORM, SAMPLE_RATE, BROKEN):
        return key
    if key.startswith("Types.") and key.removeprefix("Types.") in TYPE_VALUES:
        return key
    raise KeyError(f"no variable {name!r}")


def node_string(key: str) -> str:
    """The string identifier of a variable's node id."""
    return key if key.startswith("Types.") else f"Motor7.{key}"


_INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}


def checked_value(key: str, value: Any) -> Any:
    """``value`` converted to the variable's type; ValueError if it does not fit."""
    if key == WAVEFORM:
        samples = np.asarray(value, dtype=np.float64)
        if samples.ndim != 1:
            raise ValueError("the waveform is a sequence of numbers")
        return samples.tolist()
    if key in MOTOR_VARIABLES:
        variant = MOTOR_VARIABLES[key].variant
    else:
        variant = TYPE_VALUES[key.removeprefix("Types.")][0]
    if variant is ua.VariantType.Boolean:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{key} is Boolean, got {value!r}")
        return bool(value)
    if variant in _INT_RANGES:
        low, high = _INT_RANGES[variant]
        if isinstance(value, bool) or int(value) != value or not low <= int(value) <= high:
            raise ValueError(f"{key} is {variant.name} ({low}..{high}), got {value!r}")
        return int(value)
    if variant in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value)
    if variant is ua.VariantType.String:
        return str(value)
    if variant is ua.VariantType.ByteString:
        return bytes(value)
    if variant is ua.VariantType.DateTime:
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{key} is DateTime, got {value!r}")
        return value
    raise ValueError(f"cannot set {key}")  # pragma: no cover
