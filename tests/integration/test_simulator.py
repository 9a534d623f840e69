"""The Modbus pump simulator over real TCP, read with the real pymodbus client.

Each test starts its own simulator on an ephemeral port in this process, so
tests are independent and can run in any order.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException

from simulators import ModbusSimulator

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
DATATYPE = AsyncModbusTcpClient.DATATYPE


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def plc(
    client_timeout: float = 1.0, **options: object
) -> AsyncIterator[tuple[ModbusSimulator, AsyncModbusTcpClient]]:
    """A running simulator (deterministic unless told otherwise) and a connected client."""
    options.setdefault("deterministic", True)
    options.setdefault("seed", 0)
    async with ModbusSimulator(host=HOST, port=0, **options) as sim:  # type: ignore[arg-type]
        client = AsyncModbusTcpClient(HOST, port=sim.port, timeout=client_timeout, retries=0)
        assert await client.connect()
        try:
            yield sim, client
        finally:
            client.close()


async def holding(
    client: AsyncModbusTcpClient, address: int, count: int, unit: int = 1
) -> list[int]:
    response = await client.read_holding_registers(address, count=count, device_id=unit)
    assert not response.isError(), response
    return list(response.registers)


async def coils(client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
    response = await client.read_coils(address, count=count, device_id=1)
    assert not response.isError(), response
    return [int(b) for b in response.bits[:count]]  # pymodbus pads bits to whole bytes


async def discretes(client: AsyncModbusTcpClient, address: int, count: int) -> list[int]:
    response = await client.read_discrete_inputs(address, count=count, device_id=1)
    assert not response.isError(), response
    return [int(b) for b in response.bits[:count]]


def unswap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def as_float32(registers: list[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", *registers))[0])


PROCESS_REGISTERS = [
    0x405A, 0xE148,  # discharge_pressure 3.42 (float32 0x405AE148)
    0x424E, 0x0000,  # flow 51.5 (0x424E0000)
    1825,  # motor_current 18.25 A * 100
    613,  # bearing_temp 61.3 degC * 10
    13,  # status: running | remote | running copy
    0, 42,  # start_counter
    0x0001, 0xE240,  # running_seconds 123456
    2950,  # speed_rpm
]  # fmt: skip
TAG_REGISTERS = [0x5055, 0x4D50, 0x2D31, 0x3031, 0, 0, 0, 0]  # "PUMP-101"
BANK_ABCD = [
    0xCFC7, 0xD431, 0xF8A4, 0x32EB, 0xCE0A, 0x6A14, 0xEEDD, 0xEF0B, 0x8216, 0x7EEB,
    0xAB54, 0xA98C, 0xEB1F, 0x0AD2, 0x4049, 0x0FD0, 0x4005, 0xBF0A, 0x8B14, 0x5769,
    0x4544, 0x4745, 0x2D41, 0x4745, 0x4E54, 0x2D54, 0x4553, 0x5421, 0xA005,
]  # fmt: skip
PATTERN = [1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]


@pytest.mark.asyncio
async def test_process_values_deterministic() -> None:
    async with plc() as (_sim, client):
        assert await holding(client, 0, 12) == PROCESS_REGISTERS
        response = await client.read_input_registers(0, count=12, device_id=1)
        assert list(response.registers) == PROCESS_REGISTERS
        assert await holding(client, 20, 8) == TAG_REGISTERS
        regs = await holding(client, 0, 12)
        # Cross-check with pymodbus' own decoder.
        convert = client.convert_from_registers
        assert convert(regs[0:2], DATATYPE.FLOAT32) == pytest.approx(3.42, abs=1e-6)
        assert convert(regs[2:4], DATATYPE.FLOAT32) == 51.5
        assert convert(regs[9:11], DATATYPE.UINT32) == 123456
        assert convert(regs[5:6], DATATYPE.INT16) == 613
        assert convert(await holding(client, 20, 8), DATATYPE.STRING).rstrip("\0") == "PUMP-101"


@pytest.mark.asyncio
async def test_type_banks_in_all_four_orders() -> None:
    async with plc() as (_sim, client):
        banks = {base: await holding(client, base, 29) for base in (100, 200, 300, 400)}
    assert banks[100] == BANK_ABCD
    convert = AsyncModbusTcpClient.convert_from_registers
    for base, word_order, swapped in ((100, "big", False), (200, "little", False),
                                      (300, "big", True), (400, "little", True)):  # fmt: skip
        regs = unswap_bytes(banks[base]) if swapped else banks[base]

        def value(offset: int, width: int, dtype: DATATYPE, regs: list[int] = regs) -> object:
            return convert(regs[offset : offset + width], dtype, word_order=word_order)  # noqa: B023

        assert value(0, 1, DATATYPE.INT16) == -12345, base
        assert value(1, 1, DATATYPE.UINT16) == 54321, base
        assert value(2, 2, DATATYPE.INT32) == -123456789, base
        assert value(4, 2, DATATYPE.UINT32) == 3456789012, base
        assert value(6, 4, DATATYPE.INT64) == -1234567890123456789, base
        assert value(10, 4, DATATYPE.UINT64) == 12345678901234567890, base
        assert value(14, 2, DATATYPE.FLOAT32) == pytest.approx(3.14159, rel=1e-7), base
        assert value(16, 4, DATATYPE.FLOAT64) == 2.718281828459045, base
        # strings never change word order, only byte order
        assert convert(regs[20:28], DATATYPE.STRING) == "EDGE-AGENT-TEST!", base
        assert regs[28] == 0b1010_0000_0000_0101, base


@pytest.mark.asyncio
async def test_bench_bank() -> None:
    async with plc() as (_sim, client):
        regs = await holding(client, 1000, 124) + await holding(client, 1124, 124)
        regs += await holding(client, 1248, 124) + await holding(client, 1372, 28)
    values = [as_float32(regs[i : i + 2]) for i in range(0, 400, 2)]
    assert values == [100.0 + i for i in range(200)]


@pytest.mark.asyncio
async def test_coils_and_discrete_inputs_use_bit_addresses() -> None:
    async with plc() as (_sim, client):
        assert await coils(client, 0, 3) == [1, 0, 1]
        assert await coils(client, 1, 2) == [0, 1]
        assert await coils(client, 100, 16) == PATTERN
        assert await coils(client, 101, 3) == PATTERN[1:4]
        assert await coils(client, 95, 30) == [0] * 5 + PATTERN + [0] * 9  # spans 3 words
        assert await coils(client, 115, 1) == [0]
        assert await coils(client, 111, 1) == [1]
        assert await discretes(client, 0, 3) == [1, 0, 0]
        assert await discretes(client, 100, 16) == PATTERN
        assert await discretes(client, 107, 2) == [1, 1]


@pytest.mark.asyncio
@pytest.mark.parametrize("function", ["holding", "input", "coil", "discrete"])
async def test_gaps_read_zero_and_beyond_1999_is_exception_2(function: str) -> None:
    async with plc() as (_sim, client):
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[function]
        gap = await read(500, count=50, device_id=1)
        assert not gap.isError()
        assert not any(gap.registers if function in ("holding", "input") else gap.bits)
        assert not (await read(1999, count=1, device_id=1)).isError()
        for address, count in ((2000, 1), (1999, 2), (5000, 10)):
            response = await read(address, count=count, device_id=1)
            assert response.isError(), (address, count)
            assert response.exception_code == 2


@pytest.mark.asyncio
async def test_any_unit_id_is_answered() -> None:
    async with plc() as (_sim, client):
        for unit in (0, 1, 7, 247):
            assert await holding(client, 0, 12, unit=unit) == PROCESS_REGISTERS


@pytest.mark.asyncio
async def test_set_value_set_registers_set_bits() -> None:
    async with plc() as (sim, client):
        sim.set_value("discharge_pressure", 1.0)
        sim.set_value("motor_current", 0.5)
        sim.set_value("running", False)
        sim.set_value("tag", "P-2")
        expected = [0x3F80, 0x0000, *PROCESS_REGISTERS[2:4], 50, 613, 0b0100]
        assert await holding(client, 0, 7) == expected
        assert list((await client.read_input_registers(0, count=7)).registers) == expected
        assert await holding(client, 20, 2) == [0x502D, 0x3200]
        assert await coils(client, 0, 3) == [0, 0, 1]
        assert await discretes(client, 0, 1) == [0]
        assert sim.reading.running is False

        sim.set_registers("holding", 1500, [1, 0xFFFF])
        sim.set_registers("input", 1999, [7])
        sim.set_bits("coil", 1998, [True, True])
        sim.set_bits("discrete", 2, [True])
        assert await holding(client, 1500, 2) == [1, 0xFFFF]
        assert list((await client.read_input_registers(1999, count=1)).registers) == [7]
        assert await coils(client, 1997, 3) == [0, 1, 1]
        assert await discretes(client, 0, 3) == [0, 0, 1]

        sim.clear_values()
        assert await holding(client, 0, 12) == PROCESS_REGISTERS

        with pytest.raises(KeyError):
            sim.set_value("no_such_value", 1)
        with pytest.raises(TypeError):
            sim.set_value("start_counter", 1.5)
        with pytest.raises(ValueError, match="does not fit"):
            sim.set_value("speed_rpm", 70000)
        with pytest.raises(ValueError, match="outside"):
            sim.set_registers("holding", 2000, [1])
        with pytest.raises(ValueError, match="bit table"):
            sim.set_registers("coil", 0, [1])


@pytest.mark.asyncio
async def test_client_writes_are_stored() -> None:
    async with plc() as (_sim, client):
        assert not (await client.write_register(1500, 0xBEEF, device_id=1)).isError()
        assert not (await client.write_coils(1600, [True, False, True], device_id=1)).isError()
        assert await holding(client, 1500, 1) == [0xBEEF]
        assert await coils(client, 1599, 5) == [0, 1, 0, 1, 0]


@pytest.mark.asyncio
async def test_injected_faults() -> None:
    async with plc() as (sim, client):
        sim.fail("holding", 4, 2, exception_code=4)
        sim.fail("coil", 100, 1, exception_code=9)  # 9 is not in pymodbus' ExcCodes
        sim.fail("input", 0, 12, exception_code=6)

        response = await client.read_holding_registers(0, count=12, device_id=1)
        assert response.isError()
        assert response.exception_code == 4
        assert (await client.read_holding_registers(5, count=1)).exception_code == 4
        assert await holding(client, 0, 4) == PROCESS_REGISTERS[:4]  # just before
        assert await holding(client, 6, 6) == PROCESS_REGISTERS[6:]  # just after
        assert (await client.read_coils(99, count=2)).exception_code == 9
        assert await coils(client, 101, 15) == PATTERN[1:]  # same 16-bit word, not the coil
        assert await coils(client, 96, 4) == [0, 0, 0, 0]
        assert (await client.read_input_registers(11, count=1)).exception_code == 6
        assert await discretes(client, 100, 1) == [1]  # other table untouched

        sim.clear_faults()
        assert await holding(client, 0, 12) == PROCESS_REGISTERS
        assert await coils(client, 100, 1) == [1]
        with pytest.raises(ValueError, match=r"1\.\.11"):
            sim.fail("holding", 0, 1, exception_code=0)
        with pytest.raises(ValueError, match="registers"):
            sim.fail("registers", 0, 1)


@pytest.mark.asyncio
async def test_delay_times_out_and_late_answers_are_not_mistaken() -> None:
    async with plc(client_timeout=0.2) as (sim, client):
        sim.delay = 0.4
        with pytest.raises(ModbusIOException):
            await client.read_holding_registers(0, count=2, device_id=1)
        sim.delay = 0
        # The late answer to the timed-out request (registers 0..1) arrives
        # around these requests; none of them may take it for its own.
        assert await holding(client, 100, 3) == BANK_ABCD[:3]
        await asyncio.sleep(0.3)
        assert await holding(client, 200, 3) == [0xCFC7, 0xD431, 0x32EB]
        assert await holding(client, 0, 12) == PROCESS_REGISTERS


def read_frame(transaction: int, address: int, count: int) -> bytes:
    """A raw Modbus TCP 'read holding registers' request for unit 1."""
    return struct.pack(">HHHBBHH", transaction, 0, 6, 1, 3, address, count)


@pytest.mark.asyncio
async def test_delayed_answers_keep_their_own_transaction_ids() -> None:
    # pymodbus' stock request handler would label the first answer with the
    # second request's transaction id; the simulator must not.
    async with plc() as (sim, _client):
        sim.delay = 0.2
        reader, writer = await asyncio.open_connection(HOST, sim.port)
        try:
            writer.write(read_frame(1, 0, 2))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(read_frame(2, 100, 1))
            await writer.drain()
            answers = {}
            for _ in range(2):
                transaction, _pid, length, _unit = struct.unpack(
                    ">HHHB", await reader.readexactly(7)
                )
                answers[transaction] = await reader.readexactly(length - 1)
        finally:
            writer.close()
            await writer.wait_closed()
    assert answers == {
        1: bytes([3, 4, 0x40, 0x5A, 0xE1, 0x48]),  # fc 3, 4 bytes, 3.42
        2: bytes([3, 2, 0xCF, 0xC7]),  # fc 3, 2 bytes, -12345
    }


@pytest.mark.asyncio
async def test_request_counters() -> None:
    async with plc() as (sim, client):
        await holding(client, 0, 2)
        await client.read_holding_registers(5000, count=1)  # exceptions count too
        await coils(client, 0, 3)
        await client.read_input_registers(0, count=1)
        assert sim.requests == {3: 2, 1: 1, 4: 1}
        counters = sim.requests
        sim.reset_counters()
        assert counters == {}  # cleared in place
        assert sim.requests[3] == 0
        await discretes(client, 0, 1)
        assert sim.requests == {2: 1}


@pytest.mark.asyncio
async def test_drop_connections_keeps_listening() -> None:
    async with plc() as (sim, client):
        assert sim.connection_count == 1
        sim.drop_connections()
        await wait_for(lambda: not client.connected)
        assert sim.connection_count == 0
        with pytest.raises(ConnectionException):
            await client.read_holding_registers(0, count=1)
        second = AsyncModbusTcpClient(HOST, port=sim.port, timeout=1, retries=0)
        try:
            assert await second.connect()
            assert await holding(second, 0, 12) == PROCESS_REGISTERS
        finally:
            second.close()


@pytest.mark.asyncio
async def test_stop_releases_port_and_restart_uses_same_port() -> None:
    async with plc() as (sim, client):
        port = sim.port
        sim.set_value("flow", 12.5)
        await sim.stop()
        assert not sim.running
        assert sim.connection_count == 0
        await wait_for(lambda: not client.connected)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, port), timeout=0.5).close()
        await sim.stop()  # idempotent
        await sim.restart()
        assert sim.port == port
        fresh = AsyncModbusTcpClient(HOST, port=port, timeout=1, retries=0)
        try:
            assert await fresh.connect()
            regs = await holding(fresh, 2, 2)
            assert regs == [0x4148, 0x0000]  # 12.5 = 0x41480000 survived the restart
        finally:
            fresh.close()
        with pytest.raises(RuntimeError):
            await sim.start()


@pytest.mark.asyncio
async def test_several_simulators_in_one_process() -> None:
    async with plc() as (first, client_a), plc() as (second, client_b):
        assert first.port != second.port
        first.set_value("speed_rpm", 1480)
        assert (await holding(client_a, 11, 1)) == [1480]
        assert (await holding(client_b, 11, 1)) == [2950]
        first.fail("holding", 11, 1)
        assert (await client_a.read_holding_registers(11, count=1)).isError()
        assert await holding(client_b, 11, 1) == [2950]
        assert first.requests[3] == 2
        assert second.requests[3] == 2


@pytest.mark.asyncio
async def test_pump_model_moves_with_time() -> None:
    clock = FakeClock()
    async with plc(deterministic=False, clock=clock) as (_sim, client):
        values = []
        for _ in range(40):  # 40 samples, 2 minutes apart
            regs = await holding(client, 0, 12)
            convert = client.convert_from_registers
            values.append(
                {
                    "pressure": convert(regs[0:2], DATATYPE.FLOAT32),
                    "flow": convert(regs[2:4], DATATYPE.FLOAT32),
                    "current": regs[4] / 100,
                    "temp": regs[5] / 10,
                    "status": regs[6],
                    "starts": convert(regs[7:9], DATATYPE.UINT32),
                    "run_s": convert(regs[9:11], DATATYPE.UINT32),
                    "rpm": regs[11],
                }
            )
            clock.now += 120
        bench = [as_float32(await holding(client, 1000 + 2 * i, 2)) for i in (0, 199)]
    running = [v for v in values if v["status"] & 1]
    stopped = [v for v in values if not v["status"] & 1]
    assert running, "the pump should run most of the time"
    for v in running:
        assert v["status"] & 0b1001 == 0b1001  # bit 3 copies bit 0
        assert 3.2 < v["pressure"] < 3.6
        assert 47 < v["flow"] < 53
        assert 17 < v["current"] < 19
        assert v["rpm"] == 2950
    for v in stopped:
        assert (v["rpm"], v["flow"], v["current"]) == (0, 0, 0)
    assert len({v["pressure"] for v in values}) > 30  # noisy, not constant
    assert values[0]["temp"] < 40  # warms up slowly
    assert 55 < values[-1]["temp"] < 63
    run_s = [v["run_s"] for v in values]
    assert run_s == sorted(run_s)
    assert run_s[-1] > run_s[0] + 3000
    starts = [v["starts"] for v in values]
    assert starts == sorted(starts)
    assert starts[0] == 42
    assert starts[-1] > 42  # seed 0 stops and restarts within 80 minutes
    assert 99 < bench[0] < 101
    assert 298 < bench[1] < 300


@pytest.mark.asyncio
async def test_same_seed_same_values_and_pins_hold() -> None:
    clock = FakeClock()
    async with plc(deterministic=False, clock=clock) as (a, client_a):
        async with plc(deterministic=False, clock=clock, seed=0) as (_b, client_b):
            for _ in range(5):
                clock.now += 37.3
                assert await holding(client_a, 0, 12) == await holding(client_b, 0, 12)
        a.set_value("bearing_temp", 95.5)
        clock.now += 10
        assert (await holding(client_a, 5, 1)) == [955]
        a.clear_values()
        assert (await holding(client_a, 5, 1)) != [955]


async def wait_for(condition: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_command_line_ready_line_and_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "modbus", "--port", "0", "--deterministic"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY modbus 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection((HOST, port), timeout=1) as sock:
            # raw Modbus TCP: tid 1, pid 0, len 6, unit 1, fc 3, address 11, count 1
            sock.sendall(bytes.fromhex("0001000000060103000b0001"))
            reply = sock.recv(64)
        assert reply == bytes.fromhex("0001000000050103020b86")  # 2950 = 0x0B86
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
