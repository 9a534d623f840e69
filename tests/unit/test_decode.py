"""Registers -> values, against hand-computed register images (not our simulator's encoder)."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.config.models import ModbusPoint
from edge_agent.drivers.modbus.decode import compile_point, registers_to_bytes


def decode(regs: list[int], **point: object) -> object:
    p = ModbusPoint.model_validate({"name": "p", "address": 0, **point})
    return compile_point(p, 0)(registers_to_bytes(regs), regs)


# float32 3.14159 is 0x40490FD0: bytes A=40 B=49 C=0F D=D0
PI32 = [
    ("big", "big", [0x4049, 0x0FD0]),  # ABCD
    ("little", "big", [0x0FD0, 0x4049]),  # CDAB
    ("big", "little", [0x4940, 0xD00F]),  # BADC
    ("little", "little", [0xD00F, 0x4940]),  # DCBA
]


@pytest.mark.parametrize(("word", "byte", "regs"), PI32)
def test_float32_in_every_order(word: str, byte: str, regs: list[int]) -> None:
    assert decode(regs, type="float32", word_order=word, byte_order=byte) == 3.14159


@pytest.mark.parametrize(
    ("word", "byte", "regs"),
    [
        ("big", "big", [0x0123, 0x4567, 0x89AB, 0xCDEF]),
        ("little", "big", [0xCDEF, 0x89AB, 0x4567, 0x0123]),
        ("big", "little", [0x2301, 0x6745, 0xAB89, 0xEFCD]),
        ("little", "little", [0xEFCD, 0xAB89, 0x6745, 0x2301]),
    ],
)
def test_uint64_in_every_order(word: str, byte: str, regs: list[int]) -> None:
    assert decode(regs, type="uint64", word_order=word, byte_order=byte) == 0x0123456789ABCDEF


@pytest.mark.parametrize(
    ("dtype", "regs", "expected"),
    [
        ("int16", [0xCFC7], -12345),
        ("uint16", [0xD431], 54321),
        ("int32", [0xF8A4, 0x32EB], -123456789),
        ("uint32", [0xCE0A, 0x6A14], 3456789012),
        ("int64", [0xEEDD, 0xEF0B, 0x8216, 0x7EEB], -1234567890123456789),
        ("float64", [0x4005, 0xBF0A, 0x8B14, 0x5769], 2.718281828459045),
    ],
)
def test_types_big_endian(dtype: str, regs: list[int], expected: object) -> None:
    assert decode(regs, type=dtype) == expected


def test_int16_byte_swapped() -> None:
    assert decode([0xC7CF], type="int16", byte_order="little") == -12345


def test_bits_of_a_register() -> None:
    regs = [0b1010_0000_0000_0101]
    assert [decode(regs, type="bool", bit=b) for b in (0, 1, 2, 13, 15)] == [
        True,
        False,
        True,
        True,
        True,
    ]
    assert decode([0x0100], type="bool", bit=0, byte_order="little") is True
    assert decode([0], type="bool") is False
    assert decode([7], type="bool") is True


def test_string_nul_padded_and_byte_swapped() -> None:
    regs = [0x5055, 0x4D50, 0x2D31, 0x3031, 0, 0, 0, 0]
    assert decode(regs, type="string", length=16) == "PUMP-101"
    swapped = [((r & 0xFF) << 8) | (r >> 8) for r in regs]
    assert decode(swapped, type="string", length=16, byte_order="little") == "PUMP-101"
    assert decode([0x4142, 0x4344], type="string", length=3) == "ABC"


def test_scale_and_offset() -> None:
    assert decode([613], type="int16", scale=0.1) == 61.3
    assert decode([1825], type="uint16", scale=0.01) == 18.25
    assert decode([100], type="uint16", scale=0.5, offset=-10) == 40.0
    assert decode([100], type="uint16", scale=2, offset=1) == 201
    assert decode([0xFFFF], type="int16", scale=1, offset=0) == -1


def test_float32_published_as_shortest_decimal() -> None:
    (bits,) = struct.unpack(">I", struct.pack(">f", 3.42))
    assert decode([bits >> 16, bits & 0xFFFF], type="float32") == 3.42


def test_nan_and_infinity_raise_for_a_bad_reading() -> None:
    with pytest.raises(ValueError, match="not_a_number"):
        decode([0x7FC0, 0x0000], type="float32")
    with pytest.raises(ValueError, match="infinite"):
        decode([0x7FF0, 0, 0, 0], type="float64")


@given(
    st.floats(width=32, allow_nan=False, allow_infinity=False),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
)
def test_float32_round_trips_in_every_order(value: float, word: str, byte: str) -> None:
    raw = struct.pack(">f", value)
    words = [raw[0] << 8 | raw[1], raw[2] << 8 | raw[3]]
    if byte == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if word == "little":
        words.reverse()
    got = decode(words, type="float32", word_order=word, byte_order=byte)
    assert isinstance(got, float)
    assert struct.pack(">f", got) == raw or (value == 0 and got == 0)
    assert math.isfinite(got)


@given(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from(["big", "little"]),
    st.sampled_from(["big", "little"]),
)
def test_int64_round_trips_in_every_order(value: int, word: str, byte: str) -> None:
    raw = struct.pack(">q", value)
    words = [raw[i] << 8 | raw[i + 1] for i in range(0, 8, 2)]
    if byte == "little":
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    if word == "little":
        words.reverse()
    assert decode(words, type="int64", word_order=word, byte_order=byte) == value
