"""Register encoding of the simulator, checked against hand-computed registers.

Every expected value below was worked out by hand from the IEEE 754 /
two's-complement representation (e.g. float32 3.14159 = 0x40490FD0), never
by calling the code under test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from simulators.plant import NOMINAL
from simulators.register_map import (
    BANK_BASES,
    PROCESS_REGISTERS,
    RegisterImage,
    Table,
    status_word,
    write_bench,
    write_constants,
    write_reading,
)
from simulators.registers import Order, ValueType, encode, encode_string, pack_bits

ABCD, CDAB, BADC, DCBA = Order.ABCD, Order.CDAB, Order.BADC, Order.DCBA

# (type, value, {order: registers})
VECTORS = [
    (ValueType.INT16, -12345, {ABCD: [0xCFC7], CDAB: [0xCFC7], BADC: [0xC7CF], DCBA: [0xC7CF]}),
    (ValueType.UINT16, 54321, {ABCD: [0xD431], CDAB: [0xD431], BADC: [0x31D4], DCBA: [0x31D4]}),
    (
        ValueType.INT32,
        -123456789,
        {
            ABCD: [0xF8A4, 0x32EB],
            CDAB: [0x32EB, 0xF8A4],
            BADC: [0xA4F8, 0xEB32],
            DCBA: [0xEB32, 0xA4F8],
        },
    ),
    (
        ValueType.UINT32,
        3456789012,
        {
            ABCD: [0xCE0A, 0x6A14],
            CDAB: [0x6A14, 0xCE0A],
            BADC: [0x0ACE, 0x146A],
            DCBA: [0x146A, 0x0ACE],
        },
    ),
    (
        ValueType.INT64,
        -1234567890123456789,
        {
            ABCD: [0xEEDD, 0xEF0B, 0x8216, 0x7EEB],
            CDAB: [0x7EEB, 0x8216, 0xEF0B, 0xEEDD],
            BADC: [0xDDEE, 0x0BEF, 0x1682, 0xEB7E],
            DCBA: [0xEB7E, 0x1682, 0x0BEF, 0xDDEE],
        },
    ),
    (
        ValueType.UINT64,
        12345678901234567890,
        {
            ABCD: [0xAB54, 0xA98C, 0xEB1F, 0x0AD2],
            CDAB: [0x0AD2, 0xEB1F, 0xA98C, 0xAB54],
            BADC: [0x54AB, 0x8CA9, 0x1FEB, 0xD20A],
            DCBA: [0xD20A, 0x1FEB, 0x8CA9, 0x54AB],
        },
    ),
    (
        ValueType.FLOAT32,
        3.14159,
        {
            ABCD: [0x4049, 0x0FD0],
            CDAB: [0x0FD0, 0x4049],
            BADC: [0x4940, 0xD00F],
            DCBA: [0xD00F, 0x4940],
        },
    ),
    (
        ValueType.FLOAT64,
        2.718281828459045,
        {
            ABCD: [0x4005, 0xBF0A, 0x8B14, 0x5769],
            CDAB: [0x5769, 0x8B14, 0xBF0A, 0x4005],
            BADC: [0x0540, 0x0ABF, 0x148B, 0x6957],
            DCBA: [0x6957, 0x148B, 0x0ABF, 0x0540],
        },
    ),
]

# "EDGE-AGENT-TEST!": E=0x45 D=0x44 G=0x47 -=0x2D A=0x41 N=0x4E T=0x54 S=0x53 !=0x21
TEST_STRING_BIG = [0x4544, 0x4745, 0x2D41, 0x4745, 0x4E54, 0x2D54, 0x4553, 0x5421]
TEST_STRING_SWAPPED = [0x4445, 0x4547, 0x412D, 0x4547, 0x544E, 0x542D, 0x5345, 0x2154]

# One complete type-coverage bank (offsets +0..+28) per order, hand-assembled.
BANKS = {
    ABCD: [0xCFC7, 0xD431, 0xF8A4, 0x32EB, 0xCE0A, 0x6A14, 0xEEDD, 0xEF0B, 0x8216, 0x7EEB,
           0xAB54, 0xA98C, 0xEB1F, 0x0AD2, 0x4049, 0x0FD0, 0x4005, 0xBF0A, 0x8B14, 0x5769,
           *TEST_STRING_BIG, 0xA005],
    CDAB: [0xCFC7, 0xD431, 0x32EB, 0xF8A4, 0x6A14, 0xCE0A, 0x7EEB, 0x8216, 0xEF0B, 0xEEDD,
           0x0AD2, 0xEB1F, 0xA98C, 0xAB54, 0x0FD0, 0x4049, 0x5769, 0x8B14, 0xBF0A, 0x4005,
           *TEST_STRING_BIG, 0xA005],
    BADC: [0xC7CF, 0x31D4, 0xA4F8, 0xEB32, 0x0ACE, 0x146A, 0xDDEE, 0x0BEF, 0x1682, 0xEB7E,
           0x54AB, 0x8CA9, 0x1FEB, 0xD20A, 0x4940, 0xD00F, 0x0540, 0x0ABF, 0x148B, 0x6957,
           *TEST_STRING_SWAPPED, 0x05A0],
    DCBA: [0xC7CF, 0x31D4, 0xEB32, 0xA4F8, 0x146A, 0x0ACE, 0xEB7E, 0x1682, 0x0BEF, 0xDDEE,
           0xD20A, 0x1FEB, 0x8CA9, 0x54AB, 0xD00F, 0x4940, 0x6957, 0x148B, 0x0ABF, 0x0540,
           *TEST_STRING_SWAPPED, 0x05A0],
}  # fmt: skip


@pytest.mark.parametrize(
    ("vtype", "value", "order", "expected"),
    [(t, v, o, regs) for t, v, per_order in VECTORS for o, regs in per_order.items()],
    ids=lambda x: x.name if isinstance(x, Order) else None,
)
def test_encode_matches_hand_computed_registers(
    vtype: ValueType, value: float, order: Order, expected: list[int]
) -> None:
    assert encode(value, vtype, order) == expected


def test_default_order_is_abcd() -> None:
    assert encode(3.14159, ValueType.FLOAT32) == [0x4049, 0x0FD0]


@pytest.mark.parametrize(
    ("order", "expected"),
    [(ABCD, TEST_STRING_BIG), (CDAB, TEST_STRING_BIG), (BADC, TEST_STRING_SWAPPED),
     (DCBA, TEST_STRING_SWAPPED)],
)  # fmt: skip
def test_string_byte_order_applies_word_order_does_not(order: Order, expected: list[int]) -> None:
    assert encode("EDGE-AGENT-TEST!", ValueType.STRING, order, chars=16) == expected


def test_string_is_nul_padded_first_char_high_byte() -> None:
    # "PUMP-101": P=0x50 U=0x55 M=0x4D -=0x2D 1=0x31 0=0x30
    assert encode_string("PUMP-101", 16) == [0x5055, 0x4D50, 0x2D31, 0x3031, 0, 0, 0, 0]
    assert encode_string("ABC", 3) == [0x4142, 0x4300]  # odd field rounds up to a register
    assert encode_string("ABC", 4, BADC) == [0x4241, 0x0043]


def test_small_values_and_extremes() -> None:
    assert encode(1, ValueType.INT16) == [0x0001]
    assert encode(-1, ValueType.INT16) == [0xFFFF]
    assert encode(-1, ValueType.INT64, CDAB) == [0xFFFF] * 4
    assert encode(0x12345678, ValueType.UINT32, CDAB) == [0x5678, 0x1234]
    assert encode(0x12345678, ValueType.UINT32, BADC) == [0x3412, 0x7856]
    assert encode(0x0102030405060708, ValueType.UINT64, DCBA) == [0x0807, 0x0605, 0x0403, 0x0201]
    assert encode(1.0, ValueType.FLOAT32) == [0x3F80, 0x0000]
    assert encode(-2, ValueType.FLOAT64) == [0xC000, 0, 0, 0]  # ints are accepted for floats


@pytest.mark.parametrize(
    ("value", "vtype"),
    [
        (32768, ValueType.INT16),
        (-32769, ValueType.INT16),
        (65536, ValueType.UINT16),
        (-1, ValueType.UINT16),
        (2**32, ValueType.UINT32),
        (2**63, ValueType.INT64),
        (-1, ValueType.UINT64),
        (1e39, ValueType.FLOAT32),
    ],
)
def test_out_of_range_values_are_rejected(value: float, vtype: ValueType) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        encode(value, vtype)


def test_wrong_kinds_are_rejected() -> None:
    with pytest.raises(TypeError):
        encode(1.5, ValueType.INT32)
    with pytest.raises(TypeError):
        encode(True, ValueType.UINT16)
    with pytest.raises(TypeError):
        encode("x", ValueType.FLOAT32)
    with pytest.raises(TypeError):
        encode("no length", ValueType.STRING)
    with pytest.raises(ValueError, match="longer"):
        encode_string("seventeen chars!!", 16)
    with pytest.raises(ValueError, match="ASCII"):
        encode_string("Pümpe", 16)


def test_pack_bits_bit0_first() -> None:
    assert pack_bits([True, False, True, False, False, False, False, False,
                      False, False, False, False, False, True, False, True]) == 0xA005  # fmt: skip
    assert pack_bits([]) == 0
    with pytest.raises(ValueError, match="16"):
        pack_bits([False] * 17)


def test_order_lookup_and_widths() -> None:
    assert Order.of("little", "big") is CDAB
    assert Order.of("big", "little") is BADC
    assert (DCBA.word_order, DCBA.byte_order) == ("little", "little")
    with pytest.raises(ValueError, match="unknown"):
        Order.of("middle", "big")
    assert [t.width for t in (ValueType.INT16, ValueType.FLOAT32, ValueType.UINT64)] == [1, 2, 4]


@pytest.mark.parametrize("order", list(Order), ids=lambda o: o.name)
def test_type_banks_in_image(order: Order) -> None:
    image = RegisterImage()
    write_constants(image)
    base = BANK_BASES[order]
    assert image.registers(Table.HOLDING)[base : base + 29] == BANKS[order]
    assert image.registers(Table.HOLDING)[base + 29] == 0


def test_process_values_in_image() -> None:
    image = RegisterImage()
    write_reading(image, NOMINAL)
    expected = [
        0x405A, 0xE148,  # 3.42 bar float32 = 0x405AE148
        0x424E, 0x0000,  # 51.5 m3/h float32 = 0x424E0000
        1825,  # 18.25 A * 100
        613,  # 61.3 degC * 10
        0b1101,  # running, remote, running copy
        0, 42,  # start counter
        0x0001, 0xE240,  # 123456 s
        2950,
    ]  # fmt: skip
    holding = image.registers(Table.HOLDING)
    assert holding[:PROCESS_REGISTERS] == expected
    assert image.registers(Table.INPUT)[:PROCESS_REGISTERS] == expected
    assert holding[20:28] == [0x5055, 0x4D50, 0x2D31, 0x3031, 0, 0, 0, 0]
    assert image.bits(Table.COIL)[:3] == [True, False, True]
    assert image.bits(Table.DISCRETE)[:3] == [True, False, False]


def test_status_word_bits() -> None:
    assert status_word(NOMINAL) == 13
    assert status_word(replace(NOMINAL, running=False, fault=True)) == 0b0110
    assert status_word(replace(NOMINAL, running=False, fault=False, remote=False)) == 0


def test_bench_bank_is_float32_abcd() -> None:
    image = RegisterImage()
    write_bench(image, [100.0, 101.0, 299.0])
    # 100.0 = 0x42C80000, 101.0 = 0x42CA0000, 299.0 = 0x43958000
    assert image.registers(Table.HOLDING)[1000:1006] == [0x42C8, 0, 0x42CA, 0, 0x4395, 0x8000]


def test_packed_bits_for_the_server() -> None:
    image = RegisterImage()
    write_constants(image)
    # coils 96..111 -> bits 4.. of the word are the pattern 1,0,1,1,0,0,0,1,1,1,1,1
    assert image.packed_bits(Table.COIL, 6, 1) == [0b1111_1000_1101_0000]
    with pytest.raises(ValueError, match="outside"):
        image.write_registers(Table.HOLDING, 1999, [1, 2])
