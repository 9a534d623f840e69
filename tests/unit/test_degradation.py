"""The bearing degradation model (simulators/degradation.py), checked against hand-computed
values: the zone crossing times are tau * ln(1 + (boundary - 1.1) / 0.1) with tau = 10 h, i.e.
10 ln 4, 10 ln 18 and 10 ln 35 hours."""

from __future__ import annotations

import itertools
import math
import random
import statistics
from dataclasses import replace

import pytest

from simulators.__main__ import _parser
from simulators.degradation import (
    DEFAULT,
    HEALTHY,
    condition_at,
    hours_to_temp_rise,
    hours_to_velocity,
    severity,
)
from simulators.modbus_sim import ModbusSimulator
from simulators.plant import NOMINAL, VALUE_NAMES, with_bearing
from simulators.register_map import VIBRATION_ADDRESS, RegisterImage, Table, write_reading

# (boundary mm/s, simulated hours after the fault started, zone change)
ZONE_CROSSINGS = [
    (1.4, 13.862944, "A->B"),  # 10 ln 4
    (2.8, 28.903718, "B->C"),  # 10 ln 18
    (4.5, 35.553481, "C->D"),  # 10 ln 35
]
END_OF_LIFE_H = 46.051702  # 10 ln 100


def grid(stop: float, step: float = 0.25) -> list[float]:
    return [i * step for i in range(int(stop / step) + 1)]


def test_healthy_bearing_before_the_fault() -> None:
    for hours in (None, -3.0, 0.0):
        assert condition_at(hours) == HEALTHY
    assert (HEALTHY.velocity_rms, HEALTHY.hf_accel_rms, HEALTHY.envelope_bpfo) == (1.1, 0.05, 0.005)
    assert (HEALTHY.severity, HEALTHY.temp_rise, HEALTHY.current_factor) == (0.0, 0.0, 1.0)
    assert HEALTHY.velocity_rms < 1.4  # zone A of ISO 10816-3 group 2 rigid


def test_severity_grows_exponentially() -> None:
    assert severity(10.0) == pytest.approx(math.e - 1)
    assert severity(20.0) == pytest.approx(math.e**2 - 1)
    # ln(1 + s) is linear in time: the shape a trend of ln(excess) fits
    assert math.log1p(severity(30.0)) - math.log1p(severity(20.0)) == pytest.approx(1.0)


def test_every_value_grows_monotonically_until_end_of_life_then_holds() -> None:
    conditions = [condition_at(h) for h in grid(END_OF_LIFE_H)]
    for name in (
        "severity",
        "velocity_rms",
        "hf_accel_rms",
        "envelope_bpfo",
        "temp_rise",
        "current_factor",
    ):
        values = [getattr(c, name) for c in conditions]
        assert all(b > a for a, b in itertools.pairwise(values)), name
    assert DEFAULT.end_of_life_h == pytest.approx(END_OF_LIFE_H, abs=1e-6)
    end = condition_at(END_OF_LIFE_H + 1e-6)
    assert end.velocity_rms == pytest.approx(11.0)
    assert condition_at(100.0) == condition_at(1000.0) == end


@pytest.mark.parametrize(("boundary", "hours", "change"), ZONE_CROSSINGS)
def test_zone_boundaries_crossed_at_documented_hours(
    boundary: float, hours: float, change: str
) -> None:
    assert hours_to_velocity(boundary) == pytest.approx(hours, abs=1e-6), change
    assert (
        condition_at(hours - 1e-5).velocity_rms
        < boundary
        <= condition_at(hours + 1e-5).velocity_rms
    )


def test_velocity_inverse() -> None:
    assert hours_to_velocity(1.0) == 0.0
    assert hours_to_velocity(12.0) == math.inf
    for h in (0.5, 7.0, 31.0, 45.0):
        assert hours_to_velocity(condition_at(h).velocity_rms) == pytest.approx(h)


def test_envelope_and_hf_rise_before_the_velocity() -> None:
    # at A->B the velocity has moved 27 % above healthy, the envelope line 35 times
    at_ab = condition_at(ZONE_CROSSINGS[0][1])
    assert at_ab.velocity_rms / HEALTHY.velocity_rms == pytest.approx(1.4 / 1.1, rel=1e-5)
    assert at_ab.envelope_bpfo == pytest.approx(0.005 + 0.1 * math.sqrt(3), rel=1e-5)
    assert at_ab.hf_accel_rms == pytest.approx(0.05 + 0.15 * math.sqrt(3), rel=1e-5)


def test_temperature_trends_up_and_accelerates() -> None:
    # 0.5 degC/h plus 0.25 degC per unit of severity
    assert condition_at(10.0).temp_rise == pytest.approx(5.0 + 0.25 * (math.e - 1))
    expected = {13.862944: 7.68147, 28.903718: 18.70186, 35.553481: 26.27674}
    for hours, rise in expected.items():
        assert condition_at(hours).temp_rise == pytest.approx(rise, abs=1e-4)
    assert condition_at(END_OF_LIFE_H).temp_rise == pytest.approx(0.5 * END_OF_LIFE_H + 24.75)
    hourly = [condition_at(h + 1).temp_rise - condition_at(h).temp_rise for h in range(45)]
    assert hourly[0] == pytest.approx(0.5 + 0.25 * (math.exp(0.1) - 1))
    assert all(b > a for a, b in itertools.pairwise(hourly))
    assert hourly[0] > 0.5
    assert hourly[-1] > 2.5


def test_temperature_inverse() -> None:
    assert hours_to_temp_rise(0.0) == 0.0
    assert hours_to_temp_rise(100.0) == math.inf
    for h in (0.3, 12.0, 22.9, 44.0):
        assert hours_to_temp_rise(condition_at(h).temp_rise) == pytest.approx(h, abs=1e-6)


def test_current_drifts_one_percent_per_hour() -> None:
    assert condition_at(1.0).current_factor == pytest.approx(1.01)
    assert condition_at(25.0).current_factor == pytest.approx(1.25)
    assert condition_at(200.0).current_factor == pytest.approx(1 + 0.01 * END_OF_LIFE_H)


def test_noise_comes_only_from_the_rng_passed_in() -> None:
    assert condition_at(20.0) == condition_at(20.0)
    a = condition_at(20.0, rng=random.Random(7))
    assert a == condition_at(20.0, rng=random.Random(7))
    assert a != condition_at(20.0)
    exact = condition_at(20.0)
    assert (a.temp_rise, a.current_factor) == (exact.temp_rise, exact.current_factor)
    rng = random.Random(1)
    ratios = [condition_at(20.0, rng=rng).velocity_rms / exact.velocity_rms for _ in range(2000)]
    assert statistics.fmean(ratios) == pytest.approx(1.0, abs=0.005)
    assert statistics.stdev(ratios) == pytest.approx(0.03, rel=0.1)


def test_with_bearing_on_the_pump_reading() -> None:
    assert with_bearing(NOMINAL, HEALTHY) == NOMINAL
    worn = with_bearing(NOMINAL, condition_at(10.0))
    assert worn.motor_current == pytest.approx(round(18.25 * 1.10, 2))
    assert worn.bearing_temp == pytest.approx(round(61.3 + 5.0 + 0.25 * (math.e - 1), 1))
    assert worn.velocity_rms == pytest.approx(1.1 + 0.1 * (math.e - 1))
    stopped = with_bearing(replace(NOMINAL, running=False, motor_current=0.0), condition_at(10.0))
    assert (stopped.velocity_rms, stopped.hf_accel_rms, stopped.envelope_bpfo) == (0, 0, 0)
    assert stopped.motor_current == 0.0
    # half-way between ambient (25) and running temperature (60): half the rise
    cooling = with_bearing(replace(NOMINAL, bearing_temp=42.5), condition_at(20.0))
    assert cooling.bearing_temp == pytest.approx(42.5 + condition_at(20.0).temp_rise / 2, abs=0.05)
    assert {"velocity_rms", "hf_accel_rms", "envelope_bpfo"} <= VALUE_NAMES


def test_vibration_registers_float32_abcd_mirrored_in_input() -> None:
    image = RegisterImage()
    write_reading(image, NOMINAL)
    # 1.1 = 0x3F8CCCCD, 0.05 = 0x3D4CCCCD, 0.005 = 0x3BA3D70A
    expected = [0x3F8C, 0xCCCD, 0x3D4C, 0xCCCD, 0x3BA3, 0xD70A]
    span = slice(VIBRATION_ADDRESS, VIBRATION_ADDRESS + 6)
    assert image.registers(Table.HOLDING)[span] == expected
    assert image.registers(Table.INPUT)[span] == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_simulated_time_and_fault_schedule() -> None:
    clock = FakeClock()
    sim = ModbusSimulator(deterministic=True, clock=clock, degrade_after_h=2.0, time_scale=3600)
    assert sim.simulated_hours == 0.0
    assert sim.fault_hours is None
    clock.now += 1.5  # 1.5 simulated hours
    assert sim.simulated_hours == pytest.approx(1.5)
    assert sim.fault_hours is None
    clock.now += 10.5
    assert sim.fault_hours == pytest.approx(10.0)
    assert sim.start_fault() == pytest.approx(12.0)  # starts over
    assert sim.fault_hours == 0.0
    clock.now += 13.0
    assert sim.fault_hours == pytest.approx(13.0)
    healthy = ModbusSimulator(deterministic=True, clock=clock)
    assert (healthy.time_scale, healthy.fault_start_h, healthy.fault_hours) == (1.0, None, None)
    assert healthy.reading == NOMINAL


def test_start_fault_updates_the_reading() -> None:
    clock = FakeClock()
    sim = ModbusSimulator(deterministic=True, clock=clock, time_scale=7200)
    sim.start_fault()
    assert sim.reading == NOMINAL
    clock.now += 5.0  # 10 simulated hours at 2 h/s
    sim.set_value("flow", 40.0)
    sim.clear_values()  # re-encodes at once, as every request does
    assert sim.reading.velocity_rms == pytest.approx(condition_at(10.0).velocity_rms)
    assert sim.reading.motor_current == pytest.approx(round(18.25 * 1.1, 2))
    assert sim.reading.flow == 51.5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"time_scale": 0},
        {"time_scale": math.inf},
        {"degrade_after_h": -1.0},
        {"degrade_after_h": math.nan},
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="finite"):
        ModbusSimulator(**kwargs)  # type: ignore[arg-type]


def test_command_line_options() -> None:
    args = _parser().parse_args(["modbus", "--degrade-after", "2.5", "--time-scale", "3600"])
    assert (args.degrade_after, args.time_scale) == (2.5, 3600.0)
    args = _parser().parse_args(["modbus"])
    assert (args.degrade_after, args.time_scale) == (None, 1.0)
    for bad in (["--time-scale", "0"], ["--degrade-after", "-1"], ["--time-scale", "x"]):
        with pytest.raises(SystemExit):
            _parser().parse_args(["modbus", *bad])
