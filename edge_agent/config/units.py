"""Human units in the YAML: durations (250ms, 1s, 5m, 1h, 7d) and sizes (512MiB)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DURATION_PATTERN = r"^\s*(\d+(\.\d+)?\s*(ms|s|m|h|d)\s*)+$"


def parse_duration(value: Any) -> float:
    """'1h30m' -> 5400.0 seconds. A bare number is refused: is 500 milliseconds or seconds?"""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a duration such as 250ms, 1s, 5m or 1h, got {value!r}")
    if isinstance(value, int | float):
        raise ValueError(f"bad duration {value}: add a unit (ms, s, m, h, d), e.g. {value}s")
    text = value.strip()
    parts = _DURATION.findall(text)
    if not parts or _DURATION.sub("", text).strip():
        raise ValueError(
            f"bad duration '{value}': write a number and a unit (ms, s, m, h, d), "
            "e.g. 250ms, 1s, 5m"
        )
    return sum(float(n) * _DURATION_UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {"type": "string", "pattern": DURATION_PATTERN, "examples": ["250ms", "1s", "5m"]}
    ),
]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$"


def parse_size(value: Any) -> int:
    """'512MiB' -> 536870912 bytes; a bare number is bytes."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected a size such as 512MiB or 2GB, got {value!r}")
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(
            f"bad size '{value}': write a number and a unit (KiB, MiB, GiB, or KB, "
            "MB, GB), e.g. 512MiB"
        )
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2)])


def format_size(n: float) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {"type": ["string", "integer"], "pattern": SIZE_PATTERN, "examples": ["512MiB", "2GB"]}
    ),
]


_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def _quantity(value: Any, units: dict[str, float], what: str, example: str) -> float:
    """A number with one of `units` (a bare number takes the unit that maps to 1)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"expected {what} such as {example}, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    m = _QUANTITY.match(value)
    if not m or m.group(2) not in units:
        raise ValueError(
            f"bad {what} '{value}': write a number and one of "
            f"{', '.join(u for u in units if u)}, e.g. {example}"
        )
    return float(m.group(1)) * units[m.group(2)]


def parse_frequency(value: Any) -> float:
    """'10kHz' -> 10000.0 Hz."""
    return _quantity(
        value, {"": 1.0, "Hz": 1.0, "kHz": 1e3, "MHz": 1e6}, "a frequency", "10kHz or 25600Hz"
    )


def parse_length_mm(value: Any) -> float:
    """'7.94mm' -> 7.94; '0.3126in' -> 7.94004 (mm)."""
    return _quantity(
        value,
        {"": 1.0, "mm": 1.0, "in": 25.4, "cm": 10.0, "m": 1000.0},
        "a length",
        "7.94mm or 0.3126in",
    )


Frequency = Annotated[
    float,
    BeforeValidator(parse_frequency),
    WithJsonSchema({"type": ["string", "number"], "examples": ["10kHz", "25600Hz"]}),
]
LengthMm = Annotated[
    float,
    BeforeValidator(parse_length_mm),
    WithJsonSchema({"type": ["string", "number"], "examples": ["7.94mm", "0.3126in"]}),
]
