"""Modbus TCP I/O shell around plan.py and decode.py. pymodbus errors are translated here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from struct import error as struct_error
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from ...config.models import ModbusPoint, ModbusTcpDevice
from ...readings import Quality, Reading, now_ms
from ..base import DeviceTimeout, DeviceUnavailable
from .decode import Decoder, compile_point, registers_to_bytes
from .plan import BIT_TABLES, Block, plan, split

log = logging.getLogger(__name__)

EXCEPTION_CODES = {
    1: "illegal_function",
    2: "illegal_data_address",
    3: "illegal_data_value",
    4: "server_device_failure",
    5: "acknowledge",
    6: "server_device_busy",
    8: "memory_parity_error",
    10: "gateway_path_unavailable",
    11: "gateway_target_no_response",
}
_READS = {
    "coil": "read_coils",
    "discrete": "read_discrete_inputs",
    "holding": "read_holding_registers",
    "input": "read_input_registers",
}


@dataclass(frozen=True, slots=True)
class _Compiled:
    block: Block
    decoders: tuple[tuple[ModbusPoint, int, Decoder], ...]
    named: tuple[tuple[str, Decoder], ...]


def _compile(block: Block) -> _Compiled:
    decs: list[tuple[ModbusPoint, int, Decoder]] = []
    for p in block.points:
        off = p.address - block.start
        if block.table in BIT_TABLES:
            decs.append((p, off, _bit(off)))
        else:
            decs.append((p, off, compile_point(p, off)))
    return _Compiled(block, tuple(decs), tuple((p.name, dec) for p, _, dec in decs))


def _bit(off: int) -> Decoder:
    return lambda buf, bits: bool(bits[off])


class ModbusTcpDriver:
    """Reads one Modbus TCP device. Holds one connection; the runner decides when to poll."""

    def __init__(self, device: ModbusTcpDevice, *, keep_raw: bool = False) -> None:
        self.device = device
        self.keep_raw = keep_raw
        self.blocks = [
            _compile(b)
            for b in plan(device.points, device.max_gap, device.max_registers, device.max_bits)
        ]
        self._client: AsyncModbusTcpClient | None = None
        self.requests = 0  # read requests sent: for statistics and tests

    def describe(self) -> str:
        reqs = ", ".join(f"{c.block.table} {c.block.start}+{c.block.count}" for c in self.blocks)
        return (
            f"modbus-tcp {self.device.host}:{self.device.port} unit {self.device.unit_id}: "
            f"{len(self.device.points)} points in {len(self.blocks)} requests ({reqs})"
        )

    async def connect(self) -> None:
        await self.close()
        dev = self.device
        client = AsyncModbusTcpClient(
            dev.host,
            port=dev.port,
            timeout=dev.timeout,
            retries=0,
            reconnect_delay=0,
            name=dev.name,
        )
        try:
            async with asyncio.timeout(dev.timeout + 1):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as err:
            client.close()
            raise DeviceUnavailable(f"cannot connect to {dev.host}:{dev.port}: {err}") from err
        if not ok:
            client.close()
            raise DeviceUnavailable(f"cannot connect to {dev.host}:{dev.port}")
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def poll(self) -> list[Reading]:
        out: list[Reading] = []
        for compiled in list(self.blocks):
            out.extend(await self._read(compiled))
        return out

    async def _read(self, compiled: _Compiled) -> list[Reading]:
        block = compiled.block
        response = await self._request(block)
        ts = now_ms()
        if response.isError():
            code = getattr(response, "exception_code", 0)
            if code == 2 and block.has_gaps:
                return await self._split(compiled)
            err = EXCEPTION_CODES.get(code, f"modbus_exception_{code}")
            return [Reading(p.name, None, Quality.BAD, ts, err) for p in block.points]
        if block.table in BIT_TABLES:
            values: Sequence[Any] = response.bits
            buf = b""
        else:
            values = response.registers
            buf = registers_to_bytes(values[: block.count])
        if len(values) < block.count:
            return [
                Reading(p.name, None, Quality.BAD, ts, "malformed_response") for p in block.points
            ]
        good = Quality.GOOD
        if not self.keep_raw:
            try:  # the common case, as one comprehension: no per-point bookkeeping
                return [Reading(n, dec(buf, values), good, ts) for n, dec in compiled.named]
            except (ValueError, struct_error):
                pass  # some point cannot be decoded: go point by point
        out: list[Reading] = []
        raw = self.keep_raw
        for point, off, decode in compiled.decoders:
            try:
                value = decode(buf, values)
            except (ValueError, struct_error) as err:
                out.append(Reading(point.name, None, Quality.BAD, ts, str(err) or "decode_error"))
                continue
            regs = tuple(int(v) for v in values[off : off + point.width]) if raw else None
            out.append(Reading(point.name, value, Quality.GOOD, ts, None, regs))
        return out

    async def _split(self, compiled: _Compiled) -> list[Reading]:
        """The device refuses to be read through unused addresses: stop doing it, for good."""
        parts = [_compile(b) for b in split(compiled.block)]
        log.warning(
            "%s: device refuses reads through unused addresses at %s %d+%d; reading "
            "them as %d separate requests from now on (set max_gap: 0 to silence this)",
            self.device.name,
            compiled.block.table,
            compiled.block.start,
            compiled.block.count,
            len(parts),
        )
        i = self.blocks.index(compiled)
        self.blocks[i : i + 1] = parts
        out: list[Reading] = []
        for part in parts:
            out.extend(await self._read(part))
        return out

    async def _request(self, block: Block) -> Any:
        if self._client is None:
            raise DeviceUnavailable("not connected")
        read: Callable[..., Any] = getattr(self._client, _READS[block.table])
        self.requests += 1
        try:
            async with asyncio.timeout(self.device.timeout * 2 + 0.5):
                return await read(block.start, count=block.count, device_id=self.device.unit_id)
        except TimeoutError as err:
            raise DeviceTimeout(f"no answer within {self.device.timeout:g}s") from err
        except ConnectionException as err:
            raise DeviceUnavailable(f"connection lost: {err}") from err
        except ModbusIOException as err:
            if "No response" in str(err):
                raise DeviceTimeout(f"no answer within {self.device.timeout:g}s") from err
            raise DeviceUnavailable(f"I/O error: {err}") from err
        except ModbusException as err:
            raise DeviceUnavailable(f"malformed answer: {err}") from err
