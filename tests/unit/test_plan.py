"""Request coalescing: the fewest requests within protocol limits, gaps read through."""

from __future__ import annotations

from edge_agent.config.models import ModbusPoint
from edge_agent.drivers.modbus.plan import plan, split


def pts(*specs: tuple[str, int, str]) -> list[ModbusPoint]:
    return [
        ModbusPoint.model_validate({"name": f"p{i}", "table": t, "address": a, "type": ty})
        for i, (t, a, ty) in enumerate(specs)
    ]


def spans(points: list[ModbusPoint], **kw: int) -> list[tuple[str, int, int]]:
    return [(b.table, b.start, b.count) for b in plan(points, **{"max_gap": 10, **kw})]


def test_contiguous_points_make_one_request() -> None:
    p = pts(("holding", 0, "float32"), ("holding", 2, "uint16"), ("holding", 3, "int64"))
    assert spans(p) == [("holding", 0, 7)]


def test_gap_within_max_gap_is_read_through_beyond_it_splits() -> None:
    p = pts(("holding", 0, "uint16"), ("holding", 11, "uint16"), ("holding", 23, "uint16"))
    assert spans(p, max_gap=10) == [("holding", 0, 12), ("holding", 23, 1)]
    assert spans(p, max_gap=0) == [("holding", 0, 1), ("holding", 11, 1), ("holding", 23, 1)]


def test_register_requests_never_exceed_125() -> None:
    p = pts(*[("input", a, "float32") for a in range(0, 400, 2)])
    blocks = plan(p, max_gap=10)
    assert [b.count for b in blocks] == [124, 124, 124, 28]
    assert all(b.count <= 125 for b in blocks)
    assert sum(len(b.points) for b in blocks) == 200


def test_device_limit_lower_than_protocol() -> None:
    p = pts(*[("holding", a, "uint16") for a in range(100)])
    assert [b.count for b in plan(p, max_gap=0, max_registers=32)] == [32, 32, 32, 4]


def test_bits_up_to_2000_per_request_and_tables_apart() -> None:
    p = pts(
        *[("coil", a, "bool") for a in range(0, 4500, 3)],
        ("discrete", 0, "bool"),
        ("holding", 0, "uint16"),
    )
    got = spans(p)
    # coils at 0, 3, ..., 4497: 667 per request spans 1999 addresses
    assert [s for s in got if s[0] == "coil"] == [
        ("coil", 0, 1999),
        ("coil", 2001, 1999),
        ("coil", 4002, 496),
    ]
    assert ("discrete", 0, 1) in got
    assert ("holding", 0, 1) in got


def test_bits_of_one_register_share_it() -> None:
    p = [
        ModbusPoint.model_validate({"name": f"b{b}", "address": 6, "type": "bool", "bit": b})
        for b in range(4)
    ]
    assert spans(p) == [("holding", 6, 1)]


def test_string_width() -> None:
    p = pts(("holding", 20, "string"))
    p = [p[0].model_copy(update={"length": 15})]
    assert spans(p) == [("holding", 20, 8)]


def test_split_reads_only_what_points_use() -> None:
    p = pts(("holding", 0, "float32"), ("holding", 5, "uint16"), ("holding", 6, "uint16"))
    (block,) = plan(p, max_gap=10)
    assert block.has_gaps
    assert [(b.start, b.count) for b in split(block)] == [(0, 2), (5, 2)]
    assert not any(b.has_gaps for b in split(block))
