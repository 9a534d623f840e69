"""An OPC UA machine through the whole agent: subscribed and polled points, the waveform
as a JSON list, and vibration indicators computed on it, at a real subscriber."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import AgentProcess, SimThread, write_config
from tests.support.broker import Broker
from tests.support.subscriber import Subscriber
from tests.support.uaproxy import RenewalProxy

pytest.importorskip("asyncua")
from edge_agent.drivers.opcua.certs import make_client_certificate
from simulators.opcua_sim import OpcUaSimulator

PREFIX = "maintenance4/test/gw-test"


def motor(endpoint: str) -> dict[str, Any]:
    return {
        "name": "motor-7",
        "protocol": "opcua",
        "endpoint": endpoint,
        "poll_interval": "500ms",
        "timeout": "3s",
        "indicator_interval": "1s",
        "points": [
            {
                "name": "bearing_temp",
                "node": "ns=2;s=Motor7.BearingTemp",
                "mode": "subscribe",
                "sampling_interval": "100ms",
                "unit": "degC",
            },
            {"name": "speed_rpm", "node": "ns=2;s=Motor7.Speed", "mode": "poll"},
            {"name": "running", "node": "ns=2;s=Motor7.Running", "mode": "poll"},
            {"name": "broken", "node": "ns=2;s=Motor7.Broken", "mode": "poll"},
            {
                "name": "vibration_waveform",
                "node": "ns=2;s=Motor7.Vibration.Waveform",
                "mode": "poll",
            },
        ],
        "indicators": [
            {
                "name": "de_bearing",
                "kind": "vibration",
                "source": "vibration_waveform",
                "sample_rate": "10kHz",
                "units": "m/s2",
                "shaft_speed": "speed_rpm",
                "iso10816": {"group": 2, "foundation": "rigid"},
                "bearing": {"balls": 9, "ball_diameter": "0.3126in", "pitch_diameter": "1.537in"},
                "bands": [[10, 1000], [1000, 4000]],
            },
            {"name": "temp_alarm", "kind": "threshold", "source": "bearing_temp", "high": 85},
        ],
    }


def payloads(sub: Subscriber, topic: str) -> list[dict[str, Any]]:
    return [m.json() for m in sub.messages if m.topic == f"{PREFIX}/motor-7/{topic}"]


def test_opcua_machine_end_to_end(
    tmp_path: Path,
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    agent_factory: Callable[..., AgentProcess],
    subscriber_factory: Callable[..., Subscriber],
) -> None:
    sim = sim_factory(factory=OpcUaSimulator, deterministic=True, fault_severity=4.0)
    sub = subscriber_factory(broker.url, f"{PREFIX}/motor-7/+")
    health = subscriber_factory(broker.url, f"{PREFIX}/health")
    config = write_config(
        tmp_path / "a.yaml", broker.url, [motor(sim.sim.endpoint)], health_interval="1s"
    )
    agent = agent_factory(config)
    sub.wait_for(
        lambda _: any(
            r["point"] == "vibration_waveform" and r["q"] == "good"
            for m in payloads(sub, "telemetry")
            for r in m["readings"]
        ),
        timeout=20,
    )
    readings = {r["point"]: r for m in payloads(sub, "telemetry") for r in m["readings"]}
    assert readings["speed_rpm"]["v"] == 1485.0
    assert readings["running"]["v"] is True
    assert readings["broken"] == {
        **readings["broken"],
        "q": "bad",
        "v": None,
        "err": "BadSensorFailure",
    }
    assert len(readings["vibration_waveform"]["v"]) == 4096
    assert isinstance(readings["bearing_temp"]["v"], float)

    sub.wait_for(
        lambda _: any(
            i["name"] == "de_bearing" for m in payloads(sub, "indicators") for i in m["indicators"]
        ),
        timeout=20,
    )
    vib = next(
        i for m in payloads(sub, "indicators") for i in m["indicators"] if i["name"] == "de_bearing"
    )
    values = vib["values"]
    assert vib["q"] == "good", vib
    assert values["rms"] > 0
    assert values["velocity_rms_mm_s"] > 0
    assert values["iso10816_zone"] in ("A", "B", "C", "D")
    # The simulator's outer-race defect shows in the envelope at BPFO, not at BPFI.
    assert values["bpfo_amp"] > 2 * values["bpfi_amp"]

    ours = health.wait_for(
        lambda msgs: any("motor-7" in m.json()["devices"] for m in msgs if m.payload), timeout=10
    )
    counters = next(m.json() for m in ours if m.payload and "motor-7" in m.json()["devices"])
    counters = counters["devices"]["motor-7"]
    assert counters["available"] is True
    assert (counters["changes_dropped"], counters["changes_filtered"]) == (0, 0)
    assert agent.terminate() == 0


def test_server_restart_resumes_subscriptions_without_an_agent_restart(
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: Callable[..., Subscriber],
) -> None:
    sim = sim_factory(factory=OpcUaSimulator, deterministic=True)
    sub = subscriber_factory(broker.url, f"{PREFIX}/motor-7/telemetry")
    device = {
        "name": "motor-7",
        "protocol": "opcua",
        "endpoint": sim.sim.endpoint,
        "poll_interval": "200ms",
        "timeout": "1s",
        "keepalive": "1s",
        "reconnect_delay": "200ms",
        "reconnect_delay_max": "500ms",
        "points": [
            {
                "name": "bearing_temp",
                "node": "ns=2;s=Motor7.BearingTemp",
                "mode": "subscribe",
                "sampling_interval": "100ms",
            }
        ],
    }
    agent = start_agent(broker.url, [device])

    def qualities() -> list[str]:
        return [r["q"] for m in payloads(sub, "telemetry") for r in m["readings"]]

    sub.wait_for(lambda _: "good" in qualities(), timeout=20)
    sim.stop()
    sub.wait_for(lambda _: qualities()[-1] == "bad", timeout=10)  # noticed, reported as bad
    sub.clear()
    sim.restart()
    restarted = time.monotonic()
    # Values change on the server after the restart: the new subscription must deliver them.
    sim.call(lambda: sim.sim.set_value("BearingTemp", 70.5))
    sub.wait_for(
        lambda _: any(
            r["q"] == "good" and r["v"] == 70.5
            for m in payloads(sub, "telemetry")
            for r in m["readings"]
        ),
        timeout=20,
    )
    took = time.monotonic() - restarted
    assert took < 2 * 1.0 + 0.5 + 3.0  # 2 x keepalive + the longest backoff, and margin
    assert agent.proc.poll() is None
    log = agent.log()
    assert log.count("motor-7: unavailable") == 1
    assert "motor-7: available again after" in log
    assert agent.terminate() == 0


def test_a_failed_secure_channel_renewal_is_survived_without_an_agent_restart(
    tmp_path: Path,
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: Callable[..., Subscriber],
) -> None:
    """SignAndEncrypt with keys renewed every 1.5 s; the server answers the first renewal
    only after the timeout. The agent rebuilds the channel and readings flow again."""
    cert, key = make_client_certificate(
        tmp_path / "client", "urn:edge-agent:test-agent", socket.gethostname()
    )
    sim = sim_factory(
        factory=OpcUaSimulator, deterministic=True, security=True, cert_dir=tmp_path / "sim"
    )
    sim.call(lambda: sim.sim.trust(cert))
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(sim.sim.certificate_path, trusted)
    proxy = RenewalProxy(sim.port).start()
    proxy.slow_renewals = 1.0  # twice the timeout
    sub = subscriber_factory(broker.url, f"{PREFIX}/motor-7/telemetry")
    device = {
        "name": "motor-7",
        "protocol": "opcua",
        "endpoint": f"{proxy.url}/edge-agent/sim",
        "poll_interval": "200ms",
        "timeout": "500ms",
        "keepalive": "30s",  # only the renewal can be what the agent notices
        "channel_lifetime": "2s",
        "reconnect_delay": "200ms",
        "reconnect_delay_max": "500ms",
        "security": {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": str(cert),
            "private_key": str(key),
            "trusted_servers": str(trusted),
        },
        "points": [{"name": "bearing_temp", "node": "ns=2;s=Motor7.BearingTemp"}],
    }
    stop = threading.Event()

    def change() -> None:  # data changes keep requests with the newest keys flowing
        value = 60.0
        while not stop.wait(0.1):
            value = round(value + 0.1, 1)
            sim.call(lambda v=value: sim.sim.set_value("BearingTemp", v))

    changer = threading.Thread(target=change, daemon=True)
    changer.start()
    try:
        agent = start_agent(broker.url, [device])
        agent.wait_log(r"motor-7: unavailable.*secure channel renewal failed \(no answer\)")
        proxy.slow_renewals = 0
        sub.clear()
        agent.wait_log("motor-7: available again after")
        # fresh values through the new channel, after its own renewals went through
        renewed = proxy.renewals_passed + 2
        sub.wait_for(lambda _: proxy.renewals_passed >= renewed, timeout=10)
        sub.clear()
        sub.wait_for(
            lambda _: any(
                r["q"] == "good" for m in payloads(sub, "telemetry") for r in m["readings"]
            ),
            timeout=10,
        )
    finally:
        stop.set()
        changer.join(5)
        proxy.close()
    assert agent.proc.poll() is None
    log = agent.log()
    assert log.count("motor-7: unavailable") == 1, log
    assert proxy.answers_held == 1
    assert "Traceback" not in log
    assert agent.terminate() == 0
