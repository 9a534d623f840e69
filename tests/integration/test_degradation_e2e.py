"""A bearing fault developing in the simulator, end to end.

The simulator runs deterministically at 5 simulated hours per real second, so its outputs are
exact functions of simulated time (simulators/degradation.py): the velocity crosses the ISO
10816-3 group 2 rigid boundaries 1.4 and 2.8 mm/s 13.86 h and 28.90 h after the fault starts.
The agent polls it every 200 ms (one simulated hour) and must publish the zone changes and the
bearing temperature alarm at those simulated times, converted back from the events' wall-clock
``ts`` with the known time scale and fault start.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.client import AsyncModbusTcpClient

from simulators import ModbusSimulator
from simulators.degradation import condition_at, hours_to_temp_rise, hours_to_velocity
from simulators.plant import NOMINAL
from simulators.register_map import VIBRATION_ADDRESS
from tests.support.agent import AgentProcess, SimThread, modbus_device, write_config
from tests.support.broker import Broker
from tests.support.subscriber import Subscriber

PREFIX = "maintenance4/test/gw-test"
TIME_SCALE = 18_000.0  # simulated seconds per real second: 5 simulated hours a second
POLL_S = 0.2
ON_DELAY_S = 1.0
TEMP_HIGH = 75.0
SIM_H_PER_S = TIME_SCALE / 3600.0
POLL_H = POLL_S * SIM_H_PER_S  # one poll = one simulated hour
EARLY_H = 0.05  # ts is in whole ms and taken after the answer: an event is never early
LATE_H = 3 * POLL_H  # a few polls of latency (poll phase, scheduling)
ALARM_LATE_H = LATE_H + POLL_H  # the on-delay ends at a poll too


def config(tmp_path: Path, broker: Broker, port: int) -> Path:
    return write_config(
        tmp_path / "a.yaml",
        broker.url,
        [
            modbus_device(
                port,
                [
                    {"name": "velocity_rms", "address": 30, "type": "float32", "unit": "mm/s"},
                    {"name": "bearing_temp", "address": 5, "type": "int16", "scale": 0.1},
                ],
                indicator_interval="1s",
                indicators=[
                    {
                        "name": "de_zone",
                        "kind": "iso_zone",
                        "source": "velocity_rms",
                        "units": "mm/s",
                        "measure": "rms",
                        "iso10816": {"group": 2, "foundation": "rigid"},
                    },
                    {
                        "name": "temp_alarm",
                        "kind": "threshold",
                        "source": "bearing_temp",
                        "high": TEMP_HIGH,
                        "hysteresis": 2,
                        "on_delay": "1s",
                    },
                ],
            )
        ],
    )


def events(messages: list[Any]) -> list[dict[str, Any]]:
    topic = f"{PREFIX}/pump-101/events"
    return [e for m in messages if m.topic == topic for e in m.json()["events"]]


def zone_of(messages: list[Any]) -> str | None:
    topic = f"{PREFIX}/pump-101/indicators"
    for m in reversed(messages):
        if m.topic == topic:
            for ind in m.json()["indicators"]:
                if ind["name"] == "de_zone":
                    zone: str | None = ind["values"]["zone"]
                    return zone
    return None


def test_bearing_fault_zone_changes_and_temperature_alarm_on_time(
    tmp_path: Path,
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    agent_factory: Callable[..., AgentProcess],
    subscriber_factory: Callable[..., Subscriber],
) -> None:
    sim = sim_factory(deterministic=True, time_scale=TIME_SCALE)
    sub = subscriber_factory(broker.url, f"{PREFIX}/pump-101/+")
    agent = agent_factory(config(tmp_path, broker, sim.port))
    sub.wait_for(lambda ms: zone_of(ms) == "A", timeout=20, description="zone A (healthy)")

    fault_wall = time.time()  # at or before the start: simulated hours below are upper bounds
    sim.call(sim.sim.start_fault)

    def done(ms: list[Any]) -> bool:
        evs = events(ms)
        return any(e.get("detail") == "B->C" for e in evs) and any(
            e["event"] == "alarm_raised" for e in evs
        )

    messages = sub.wait_for(done, timeout=15, description="B->C and alarm_raised")
    assert agent.terminate() == 0

    def fault_hours(event: dict[str, Any]) -> float:
        return (event["ts"] / 1000 - fault_wall) * SIM_H_PER_S

    zones = [e for e in events(messages) if e["event"] == "zone_changed"]
    assert [e["detail"] for e in zones][:2] == ["A->B", "B->C"]
    for event, boundary in zip(zones, (1.4, 2.8), strict=False):
        assert event["indicator"] == "de_zone"
        assert event["limit"] == boundary
        assert event["value"] > boundary
        expected_h = hours_to_velocity(boundary)
        h = fault_hours(event)
        assert expected_h - EARLY_H <= h <= expected_h + LATE_H, (event, h, expected_h)
        # the reading itself was taken after the crossing and no later than the event
        assert expected_h - 1e-3 <= hours_to_velocity(event["value"]) <= h + EARLY_H

    raised = next(e for e in events(messages) if e["event"] == "alarm_raised")
    assert raised["indicator"] == "temp_alarm"
    assert raised["detail"] == "high"
    assert raised["limit"] == TEMP_HIGH
    assert raised["value"] >= TEMP_HIGH
    # the register holds tenths: 75.0 is served from 74.95 on; then 1 s (5 h) of on-delay
    expected_h = hours_to_temp_rise(TEMP_HIGH - 0.05 - NOMINAL.bearing_temp)
    expected_h += ON_DELAY_S * SIM_H_PER_S
    h = fault_hours(raised)
    assert expected_h - EARLY_H <= h <= expected_h + ALARM_LATE_H, (raised, h, expected_h)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def as_float32(registers: list[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", *registers))[0])


@pytest.mark.asyncio
async def test_registers_follow_the_model_in_simulated_time() -> None:
    clock = FakeClock()
    options: dict[str, Any] = {"deterministic": True, "clock": clock, "time_scale": 3600.0}
    async with ModbusSimulator(port=0, degrade_after_h=2.0, **options) as sim:
        client = AsyncModbusTcpClient("127.0.0.1", port=sim.port, timeout=1, retries=0)
        assert await client.connect()
        try:
            for clock_s, fault_h in ((0.0, None), (1.0, None), (15.0, 13.0), (32.0, 30.0)):
                clock.now = 100.0 + clock_s  # one simulated hour per clock second
                expected = condition_at(fault_h)
                for read in (client.read_holding_registers, client.read_input_registers):
                    response = await read(VIBRATION_ADDRESS, count=6, device_id=1)
                    regs = list(response.registers)
                    values = [as_float32(regs[i : i + 2]) for i in (0, 2, 4)]
                    wanted = [expected.velocity_rms, expected.hf_accel_rms, expected.envelope_bpfo]
                    assert values == pytest.approx(wanted, rel=1e-6)
                response = await client.read_holding_registers(4, count=2, device_id=1)
                current, temp = response.registers
                assert current == round(round(18.25 * expected.current_factor, 2) * 100)
                assert temp == round(round(61.3 + expected.temp_rise, 1) * 10)
                response = await client.read_holding_registers(0, count=4, device_id=1)
                assert list(response.registers) == [0x405A, 0xE148, 0x424E, 0x0000]
            sim.set_value("velocity_rms", 0.5)  # a pin holds against the fault
            clock.now += 3.0
            response = await client.read_holding_registers(VIBRATION_ADDRESS, count=2, device_id=1)
            assert as_float32(list(response.registers)) == 0.5
        finally:
            client.close()
