"""Encode typed values into 16-bit Modbus registers, in any word and byte order.

The simulator deliberately does not use pymodbus' converters for this: they
only know the word order, while real devices also swap the two bytes inside
each register (BADC, DCBA), and the simulator has to serve all four layouts
so that clients can be tested against each of them.

Order names describe where the bytes of a value end up, A being the most
significant byte of a 32-bit value.  The same two switches apply to every
width:

* word order "little" reverses the sequence of registers of a value
  (for 64-bit values all four: ABCDEFGH -> GHEFCDAB);
* byte order "little" swaps the two bytes inside every register, including
  single-register integers and the registers of a string.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from enum import Enum, StrEnum

__all__ = ["Order", "ValueType", "encode", "encode_string", "pack_bits"]


class ValueType(StrEnum):
    """The value types a register map can hold."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def width(self) -> int:
        """Size in registers (0 for strings, whose size depends on their length)."""
        return _WIDTHS[self]


_WIDTHS = {
    ValueType.INT16: 1,
    ValueType.UINT16: 1,
    ValueType.INT32: 2,
    ValueType.UINT32: 2,
    ValueType.INT64: 4,
    ValueType.UINT64: 4,
    ValueType.FLOAT32: 2,
    ValueType.FLOAT64: 4,
    ValueType.STRING: 0,
}
_SIGNED = {ValueType.INT16, ValueType.INT32, ValueType.INT64}
_FLOAT_FORMATS = {ValueType.FLOAT32: ">f", ValueType.FLOAT64: ">d"}


class Order(Enum):
    """Register layout of a value: (word order, byte order)."""

    ABCD = ("big", "big")
    CDAB = ("little", "big")
    BADC = ("big", "little")
    DCBA = ("little", "little")

    @property
    def word_order(self) -> str:
        """Return "big" when the most significant register comes first."""
        return self.value[0]

    @property
    def byte_order(self) -> str:
        """Return "big" when the most significant byte of a register comes first."""
        return self.value[1]

    @classmethod
    def of(cls, word_order: str, byte_order: str) -> Order:
        """Look an order up by its two switches, e.g. ``Order.of("little", "big")``."""
        for order in cls:
            if order.value == (word_order, byte_order):
                return order
        raise ValueError(f"unknown word/byte order {word_order!r}/{byte_order!r}")


def encode(
    value: int | float | str,
    vtype: ValueType,
    order: Order = Order.ABCD,
    *,
    chars: int | None = None,
) -> list[int]:
    """Return the registers holding ``value`` as ``vtype`` laid out in ``order``.

    ``chars`` is the field length of a string (required for strings only).
    Raises ``ValueError`` for values that do not fit the type and
    ``TypeError`` for values of the wrong kind.
    """
    if vtype is ValueType.STRING:
        if not isinstance(value, str) or chars is None:
            raise TypeError("strings need a str value and chars=<field length>")
        return encode_string(value, chars, order)
    return _arrange(_big_endian_bytes(value, vtype), order)


def encode_string(text: str, chars: int, order: Order = Order.ABCD) -> list[int]:
    """Encode ASCII ``text`` into a field of ``chars`` characters, NUL padded.

    Two characters per register, the first one in the high byte (before any
    byte swap).  Word order does not apply to strings: their registers always
    run from the first characters to the last.
    """
    if chars < 1:
        raise ValueError("a string field needs at least one character")
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{text!r} is not ASCII") from exc
    if len(raw) > chars:
        raise ValueError(f"{text!r} is longer than the {chars}-character field")
    raw = raw.ljust(chars + chars % 2, b"\0")
    return [_word(raw[i : i + 2], order) for i in range(0, len(raw), 2)]


def pack_bits(bits: Sequence[bool]) -> int:
    """Pack up to 16 flags into one register, ``bits[0]`` being bit 0."""
    if len(bits) > 16:
        raise ValueError("a register holds at most 16 bits")
    return sum(1 << i for i, bit in enumerate(bits) if bit)


def _big_endian_bytes(value: int | float | str, vtype: ValueType) -> bytes:
    """The value's bytes, most significant first (the ABCD layout)."""
    size = 2 * vtype.width
    if vtype in _FLOAT_FORMATS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{vtype.value} needs a number, got {value!r}")
        try:
            return struct.pack(_FLOAT_FORMATS[vtype], value)
        except OverflowError as exc:
            raise ValueError(f"{value!r} does not fit {vtype.value}") from exc
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{vtype.value} needs an int, got {value!r}")
    try:
        return value.to_bytes(size, "big", signed=vtype in _SIGNED)
    except OverflowError as exc:
        raise ValueError(f"{value} does not fit {vtype.value}") from exc


def _arrange(raw: bytes, order: Order) -> list[int]:
    """Cut big-endian bytes into registers and apply the word/byte order."""
    words = [_word(raw[i : i + 2], order) for i in range(0, len(raw), 2)]
    if order.word_order == "little":
        words.reverse()
    return words


def _word(pair: bytes, order: Order) -> int:
    """One register from two bytes given high byte first."""
    return int.from_bytes(pair, "big" if order.byte_order == "big" else "little")
