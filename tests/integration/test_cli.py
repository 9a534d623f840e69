"""The command line as an integrator uses it: check, schema, read."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge_agent.cli import main
from edge_agent.config.models import Config
from simulators.opcua_sim import OpcUaSimulator
from tests.support.agent import SimThread, write_config

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge_agent", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_check_prints_a_summary_without_secrets(tmp_path: Path) -> None:
    (tmp_path / "mqtt.pass").write_text("very-secret-file-password\n")
    config = write_config(
        tmp_path / "c.yaml",
        "mqtts://broker.example:8883",
        [
            {
                "name": "pump-101",
                "protocol": "modbus-tcp",
                "host": "10.0.0.5",
                "points": [
                    {"name": "p", "address": 0, "type": "float32"},
                    {"name": "q", "address": 100},
                ],
                "indicators": [{"name": "p_high", "kind": "threshold", "source": "p", "high": 9}],
            }
        ],
        mqtt={"username": "edge", "password_file": "mqtt.pass"},
    )
    proc = run("check", str(config))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "very-secret-file-password" not in out + proc.stderr
    assert f"password from file {tmp_path / 'mqtt.pass'}" in out
    assert "pump-101  modbus-tcp 10.0.0.5:502 unit 1, every 1s, 2 points in 2 requests" in out
    prefix = "maintenance4/test/gw-test"
    assert f"\n  {prefix}/health  (retained, every 1m)\n" in out
    assert f"\n  {prefix}/pump-101/telemetry\n" in out
    assert f"\n  {prefix}/pump-101/indicators, {prefix}/pump-101/events" in out
    assert "TLS on" in out


def test_check_never_shows_an_environment_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_TEST_SECRET", "env-secret-123")
    config = write_config(
        tmp_path / "c.yaml",
        "mqtt://127.0.0.1:1883",
        [],
        mqtt={"username": "edge", "password": "${EDGE_TEST_SECRET}"},
    )
    assert main(["check", str(config)]) == 0
    out = capsys.readouterr().out
    assert "env-secret-123" not in out
    assert "password from the environment" in out


def test_schema_is_json_schema_of_the_models() -> None:
    proc = run("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    assert set(schema["properties"]) == set(Config.model_fields)
    point = schema["$defs"]["ModbusPoint"]
    assert point["additionalProperties"] is False
    assert "float32" in json.dumps(point["properties"]["type"])


def test_schema_file_in_docs_is_current() -> None:
    """docs/config.schema.json is what editors load: it must match the models."""
    proc = run("schema")
    assert (ROOT / "docs" / "config.schema.json").read_text() == proc.stdout, (
        "regenerate it: python -m edge_agent schema > docs/config.schema.json"
    )


def test_read_prints_decoded_values_and_raw_registers(
    tmp_path: Path, modbus_sim: SimThread
) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        "mqtt://127.0.0.1:1",
        [
            {
                "name": "pump-101",
                "protocol": "modbus-tcp",
                "host": "127.0.0.1",
                "port": modbus_sim.port,
                "points": [
                    {"name": "discharge_pressure", "address": 0, "type": "float32", "unit": "bar"},
                    {
                        "name": "bearing_temp",
                        "address": 5,
                        "type": "int16",
                        "scale": 0.1,
                        "unit": "degC",
                    },
                    {"name": "beyond", "address": 5000},
                ],
            }
        ],
    )
    proc = run("read", str(config), "pump-101")
    assert proc.returncode == 1  # one point is bad
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pump-101  (modbus-tcp 127.0.0.1:")
    assert lines[1].split() == ["POINT", "VALUE", "UNIT", "QUALITY", "RAW"]
    assert lines[2].split() == ["discharge_pressure", "3.42", "bar", "good", "405A", "E148"]
    assert lines[3].split() == ["bearing_temp", "61.3", "degC", "good", "0265"]
    assert lines[4].split() == ["beyond", "-", "bad", "(illegal_data_address)"]


def test_read_an_opcua_machine_shortens_arrays_and_survives_a_closed_pipe(
    tmp_path: Path, sim_factory: Callable[..., SimThread]
) -> None:
    sim = sim_factory(factory=OpcUaSimulator, deterministic=True)
    motor = {
        "name": "motor-7",
        "protocol": "opcua",
        "endpoint": sim.sim.endpoint,
        "points": [
            {"name": "speed_rpm", "node": "ns=2;s=Motor7.Speed", "mode": "poll"},
            {"name": "broken", "node": "ns=2;s=Motor7.Broken", "mode": "poll"},
            {"name": "waveform", "node": "ns=2;s=Motor7.Vibration.Waveform", "mode": "poll"},
        ],
    }
    config = write_config(tmp_path / "c.yaml", "mqtt://127.0.0.1:1", [motor])
    proc = run("read", str(config))
    assert proc.returncode == 1, proc.stderr  # one point is bad
    lines = proc.stdout.splitlines()
    assert lines[2].split() == ["speed_rpm", "1485", "good"]  # Good: no status in RAW
    assert lines[3].split() == ["broken", "-", "bad", "(BadSensorFailure)", "808C0000"]
    assert lines[4].split()[:2] == ["waveform", "[-1.8337628706425395,"]
    assert "(4096 values)" in lines[4]
    assert max(len(line) for line in lines) < 200
    assert proc.stderr == ""

    # `true` exits without reading: every write of `read` meets a closed pipe
    piped = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m edge_agent read {config} | true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 141  # as for a process killed by SIGPIPE
    assert piped.stderr == ""  # no BrokenPipeError traceback


def test_read_names_an_unknown_device_and_an_unreachable_one(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        "mqtt://127.0.0.1:1",
        [
            {
                "name": "pump-9",
                "protocol": "modbus-tcp",
                "host": "127.0.0.1",
                "port": 1,
                "timeout": "200ms",
                "points": [{"name": "a", "address": 0}],
            }
        ],
    )
    proc = run("read", str(config), "pump-1")
    assert proc.returncode == 2
    assert "no device named 'pump-1'; devices: pump-9" in proc.stderr
    proc = run("read", str(config))
    assert proc.returncode == 1
    assert "pump-9  127.0.0.1:1: unreachable: cannot connect to 127.0.0.1:1" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_run_with_a_bad_config_exits_78_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("gateway: {id: gw, site: s}\nmqtt: {url: mqtt://x}\nbogus: 1\n")
    proc = run("run", str(bad))
    assert proc.returncode == 78
    assert f"{bad}:3:1: bogus: unknown key 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_usage_errors_exit_2() -> None:
    proc = run("frobnicate")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_buffer_stats_and_export_for_a_gateway_that_never_reconnected(
    tmp_path: Path, modbus_sim: SimThread, agent_factory: Any
) -> None:
    config = write_config(
        tmp_path / "c.yaml",
        "mqtt://127.0.0.1:1",  # no broker: everything stays in the buffer
        [
            {
                "name": "pump-101",
                "protocol": "modbus-tcp",
                "host": "127.0.0.1",
                "port": modbus_sim.port,
                "poll_interval": "100ms",
                "timeout": "100ms",
                "points": [{"name": "discharge_pressure", "address": 0, "type": "float32"}],
            }
        ],
    )
    agent = agent_factory(config)
    agent.wait_log("MQTT: cannot connect")
    time.sleep(1)
    assert agent.terminate() == 0
    proc = run("buffer", "stats", str(config))
    assert proc.returncode == 0, proc.stderr
    row = next(line.split() for line in proc.stdout.splitlines() if line.startswith("pump-101"))
    waiting, last_seq = int(row[1]), int(row[2])
    assert waiting == last_seq >= 5  # nothing was sent, nothing lost
    proc = run("buffer", "export", str(config), "--since", "1h")
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["seq"] for x in lines] == list(range(1, last_seq + 1))
    assert lines[0]["payload"]["readings"][0] == {
        "point": "discharge_pressure",
        "ts": lines[0]["payload"]["readings"][0]["ts"],
        "v": 3.42,
        "q": "good",
    }
    assert f"exported {last_seq} messages" in proc.stderr
    proc = run("buffer", "export", str(config), "--since", "2999-01-01T00:00")
    assert proc.stdout == ""
    proc = run("buffer", "export", str(config), "--since", "yesterday")
    assert proc.returncode != 0
    assert "give a time such as" in proc.stderr


def test_buffer_stats_without_a_buffer_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", "mqtt://127.0.0.1:1", [])
    proc = run("buffer", "stats", str(config))
    assert proc.returncode == 1
    assert "no buffer file at" in proc.stderr
