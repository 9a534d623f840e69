"""Coalesce a device's points into the fewest read requests. Pure: no I/O.

Points of one table are sorted by address and merged into one request while the unused
addresses between them are at most `max_gap` and the request stays within the protocol's
limit (125 registers, 2000 bits) or the device's lower one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config.models import ModbusPoint

BIT_TABLES = frozenset({"coil", "discrete"})


@dataclass(frozen=True, slots=True)
class Block:
    table: str
    start: int
    count: int
    points: tuple[ModbusPoint, ...]

    @property
    def has_gaps(self) -> bool:
        covered: set[int] = set()
        for p in self.points:
            covered.update(range(p.address, p.address + p.width))
        return len(covered) < self.count


def plan(
    points: list[ModbusPoint], max_gap: int, max_registers: int = 125, max_bits: int = 2000
) -> list[Block]:
    """Blocks in table order (coil, discrete, holding, input), then by address."""
    blocks: list[Block] = []
    for table in ("coil", "discrete", "holding", "input"):
        pts = sorted((p for p in points if p.table == table), key=lambda p: p.address)
        limit = max_bits if table in BIT_TABLES else max_registers
        group: list[ModbusPoint] = []
        start = end = 0
        for p in pts:
            p_end = p.address + p.width - 1
            if group and p.address - end - 1 <= max_gap and max(end, p_end) - start + 1 <= limit:
                group.append(p)
                end = max(end, p_end)
                continue
            if group:
                blocks.append(Block(table, start, end - start + 1, tuple(group)))
            group, start, end = [p], p.address, p_end
        if group:
            blocks.append(Block(table, start, end - start + 1, tuple(group)))
    return blocks


def split(block: Block) -> list[Block]:
    """The same points without reading through gaps: for devices that refuse unused addresses."""
    limit = 2000 if block.table in BIT_TABLES else 125
    return plan(
        list(block.points),
        max_gap=0,
        max_registers=min(limit, block.count),
        max_bits=min(limit, block.count),
    )
