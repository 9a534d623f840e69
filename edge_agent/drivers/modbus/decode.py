"""Registers -> values, for every data type and byte/word order. Pure: no I/O.

Orders, for a 32-bit value whose bytes are A B C D (A most significant):
    word_order big,    byte_order big    -> registers [AB, CD]  "ABCD"
    word_order little, byte_order big    -> registers [CD, AB]  "CDAB"
    word_order big,    byte_order little -> registers [BA, DC]  "BADC"
    word_order little, byte_order little -> registers [DC, BA]  "DCBA"
64-bit values reverse all four words when word_order is little.

Each point is compiled once into a function of (block bytes, block registers) so that the
poll loop does no per-point branching on types. Compiled decoders raise ValueError for a
value that cannot be represented (NaN, infinity); the driver turns that into a bad reading.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any

from ...config.models import ModbusPoint

Decoder = Callable[[bytes, Sequence[int]], Any]

_CODES = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}


def words_to_bytes(words: Sequence[int], word_order: str, byte_order: str) -> bytes:
    """Put registers back into big-endian byte order (A B C D ...)."""
    if word_order == "little":
        words = words[::-1]
    return struct.pack(f"{'>' if byte_order == 'big' else '<'}{len(words)}H", *words)


def compile_point(point: ModbusPoint, offset: int) -> Decoder:
    """A decoder for `point` standing `offset` registers into its block."""
    dtype, width = point.dtype, point.width
    end = offset + width
    wo, bo = point.word_order, point.byte_order

    if dtype == "bool":
        bit = point.bit
        if bit is None:
            return lambda buf, regs: regs[offset] != 0
        if bo == "little":
            return lambda buf, regs: bool(((regs[offset] >> 8 | regs[offset] << 8) >> bit) & 1)
        return lambda buf, regs: bool((regs[offset] >> bit) & 1)

    if dtype == "string":
        length = point.length or 0

        def string(buf: bytes, regs: Sequence[int]) -> str:
            raw = words_to_bytes(regs[offset:end], "big", bo)[:length]
            return raw.split(b"\0", 1)[0].decode("latin-1").rstrip(" ")

        return string

    unpack = struct.Struct(">" + _CODES[dtype]).unpack_from
    if dtype == "float32" and wo == bo == "big" and point.scale == 1 and point.offset == 0:
        return _plain_float32(offset * 2)  # the most common point of all: one function
    if wo == "big" and bo == "big":

        def number(buf: bytes, regs: Sequence[int]) -> Any:
            return unpack(buf, offset * 2)[0]
    else:

        def number(buf: bytes, regs: Sequence[int]) -> Any:
            return unpack(words_to_bytes(regs[offset:end], wo, bo))[0]

    raw: Decoder = _shortest32(number) if dtype == "float32" else number
    scaled = _scaled(raw, point.scale, point.offset)
    if dtype.startswith("float"):

        def finite(buf: bytes, regs: Sequence[int]) -> Any:
            value = scaled(buf, regs)
            if not math.isfinite(value):
                raise ValueError("not_a_number" if math.isnan(value) else "infinite")
            return value

        return finite
    return scaled


_F32 = struct.Struct(">f")


def _plain_float32(pos: int) -> Decoder:
    unpack, pack = _F32.unpack_from, _F32.pack

    def float32(buf: bytes, regs: Sequence[int]) -> Any:
        (value,) = unpack(buf, pos)
        if value - value != 0.0:  # NaN or infinity, in one comparison
            raise ValueError("not_a_number" if value != value else "infinite")
        exact = buf[pos : pos + 4]
        candidate = float(f"{value:.7g}")  # shortest for most; "%g" drops trailing zeros
        if pack(candidate) == exact:
            return candidate
        candidate = float(f"{value:.8g}")
        return candidate if pack(candidate) == exact else value

    return float32


def _shortest32(fn: Decoder) -> Decoder:
    """3.42 as float32 widens to 3.4200000762939453: publish the shortest decimal that is the
    same float32 (3.42), as the PLC's own display would show it."""
    pack = _F32.pack

    def shortest(buf: bytes, regs: Sequence[int]) -> Any:
        value = fn(buf, regs)
        if not math.isfinite(value):
            return value
        exact = pack(value)
        candidate = float(f"{value:.7g}")
        if pack(candidate) == exact:
            return candidate
        candidate = float(f"{value:.8g}")
        return candidate if pack(candidate) == exact else value

    return shortest


def _scaled(fn: Decoder, scale: float, offset: float) -> Decoder:
    if scale == 1 and offset == 0:
        return fn
    # raw / 10 prints as 61.3 where raw * 0.1 prints as 61.300000000000004.
    inverse = 1 / scale
    if abs(inverse - round(inverse)) < 1e-9 and offset == 0:
        div = float(round(inverse))
        return lambda buf, regs: fn(buf, regs) / div
    if abs(inverse - round(inverse)) < 1e-9:
        div = float(round(inverse))
        return lambda buf, regs: fn(buf, regs) / div + offset
    return lambda buf, regs: fn(buf, regs) * scale + offset


def registers_to_bytes(regs: Sequence[int]) -> bytes:
    return struct.pack(f">{len(regs)}H", *regs)
