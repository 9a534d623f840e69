"""ISO 10816 vibration severity zones, as frozen tables.

Every table takes the **RMS velocity in mm/s** over 10-1000 Hz (2-1000 Hz for machines at or
below 600 r/min); a 0-to-peak or an in/s value lands a zone off (convert with `units` first).

Zones: A new machine; B unrestricted long-term operation; C limited period only;
D damage likely. Boundary convention: a value **on** a boundary belongs to the worse zone:

    v < A/B -> A;   A/B <= v < B/C -> B;   B/C <= v < C/D -> C;   v >= C/D -> D.

Tables (boundaries A/B, B/C, C/D in mm/s):

- ISO 10816-3 (= ISO 20816-3 zone values), machines 15 kW-50 MW, 120-15 000 r/min:
  group 1 (> 300 kW) rigid 2.3/4.5/7.1, flexible 3.5/7.1/11.0;
  group 2 (15-300 kW) rigid 1.4/2.8/4.5, flexible 2.3/4.5/7.1. "Rigid" means the lowest
  natural frequency of machine plus support is at least 25 % above running speed. Group and
  support are configured, never guessed. Below 120 r/min no zone applies.
- ISO 10816-1 (machines below 15 kW and general classes): class I 0.71/1.8/4.5;
  class II 1.12/2.8/7.1; class III 1.8/4.5/11.2; class IV 2.8/7.1/18.

A change of more than 25 % of the B/C boundary is significant even within zone B: trend the
velocity against a baseline as well.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Zone = Literal["A", "B", "C", "D"]


@dataclass(frozen=True, slots=True)
class ZoneTable:
    """One row of a severity table: its name and the A/B, B/C, C/D boundaries (mm/s RMS)."""

    name: str
    description: str
    ab: float
    bc: float
    cd: float

    def __post_init__(self) -> None:
        if not 0.0 < self.ab < self.bc < self.cd:
            raise ValueError(f"{self.name}: boundaries must rise: {self.ab}, {self.bc}, {self.cd}")

    @property
    def boundaries(self) -> tuple[float, float, float]:
        """(A/B, B/C, C/D) in mm/s RMS."""
        return (self.ab, self.bc, self.cd)


ISO10816_3_GROUP1_RIGID: Final = ZoneTable(
    "iso10816-3/group1/rigid", "ISO 10816-3 group 1 (> 300 kW), rigid support", 2.3, 4.5, 7.1
)
ISO10816_3_GROUP1_FLEXIBLE: Final = ZoneTable(
    "iso10816-3/group1/flexible", "ISO 10816-3 group 1 (> 300 kW), flexible support", 3.5, 7.1, 11.0
)
ISO10816_3_GROUP2_RIGID: Final = ZoneTable(
    "iso10816-3/group2/rigid", "ISO 10816-3 group 2 (15-300 kW), rigid support", 1.4, 2.8, 4.5
)
ISO10816_3_GROUP2_FLEXIBLE: Final = ZoneTable(
    "iso10816-3/group2/flexible", "ISO 10816-3 group 2 (15-300 kW), flexible support", 2.3, 4.5, 7.1
)
ISO10816_1_CLASS_I: Final = ZoneTable(
    "iso10816-1/class1", "ISO 10816-1 class I (small machines, up to 15 kW)", 0.71, 1.8, 4.5
)
ISO10816_1_CLASS_II: Final = ZoneTable(
    "iso10816-1/class2", "ISO 10816-1 class II (medium machines, 15-75 kW)", 1.12, 2.8, 7.1
)
ISO10816_1_CLASS_III: Final = ZoneTable(
    "iso10816-1/class3",
    "ISO 10816-1 class III (large machines, rigid heavy foundation)",
    1.8,
    4.5,
    11.2,
)
ISO10816_1_CLASS_IV: Final = ZoneTable(
    "iso10816-1/class4", "ISO 10816-1 class IV (large machines, soft foundation)", 2.8, 7.1, 18.0
)

TABLES: Final[Mapping[str, ZoneTable]] = MappingProxyType(
    {
        t.name: t
        for t in (
            ISO10816_3_GROUP1_RIGID,
            ISO10816_3_GROUP1_FLEXIBLE,
            ISO10816_3_GROUP2_RIGID,
            ISO10816_3_GROUP2_FLEXIBLE,
            ISO10816_1_CLASS_I,
            ISO10816_1_CLASS_II,
            ISO10816_1_CLASS_III,
            ISO10816_1_CLASS_IV,
        )
    }
)
"""Every table, by name."""

MIN_SPEED_RPM: Final = 120.0
"""Below this shaft speed no ISO 10816-3 zone applies (trend against a baseline instead)."""


def iso10816_3_table(group: Literal[1, 2], foundation: Literal["rigid", "flexible"]) -> ZoneTable:
    """The ISO 10816-3 table for a machine group (1: > 300 kW, 2: 15-300 kW) and support."""
    try:
        return TABLES[f"iso10816-3/group{group}/{foundation}"]
    except KeyError:
        raise ValueError(
            f"no ISO 10816-3 table for group {group!r}, foundation {foundation!r}"
        ) from None


def zone(velocity_rms_mm_s: float, table: ZoneTable) -> Zone:
    """The zone of an RMS velocity (mm/s) in `table`; a value on a boundary takes the worse
    zone. ValueError for a negative or non-finite velocity."""
    v = velocity_rms_mm_s
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"velocity must be a finite RMS value >= 0 mm/s, got {v!r}")
    if v < table.ab:
        return "A"
    if v < table.bc:
        return "B"
    if v < table.cd:
        return "C"
    return "D"
