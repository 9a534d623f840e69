"""The agent as a process: simulator -> agent -> real broker -> real subscriber.

Faults are done for real: the broker is stopped, the agent is killed, signals are sent.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.agent import AgentProcess, SimThread, modbus_device, write_config
from tests.support.broker import Broker
from tests.support.certs import make_server_cert
from tests.support.proxy import CuttableProxy
from tests.support.subscriber import Subscriber

PREFIX = "maintenance4/test/gw-test"
PUMP_POINTS: list[dict[str, Any]] = [
    {"name": "discharge_pressure", "address": 0, "type": "float32", "unit": "bar"},
    {"name": "motor_current", "address": 4, "scale": 0.01, "unit": "A"},
    {"name": "running", "address": 6, "type": "bool", "bit": 0},
    {"name": "tag", "address": 20, "type": "string", "length": 16},
    {"name": "overload_trip", "table": "discrete", "address": 1},
]

AgentFactory = Callable[..., AgentProcess]
SubscriberFactory = Callable[..., Subscriber]


def pump(
    port: int, name: str = "pump-101", points: list[dict[str, Any]] = PUMP_POINTS, **kw: Any
) -> dict[str, Any]:
    backoff = {"reconnect_delay": "200ms", "reconnect_delay_max": "500ms"}
    return modbus_device(port, points, name, **(backoff | kw))


def telemetry(sub: Subscriber, device: str = "pump-101") -> list[dict[str, Any]]:
    return [m.json() for m in sub.messages if m.topic == f"{PREFIX}/{device}/telemetry"]


def wait_telemetry(
    sub: Subscriber, n: int, device: str = "pump-101", timeout: float = 15
) -> list[dict[str, Any]]:
    sub.wait_for(
        lambda _: len(telemetry(sub, device)) >= n,
        timeout=timeout,
        description=f"{n} telemetry messages of {device}",
    )
    return telemetry(sub, device)


def status(sub: Subscriber) -> list[str]:
    return [m.json()["state"] for m in sub.messages if m.topic == f"{PREFIX}/status" and m.payload]


def seqs_in_order(messages: list[dict[str, Any]]) -> list[int]:
    """The distinct seqs, checking that they never go backwards except for re-sends."""
    seen: list[int] = []
    for m in messages:
        if m["seq"] not in seen:
            assert not seen or m["seq"] == seen[-1] + 1, f"gap or reorder after {seen[-1]}"
            seen.append(m["seq"])
    return seen


def test_readings_flow_end_to_end(
    broker: Broker,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/#")
    agent = start_agent(broker.url, [pump(modbus_sim.port)])
    msgs = wait_telemetry(sub, 3)
    assert [m["seq"] for m in msgs[:3]] == [1, 2, 3]
    first = msgs[0]
    assert first["device"] == "pump-101"
    assert isinstance(first["ts"], int)
    values = {r["point"]: r["v"] for r in first["readings"]}
    assert values == {
        "discharge_pressure": 3.42,
        "motor_current": 18.25,
        "running": True,
        "tag": "PUMP-101",
        "overload_trip": False,
    }
    assert {r["q"] for r in first["readings"]} == {"good"}
    assert all(abs(r["ts"] - first["ts"]) < 5000 for r in first["readings"])
    assert status(sub)[0] == "online"
    late = subscriber_factory(broker.url, f"{PREFIX}/meta/+")  # retained: a late-comer sees it
    late.wait_for(lambda msgs: any(m.retain for m in msgs))
    meta = late.messages[0]
    assert meta.topic == f"{PREFIX}/meta/pump-101"
    units = {p["name"]: p.get("unit") for p in meta.json()["points"]}
    assert units["discharge_pressure"] == "bar"
    # The platform sees changes: a new value in the PLC shows up in the next messages.
    modbus_sim.call(lambda: modbus_sim.sim.set_value("discharge_pressure", 4.5))
    sub.wait_for(
        lambda _: any(
            r["point"] == "discharge_pressure" and r["v"] == 4.5
            for m in telemetry(sub)
            for r in m["readings"]
        )
    )
    assert agent.terminate() == 0


def test_sigterm_flushes_says_offline_and_exits_0(
    broker: Broker,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/#")
    agent = start_agent(broker.url, [pump(modbus_sim.port)])
    wait_telemetry(sub, 3)
    started = time.monotonic()
    agent.signal(signal.SIGTERM)
    assert agent.proc.wait(timeout=5) == 0, agent.log()
    took = time.monotonic() - started
    sub.wait_for(lambda _: status(sub)[-1:] == ["offline"])
    # said by the agent as it stopped, not the last will the broker keeps from the connect
    states = [m.json() for m in sub.messages if m.topic == f"{PREFIX}/status"]
    assert states[-1]["ts"] > states[-2]["ts"], states
    log = agent.log()
    assert "stopped; 0 messages remain buffered" in log, log
    assert "MQTT:" not in log.split("stopping")[-1]  # no outage warning at a stop
    # Everything polled before the stop reached the broker, in order, without gaps.
    seen = seqs_in_order(telemetry(sub))
    assert seen == list(range(1, len(seen) + 1))
    assert took < 5


def test_seq_continues_after_a_restart(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    config = write_config(tmp_path / "a.yaml", broker.url, [pump(modbus_sim.port)])
    agent = agent_factory(config)
    wait_telemetry(sub, 3)
    assert agent.terminate() == 0
    last = max(m["seq"] for m in telemetry(sub))
    sub.clear()
    agent = agent_factory(config)
    msgs = wait_telemetry(sub, 2)
    assert msgs[0]["seq"] == last + 1
    assert agent.terminate() == 0


def test_kill_9_leaves_the_last_will(
    fresh_broker: Broker,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(fresh_broker.url, f"{PREFIX}/status")
    agent = start_agent(fresh_broker.url, [pump(modbus_sim.port)], mqtt={"keepalive": "1s"})
    sub.wait_for(lambda _: status(sub) == ["online"])
    agent.kill()
    sub.wait_for(lambda _: status(sub)[-1:] == ["offline"], timeout=10)


def test_sighup_reloads_and_a_bad_reload_keeps_the_running_config(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/#")
    config = tmp_path / "a.yaml"
    write_config(config, broker.url, [pump(modbus_sim.port), pump(modbus_sim.port, "pump-102")])
    agent = agent_factory(config)
    wait_telemetry(sub, 2)
    wait_telemetry(sub, 1, "pump-102")

    extra = {"name": "speed_rpm", "address": 11, "unit": "rpm"}
    write_config(config, broker.url, [pump(modbus_sim.port, points=[*PUMP_POINTS, extra])])
    agent.signal(signal.SIGHUP)
    agent.wait_log("reloaded: 1 devices")
    sub.wait_for(
        lambda _: any(
            r["point"] == "speed_rpm" and r["v"] == 2950
            for m in telemetry(sub)
            for r in m["readings"]
        )
    )
    sub.wait_for(
        lambda _: any(
            m.topic.endswith("meta/pump-101") and "speed_rpm" in m.text() for m in sub.messages
        )
    )
    # pump-102 left the config: its retained meta is gone, pump-101's describes the new point.
    late = subscriber_factory(broker.url, f"{PREFIX}/meta/+")
    late.wait_for(lambda msgs: any("speed_rpm" in m.text() for m in msgs))
    assert [m.topic for m in late.messages] == [f"{PREFIX}/meta/pump-101"]

    config.write_text(config.read_text().replace("type: float32", "type: float33"))
    agent.signal(signal.SIGHUP)
    log = agent.wait_log("reload refused: 1 problem")
    assert "a.yaml:" in log
    assert "'float33' is not one of" in log
    sub.clear()
    msgs = wait_telemetry(sub, 2)  # still polling, with the last good config
    assert "speed_rpm" in {r["point"] for r in msgs[-1]["readings"]}
    seqs_in_order(telemetry(sub))
    assert agent.terminate() == 0


def test_a_dead_device_does_not_stop_the_others(
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    healthy, flaky = sim_factory(), sim_factory()
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    agent = start_agent(broker.url, [pump(healthy.port, "pump-101"), pump(flaky.port, "pump-102")])
    wait_telemetry(sub, 2, "pump-102")
    flaky.stop()
    sub.wait_for(
        lambda _: any(
            r.get("err") == "unreachable" for m in telemetry(sub, "pump-102") for r in m["readings"]
        )
    )
    n = len(telemetry(sub, "pump-101"))
    wait_telemetry(sub, n + 10, "pump-101")
    assert all(r["q"] == "good" for m in telemetry(sub, "pump-101") for r in m["readings"])
    for m in telemetry(sub, "pump-102"):
        for r in m["readings"]:
            assert (r["q"] == "good") == (r["v"] is not None)  # never a stale value as good
    flaky.restart()
    sub.wait_for(lambda _: telemetry(sub, "pump-102")[-1]["readings"][0]["q"] == "good")
    log = agent.wait_log("pump-102: available again after")
    assert log.count("pump-102: unavailable") == 1  # logged once per outage, not per poll
    assert agent.terminate() == 0


def test_uplink_outage_loses_nothing(
    broker: Broker,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    """The link to the broker is cut for 2 s (the subscriber stays connected): every message
    polled meanwhile arrives once the link is back, in order."""
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        agent = start_agent(
            link.url, [pump(modbus_sim.port, poll_interval="100ms", timeout="100ms")]
        )
        wait_telemetry(sub, 3)
        link.cut()
        agent.wait_log("MQTT: disconnected")
        time.sleep(2)  # the outage: about 20 polls happen with no broker
        during = max(m["seq"] for m in telemetry(sub))
        link.restore()
        agent.wait_log("MQTT: connected again")
        sub.wait_for(lambda _: max(m["seq"] for m in telemetry(sub)) >= during + 25, timeout=20)
        assert agent.terminate() == 0
    seen = seqs_in_order(telemetry(sub))
    assert seen == list(range(1, seen[-1] + 1)), "a message was lost"


def test_a_silently_dead_link_is_noticed_by_keepalive(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml", link.url, [pump(modbus_sim.port)], mqtt={"keepalive": "2s"}
        )
        agent = agent_factory(config)
        wait_telemetry(sub, 2)
        frozen_at = time.time()
        link.freeze()  # no FIN, no RST: only the missing PINGRESP tells
        log = agent.wait_log("MQTT: disconnected", timeout=15)
        line = next(x for x in log.splitlines() if "MQTT: disconnected" in x)
        noticed = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        assert noticed - frozen_at <= 2 * 2 + 1  # the bound: 2 x keepalive + 1 s
        agent.wait_log("MQTT: connected again", timeout=10)
        last = max(m["seq"] for m in telemetry(sub))
        sub.wait_for(lambda _: max(m["seq"] for m in telemetry(sub)) >= last + 5)
        assert agent.terminate() == 0
    seen = seqs_in_order(telemetry(sub))
    assert seen == list(range(1, seen[-1] + 1)), "a message was lost"


def test_broker_restart_is_survived(
    fresh_broker: Broker,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(fresh_broker.url, f"{PREFIX}/#")
    agent = start_agent(fresh_broker.url, [pump(modbus_sim.port)])
    wait_telemetry(sub, 2)
    fresh_broker.stop()
    agent.wait_log("MQTT: disconnected")
    fresh_broker.restart()
    agent.wait_log("MQTT: connected again")
    sub.clear()
    wait_telemetry(sub, 3)
    # The restarted broker kept nothing: a retained "online" means the agent said it again.
    late = subscriber_factory(fresh_broker.url, f"{PREFIX}/status")
    late.wait_for(lambda _: status(late) == ["online"])
    assert agent.terminate() == 0


def test_mqtt_3_1_1_works_and_warns_that_refusals_are_invisible(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/#")
    config = write_config(
        tmp_path / "a.yaml", broker.url, [pump(modbus_sim.port)], mqtt={"protocol": "3.1.1"}
    )
    agent = agent_factory(config)
    wait_telemetry(sub, 3)
    assert "refusals (e.g. not authorized) cannot be detected" in agent.log()
    assert agent.terminate() == 0
    sub.wait_for(lambda _: status(sub)[-1:] == ["offline"])


def test_tls_with_a_test_ca(
    broker: Broker,
    pki: Any,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    agent = start_agent(
        broker.tls_url, [pump(modbus_sim.port)], mqtt={"tls": {"ca_file": str(pki.ca_file)}}
    )
    wait_telemetry(sub, 2)
    assert agent.terminate() == 0


def test_tls_refuses_a_broker_signed_by_another_ca(
    broker: Broker,
    pki: Any,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
) -> None:
    agent = start_agent(
        broker.tls_url, [pump(modbus_sim.port)], mqtt={"tls": {"ca_file": str(pki.wrong_ca_file)}}
    )
    log = agent.wait_log("certificate not trusted")
    assert "check that mqtt.tls.ca_file holds the CA" in log
    assert agent.proc.poll() is None  # keeps polling into the buffer, keeps retrying
    assert agent.terminate() == 0


def test_tls_checks_the_broker_host_name(
    broker_factory: Callable[..., Broker],
    pki: Any,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
) -> None:
    """A certificate from the right CA but for another host is refused: hostname checking is on."""
    cert, key = make_server_cert(pki, "other-broker.example")
    impostor = broker_factory(tls=dataclasses.replace(pki, server_cert=cert, server_key=key))
    agent = start_agent(
        impostor.tls_url, [pump(modbus_sim.port)], mqtt={"tls": {"ca_file": str(pki.ca_file)}}
    )
    log = agent.wait_log("certificate not trusted")
    assert "the host name the broker's certificate was issued for" in log
    assert agent.terminate() == 0


def test_mutual_tls_with_a_client_certificate(
    broker_factory: Callable[..., Broker],
    pki: Any,
    modbus_sim: SimThread,
    start_agent: Callable[..., AgentProcess],
    subscriber_factory: SubscriberFactory,
) -> None:
    mtls = broker_factory(tls=pki, require_certificate=True)
    sub = subscriber_factory(mtls.url, f"{PREFIX}/+/telemetry")
    agent = start_agent(
        mtls.tls_url,
        [pump(modbus_sim.port)],
        mqtt={
            "tls": {
                "ca_file": str(pki.ca_file),
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
            }
        },
    )
    wait_telemetry(sub, 2)
    assert agent.terminate() == 0


def test_username_and_password_file(
    tmp_path: Path,
    broker_factory: Callable[..., Broker],
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    secured = broker_factory(users={"edge": "s3cret-pass", "platform": "p"})
    sub = subscriber_factory(
        secured.url, f"{PREFIX}/+/telemetry", username="platform", password="p"
    )
    (tmp_path / "mqtt.pass").write_text("wrong-pass\n")
    config = write_config(
        tmp_path / "a.yaml",
        secured.url,
        [pump(modbus_sim.port)],
        mqtt={"username": "edge", "password_file": "mqtt.pass"},
    )
    agent = agent_factory(config)
    log = agent.wait_log("refused the connection")
    assert "check mqtt.username and the password" in log
    assert "wrong-pass" not in log
    assert agent.terminate() == 0
    (tmp_path / "mqtt.pass").write_text("s3cret-pass\n")
    agent = agent_factory(config)
    wait_telemetry(sub, 2)
    assert agent.terminate() == 0
    assert "s3cret-pass" not in agent.log()


def test_a_refused_publish_is_dead_lettered_not_retried_forever(
    tmp_path: Path,
    broker_factory: Callable[..., Broker],
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    sim_factory: Callable[..., SimThread],
    subscriber_factory: SubscriberFactory,
) -> None:
    acl = (
        f"user edge\ntopic write {PREFIX}/status\ntopic write {PREFIX}/meta/#\n"
        f"topic write {PREFIX}/pump-101/#\n"
        "user platform\ntopic read #\n"
    )
    secured = broker_factory(users={"edge": "pw", "platform": "p"}, acl=acl)
    sub = subscriber_factory(
        secured.url, f"{PREFIX}/+/telemetry", username="platform", password="p"
    )
    other = sim_factory()
    config = write_config(
        tmp_path / "a.yaml",
        secured.url,
        [pump(modbus_sim.port), pump(other.port, "pump-102")],
        mqtt={"username": "edge", "password": "${EDGE_TEST_PW}"},
    )
    agent = agent_factory(config, env={"EDGE_TEST_PW": "pw"})
    log = agent.wait_log("broker refused a publish to .*pump-102/telemetry")
    assert "Not authorized" in log
    wait_telemetry(sub, 5)  # pump-101 is not held up by pump-102's refusals
    assert agent.terminate() == 0
    log = agent.log()
    assert log.count("broker refused a publish") == 1  # once per topic
    assert not telemetry(sub, "pump-102")


def test_health_counters_are_published(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/health")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml", link.url, [pump(modbus_sim.port)], health_interval="1s"
        )
        agent = agent_factory(config)
        sub.wait_for(lambda msgs: len(msgs) >= 1)
        link.cut()
        agent.wait_log("MQTT: disconnected")
        time.sleep(1)  # a backlog builds up
        link.restore()
        sub.wait_for(lambda msgs: msgs[-1].json()["mqtt"]["replayed"] > 0, timeout=15)
        assert agent.terminate() == 0
    health = sub.messages[-1].json()
    device = health["devices"]["pump-101"]
    assert device["available"] is True
    assert device["polls"] > 5
    assert device["bad_readings"] == 0
    assert health["mqtt"]["connects"] >= 2
    assert health["buffer"]["dropped"] == 0
    assert health["buffer"]["in_memory"] is False
