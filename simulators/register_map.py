"""Where the simulated PLC keeps what: the register map and its memory image.

Pure data handling, no networking: :class:`RegisterImage` is the PLC's memory
(four tables of :data:`TABLE_SIZE` entries) and the ``write_*`` functions
encode process values, test vectors and patterns into it.  The README in this
package documents the same map as tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from .plant import PumpReading
from .registers import Order, ValueType, encode, encode_string, pack_bits

#: Every table answers addresses 0 .. TABLE_SIZE-1; anything above is illegal.
TABLE_SIZE = 2000


class Table(StrEnum):
    """The four Modbus tables."""

    COIL = "coil"
    DISCRETE = "discrete"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bits(self) -> bool:
        """True for the single-bit tables (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE)


@dataclass(frozen=True)
class Field:
    """A scalar process value: holding (and mirrored input) registers."""

    name: str
    address: int
    vtype: ValueType
    scale: float = 1.0  # raw register value = engineering value * scale

    def encode(self, value: float) -> list[int]:
        """Registers for ``value`` in engineering units (ABCD order)."""
        if self.vtype in (ValueType.FLOAT32, ValueType.FLOAT64):
            return encode(float(value), self.vtype)
        return encode(round(value * self.scale), self.vtype)


PROCESS_FIELDS: tuple[Field, ...] = (
    Field("discharge_pressure", 0, ValueType.FLOAT32),
    Field("flow", 2, ValueType.FLOAT32),
    Field("motor_current", 4, ValueType.UINT16, scale=100),
    Field("bearing_temp", 5, ValueType.INT16, scale=10),
    Field("start_counter", 7, ValueType.UINT32),
    Field("running_seconds", 9, ValueType.UINT32),
    Field("speed_rpm", 11, ValueType.UINT16),
    Field("velocity_rms", 30, ValueType.FLOAT32),
    Field("hf_accel_rms", 32, ValueType.FLOAT32),
    Field("envelope_bpfo", 34, ValueType.FLOAT32),
)
STATUS_ADDRESS = 6
#: Holding registers 0..11 are mirrored into input registers 0..11.
PROCESS_REGISTERS = 12
#: The bearing's vibration values (float32 ABCD), also mirrored into input registers.
VIBRATION_ADDRESS = 30
VIBRATION_REGISTERS = 6
TAG_ADDRESS = 20
TAG_CHARS = 16

# Coils and discrete inputs carrying the pump state.
COIL_RUNNING, COIL_FAULT, COIL_REMOTE = 0, 1, 2
DISCRETE_RUNNING, DISCRETE_OVERLOAD, DISCRETE_DOOR = 0, 1, 2

#: Type-coverage banks: the same test vectors at four bases, one per order.
BANK_BASES: dict[Order, int] = {Order.ABCD: 100, Order.CDAB: 200, Order.BADC: 300, Order.DCBA: 400}
#: (offset, type, value) of each test vector inside a bank.
BANK_LAYOUT: tuple[tuple[int, ValueType, int | float | str], ...] = (
    (0, ValueType.INT16, -12345),
    (1, ValueType.UINT16, 54321),
    (2, ValueType.INT32, -123456789),
    (4, ValueType.UINT32, 3456789012),
    (6, ValueType.INT64, -1234567890123456789),
    (10, ValueType.UINT64, 12345678901234567890),
    (14, ValueType.FLOAT32, 3.14159),
    (16, ValueType.FLOAT64, 2.718281828459045),
    (20, ValueType.STRING, "EDGE-AGENT-TEST!"),
    (28, ValueType.UINT16, 0b1010_0000_0000_0101),
)
BANK_STRING_CHARS = 16

BENCH_ADDRESS = 1000
BENCH_COUNT = 200  # float32 ABCD, two registers each

#: Fixed pattern at coils and discrete inputs 100..115.
BIT_PATTERN_ADDRESS = 100
BIT_PATTERN: tuple[bool, ...] = tuple(
    bool(b) for b in (1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0)
)


class RegisterImage:
    """The PLC memory: two register tables and two bit tables, zero-filled."""

    def __init__(self) -> None:
        self._registers = {t: [0] * TABLE_SIZE for t in (Table.HOLDING, Table.INPUT)}
        self._bits = {t: [False] * TABLE_SIZE for t in (Table.COIL, Table.DISCRETE)}

    def registers(self, table: Table) -> list[int]:
        """The live list of a register table (index = protocol address)."""
        return self._registers[table]

    def bits(self, table: Table) -> list[bool]:
        """The live list of a bit table (index = protocol address)."""
        return self._bits[table]

    def write_registers(self, table: Table, address: int, values: Sequence[int]) -> None:
        """Store raw 16-bit values starting at ``address``."""
        _check_span(address, len(values))
        if any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError("register values must be 0..65535")
        self._registers[table][address : address + len(values)] = list(values)

    def write_bits(self, table: Table, address: int, values: Sequence[bool]) -> None:
        """Store flags starting at ``address``."""
        _check_span(address, len(values))
        self._bits[table][address : address + len(values)] = [bool(v) for v in values]

    def packed_bits(self, table: Table, first_word: int, count: int) -> list[int]:
        """Bits as 16-bit words (bit 0 of word n = address 16 * n)."""
        bits = self._bits[table]
        words = range(first_word, first_word + count)
        return [pack_bits(bits[16 * w : 16 * w + 16]) for w in words]


def _check_span(address: int, count: int) -> None:
    if address < 0 or count < 1 or address + count > TABLE_SIZE:
        raise ValueError(f"addresses {address}..{address + count - 1} outside 0..{TABLE_SIZE - 1}")


def status_word(reading: PumpReading) -> int:
    """Status register: bit0 running, bit1 fault, bit2 remote, bit3 running again.

    Bit 3 duplicates bit 0 on purpose: the configuration examples in our docs
    read it, so the simulator serves it.
    """
    return pack_bits([reading.running, reading.fault, reading.remote, reading.running])


def _writer_for_field(field: Field) -> Callable[[RegisterImage, PumpReading], None]:
    def write(image: RegisterImage, reading: PumpReading) -> None:
        regs = field.encode(getattr(reading, field.name))
        for table in (Table.HOLDING, Table.INPUT):
            image.write_registers(table, field.address, regs)

    return write


def _write_state(image: RegisterImage, reading: PumpReading) -> None:
    """Status register plus the coils and discrete inputs derived from it."""
    for table in (Table.HOLDING, Table.INPUT):
        image.write_registers(table, STATUS_ADDRESS, [status_word(reading)])
    image.write_bits(Table.COIL, COIL_RUNNING, [reading.running, reading.fault, reading.remote])
    image.write_bits(Table.DISCRETE, DISCRETE_RUNNING, [reading.running])


def _write_overload(image: RegisterImage, reading: PumpReading) -> None:
    image.write_bits(Table.DISCRETE, DISCRETE_OVERLOAD, [reading.overload_trip])


def _write_door(image: RegisterImage, reading: PumpReading) -> None:
    image.write_bits(Table.DISCRETE, DISCRETE_DOOR, [reading.door_open])


def _write_tag(image: RegisterImage, reading: PumpReading) -> None:
    image.write_registers(Table.HOLDING, TAG_ADDRESS, encode_string(reading.tag, TAG_CHARS))


#: Which part of the image each reading attribute lives in.
_WRITERS: dict[str, Callable[[RegisterImage, PumpReading], None]] = {
    **{f.name: _writer_for_field(f) for f in PROCESS_FIELDS},
    "running": _write_state,
    "fault": _write_state,
    "remote": _write_state,
    "overload_trip": _write_overload,
    "door_open": _write_door,
    "tag": _write_tag,
}


def write_reading(
    image: RegisterImage, reading: PumpReading, names: Iterable[str] | None = None
) -> None:
    """Encode ``reading`` into the image; only the ``names`` given, or all of it."""
    writers = _WRITERS.values() if names is None else {_WRITERS[n] for n in names}
    for write in dict.fromkeys(writers):  # each writer once, in a stable order
        write(image, reading)


def write_constants(image: RegisterImage) -> None:
    """The parts of the map that never change: type banks and bit patterns."""
    for order, base in BANK_BASES.items():
        for offset, vtype, value in BANK_LAYOUT:
            chars = BANK_STRING_CHARS if vtype is ValueType.STRING else None
            regs = encode(value, vtype, order, chars=chars)
            image.write_registers(Table.HOLDING, base + offset, regs)
    for table in (Table.COIL, Table.DISCRETE):
        image.write_bits(table, BIT_PATTERN_ADDRESS, BIT_PATTERN)


def bench_values(elapsed: float | None = None) -> list[float]:
    """Bench bank values: 100 + i, drifting slowly (+-0.5) when ``elapsed`` is given."""
    if elapsed is None:
        return [100.0 + i for i in range(BENCH_COUNT)]
    phase = 2 * math.pi * elapsed / 300.0
    return [100.0 + i + 0.5 * math.sin(phase + i / 7) for i in range(BENCH_COUNT)]


def write_bench(image: RegisterImage, values: Sequence[float]) -> None:
    """Encode the bench bank (float32 ABCD) into holding registers."""
    regs: list[int] = []
    for value in values:
        regs.extend(encode(value, ValueType.FLOAT32))
    image.write_registers(Table.HOLDING, BENCH_ADDRESS, regs)
