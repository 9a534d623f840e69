"""Indicators end to end on a Modbus device: a threshold alarm raised and cleared, running
hours that survive a restart, statistics published on their own topic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.agent import AgentProcess, SimThread, modbus_device, write_config
from tests.support.broker import Broker
from tests.support.subscriber import Subscriber

PREFIX = "maintenance4/test/gw-test"


def config(tmp_path: Path, broker: Broker, port: int) -> Path:
    return write_config(
        tmp_path / "a.yaml",
        broker.url,
        [
            modbus_device(
                port,
                [
                    {"name": "bearing_temp", "address": 5, "type": "int16", "scale": 0.1},
                    {"name": "running", "address": 6, "type": "bool", "bit": 0},
                    {"name": "motor_current", "address": 4, "scale": 0.01},
                ],
                indicator_interval="1s",
                indicators=[
                    {
                        "name": "temp_alarm",
                        "kind": "threshold",
                        "source": "bearing_temp",
                        "high": 85,
                        "hysteresis": 5,
                        "on_delay": "1s",
                    },
                    {"name": "pump_hours", "kind": "running_hours", "source": "running"},
                    {
                        "name": "current_stats",
                        "kind": "stats",
                        "source": "motor_current",
                        "window": "10s",
                    },
                    {
                        "name": "temp_trend",
                        "kind": "trend",
                        "source": "bearing_temp",
                        "window": "1h",
                        "limit": 95,
                    },
                ],
            )
        ],
    )


def payloads(sub: Subscriber, topic: str) -> list[dict[str, Any]]:
    return [m.json() for m in sub.messages if m.topic == f"{PREFIX}/pump-101/{topic}"]


def latest(sub: Subscriber, name: str) -> dict[str, Any] | None:
    for msg in reversed(payloads(sub, "indicators")):
        for ind in msg["indicators"]:
            if ind["name"] == name:
                return ind
    return None


def test_threshold_events_running_hours_and_stats(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: Callable[..., AgentProcess],
    subscriber_factory: Callable[..., Subscriber],
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/pump-101/+")
    cfg = config(tmp_path, broker, modbus_sim.port)
    agent = agent_factory(cfg)
    sub.wait_for(
        lambda _: (latest(sub, "pump_hours") or {}).get("values", {}).get("running_s", 0) > 1
    )
    stats = latest(sub, "current_stats")
    assert stats is not None
    assert stats["values"]["mean"] == 18.25
    assert stats["q"] in ("good", "uncertain")
    alarm = latest(sub, "temp_alarm")
    assert alarm is not None
    assert alarm["values"]["active"] is False

    modbus_sim.call(lambda: modbus_sim.sim.set_value("bearing_temp", 90.0))
    sub.wait_for(
        lambda _: any(
            e["event"] == "alarm_raised" for m in payloads(sub, "events") for e in m["events"]
        )
    )
    raised = next(
        e for m in payloads(sub, "events") for e in m["events"] if e["event"] == "alarm_raised"
    )
    assert raised["indicator"] == "temp_alarm"
    assert raised["value"] == 90.0
    assert raised["limit"] == 85
    modbus_sim.call(lambda: modbus_sim.sim.set_value("bearing_temp", 61.3))
    sub.wait_for(
        lambda _: any(
            e["event"] == "alarm_cleared" for m in payloads(sub, "events") for e in m["events"]
        )
    )
    # The telemetry stream is numbered on its own: no gaps from the other topics.
    seqs = [m["seq"] for m in payloads(sub, "telemetry")]
    assert seqs == list(range(1, len(seqs) + 1))
    assert agent.terminate() == 0
    before = latest(sub, "pump_hours")
    assert before is not None

    sub.clear()
    agent = agent_factory(cfg)  # the counters survive a restart
    sub.wait_for(lambda _: latest(sub, "pump_hours") is not None)
    after = latest(sub, "pump_hours")
    assert after is not None
    assert after["values"]["running_s"] >= before["values"]["running_s"]
    assert agent.terminate() == 0
