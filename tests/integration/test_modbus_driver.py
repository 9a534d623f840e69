"""The Modbus TCP driver and its runner against the simulator: a real pymodbus server."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from edge_agent.backoff import Backoff
from edge_agent.config.models import ModbusTcpDevice
from edge_agent.drivers.base import DeviceTimeout, DeviceUnavailable
from edge_agent.drivers.modbus.driver import ModbusTcpDriver
from edge_agent.readings import Batch, Quality, Reading
from edge_agent.runner import DeviceRunner
from simulators.modbus_sim import ModbusSimulator

BANKS = {
    "ABCD": (100, "big", "big"),
    "CDAB": (200, "little", "big"),
    "BADC": (300, "big", "little"),
    "DCBA": (400, "little", "little"),
}
VECTORS: list[tuple[int, str, Any, dict[str, Any]]] = [
    (0, "int16", -12345, {}),
    (1, "uint16", 54321, {}),
    (2, "int32", -123456789, {}),
    (4, "uint32", 3456789012, {}),
    (6, "int64", -1234567890123456789, {}),
    (10, "uint64", 12345678901234567890, {}),
    (14, "float32", 3.14159, {}),
    (16, "float64", 2.718281828459045, {}),
    (20, "string", "EDGE-AGENT-TEST!", {"length": 16}),
]


def device(port: int, points: list[dict[str, Any]], **kw: Any) -> ModbusTcpDevice:
    return ModbusTcpDevice.model_validate(
        {
            "name": kw.pop("name", "dev"),
            "protocol": "modbus-tcp",
            "host": "127.0.0.1",
            "port": port,
            "timeout": "300ms",
            "poll_interval": "500ms",
            "points": points,
            **kw,
        }
    )


@pytest.fixture
async def sim() -> AsyncIterator[ModbusSimulator]:
    async with ModbusSimulator(port=0, deterministic=True) as s:
        yield s


def by_name(readings: list[Reading]) -> dict[str, Reading]:
    return {r.point: r for r in readings}


async def poll_once(dev: ModbusTcpDevice) -> tuple[list[Reading], ModbusTcpDriver]:
    driver = ModbusTcpDriver(dev, keep_raw=True)
    await driver.connect()
    try:
        return await driver.poll(), driver
    finally:
        await driver.close()


async def test_every_type_in_every_order(sim: ModbusSimulator) -> None:
    points = []
    for order, (base, word, byte) in BANKS.items():
        for off, dtype, _, extra in VECTORS:
            points.append(
                {
                    "name": f"{dtype}_{order}",
                    "address": base + off,
                    "type": dtype,
                    "word_order": word,
                    "byte_order": byte,
                    **extra,
                }
            )
        for bit in (0, 1, 2, 13, 15):
            points.append(
                {
                    "name": f"bit{bit}_{order}",
                    "address": base + 28,
                    "type": "bool",
                    "bit": bit,
                    "byte_order": byte,
                }
            )
    readings, _ = await poll_once(device(sim.port, points))
    got = by_name(readings)
    assert len(got) == len(points)
    for order in BANKS:
        for _, dtype, expected, _ in VECTORS:
            r = got[f"{dtype}_{order}"]
            assert r.quality is Quality.GOOD, r
            assert r.value == expected, (order, dtype, r)
        assert [got[f"bit{b}_{order}"].value for b in (0, 1, 2, 13, 15)] == [
            True,
            False,
            True,
            True,
            True,
        ]


async def test_all_four_tables_and_scaling(sim: ModbusSimulator) -> None:
    readings, _ = await poll_once(
        device(
            sim.port,
            [
                {"name": "pressure", "address": 0, "type": "float32"},
                {"name": "current", "table": "input", "address": 4, "scale": 0.01},
                {"name": "temp", "table": "input", "address": 5, "type": "int16", "scale": 0.1},
                {"name": "running", "table": "coil", "address": 0},
                {"name": "fault", "table": "coil", "address": 1},
                {"name": "pattern", "table": "discrete", "address": 103},
                {"name": "tag", "address": 20, "type": "string", "length": 16},
            ],
        )
    )
    values = {r.point: r.value for r in readings}
    assert values == {
        "pressure": 3.42,
        "current": 18.25,
        "temp": 61.3,
        "running": True,
        "fault": False,
        "pattern": True,
        "tag": "PUMP-101",
    }
    raw = by_name(readings)["pressure"].raw
    assert raw == struct.unpack(">2H", struct.pack(">f", 3.42))


async def test_coalescing_makes_the_fewest_requests(sim: ModbusSimulator) -> None:
    points = (
        [{"name": f"h{a}", "address": a, "type": "float32"} for a in range(0, 300, 2)]
        + [{"name": f"c{a}", "table": "coil", "address": a} for a in range(100, 116)]
        + [
            {"name": "d", "table": "discrete", "address": 0},
            {"name": "i0", "table": "input", "address": 0},
            {"name": "i11", "table": "input", "address": 11},
        ]
    )
    dev = device(sim.port, points)
    driver = ModbusTcpDriver(dev)
    await driver.connect()
    sim.reset_counters()
    readings = await driver.poll()
    await driver.close()
    assert all(r.quality is Quality.GOOD for r in readings)
    # 300 holding registers need ceil(300 / 124) = 3 requests (float32 pairs never split),
    # the coils 1, the discrete input 1, the two input registers 9 apart 1.
    assert dict(sim.requests) == {3: 3, 1: 1, 2: 1, 4: 1}
    assert driver.requests == 6


async def test_modbus_exception_makes_bad_readings_others_stay_good(sim: ModbusSimulator) -> None:
    sim.fail("input", 0, 1, exception_code=4)
    readings, _ = await poll_once(
        device(
            sim.port,
            [
                {"name": "p_input", "table": "input", "address": 0, "type": "float32"},
                {"name": "p_holding", "address": 0, "type": "float32"},
            ],
        )
    )
    got = by_name(readings)
    assert got["p_input"].quality is Quality.BAD
    assert got["p_input"].error == "server_device_failure"
    assert got["p_input"].value is None
    assert got["p_holding"].quality is Quality.GOOD


async def test_device_refusing_gaps_is_read_point_by_point(sim: ModbusSimulator) -> None:
    sim.fail("holding", 3, 1, exception_code=2)  # an unused address between two points
    dev = device(
        sim.port,
        [
            {"name": "a", "address": 0, "type": "uint16"},
            {"name": "b", "address": 5, "type": "uint16"},
        ],
    )
    driver = ModbusTcpDriver(dev)
    await driver.connect()
    first = await driver.poll()
    second = await driver.poll()
    await driver.close()
    for readings in (first, second):
        assert {r.point: r.quality for r in readings} == {"a": Quality.GOOD, "b": Quality.GOOD}
    assert len(driver.blocks) == 2
    assert driver.requests == 1 + 2 + 2  # the refused block, then two requests per poll


async def test_timeout_raises_device_timeout(sim: ModbusSimulator) -> None:
    sim.delay = 1.0
    driver = ModbusTcpDriver(device(sim.port, [{"name": "a", "address": 0}]))
    await driver.connect()
    with pytest.raises(DeviceTimeout):
        await driver.poll()
    await driver.close()


async def test_connection_refused_raises_unavailable(sim: ModbusSimulator) -> None:
    port = sim.port
    await sim.stop()
    driver = ModbusTcpDriver(device(port, [{"name": "a", "address": 0}]))
    with pytest.raises(DeviceUnavailable):
        await driver.connect()


async def test_malformed_answer_is_bad_quality() -> None:
    """A real TCP peer that answers every read with one register too few."""

    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while request := await reader.read(12):
            tid, unit = request[:2], request[6]
            writer.write(tid + b"\x00\x00\x00\x05" + bytes([unit, 3, 2]) + b"\x00\x07")
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        readings, _ = await poll_once(
            device(port, [{"name": "a", "address": 0}, {"name": "b", "address": 1}])
        )
        await asyncio.wait_for(done.wait(), 5)
    assert {(r.point, r.quality, r.error) for r in readings} == {
        ("a", Quality.BAD, "malformed_response"),
        ("b", Quality.BAD, "malformed_response"),
    }


class Collector:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)

    def qualities(self) -> list[set[str | None]]:
        return [{r.error for r in b.readings} for b in self.batches]


def runner(dev: ModbusTcpDevice, sink: Collector) -> DeviceRunner:
    return DeviceRunner(
        dev.name,
        ModbusTcpDriver(dev),
        [p.name for p in dev.points],
        interval=dev.poll_interval,
        emit=sink,
        backoff=Backoff(dev.reconnect_delay, dev.reconnect_delay_max),
    )


async def wait_until(predicate: Any, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - polls state the runner keeps
            await asyncio.sleep(0.02)


async def test_slow_and_dead_devices_do_not_hold_up_a_healthy_one(sim: ModbusSimulator) -> None:
    slow_sim = ModbusSimulator(port=0, deterministic=True)
    await slow_sim.start()
    slow_sim.delay = 5.0
    good, slow, dead = Collector(), Collector(), Collector()
    points = [{"name": "a", "address": 0, "type": "float32"}]
    runners = [
        runner(device(sim.port, points, name="good", poll_interval="100ms", timeout="100ms"), good),
        runner(device(slow_sim.port, points, name="slow", timeout="300ms"), slow),
        runner(device(1, points, name="dead", timeout="300ms"), dead),
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        await wait_until(lambda: len(good.batches) >= 20 and slow.batches and dead.batches)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await slow_sim.stop()
    assert all(r.quality is Quality.GOOD for b in good.batches for r in b.readings)
    assert {"timeout"} in slow.qualities()
    assert {"unreachable"} in dead.qualities()
    # While the others failed, the healthy device polled on schedule.
    assert runners[0].stats.failed_polls == 0
    assert runners[0].stats.skipped <= 2


async def test_runner_reconnects_after_the_device_comes_back(sim: ModbusSimulator) -> None:
    sink = Collector()
    dev = device(
        sim.port,
        [{"name": "a", "address": 0, "type": "float32"}],
        poll_interval="100ms",
        timeout="100ms",
        reconnect_delay="100ms",
        reconnect_delay_max="200ms",
    )
    r = runner(dev, sink)
    task = asyncio.create_task(r.run())
    try:
        await wait_until(lambda: len(sink.batches) >= 2)
        await sim.stop()
        await wait_until(lambda: any(b.readings[0].quality is Quality.BAD for b in sink.batches))
        await sim.restart()
        n = len(sink.batches)
        await wait_until(
            lambda: (
                len(sink.batches) > n + 2 and sink.batches[-1].readings[0].quality is Quality.GOOD
            )
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # A bad value is never a stale good one.
    for b in sink.batches:
        for reading in b.readings:
            assert (reading.quality is Quality.GOOD) == (reading.value is not None)
