"""Run the agent for real: as a subprocess on a config the test writes, beside a Modbus
simulator that lives in a thread of its own (so that blocking test code, such as waiting for
MQTT messages, never stalls the PLC)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from simulators.modbus_sim import ModbusSimulator

__all__ = [
    "AgentProcess",
    "SimThread",
    "agent_factory",
    "modbus_device",
    "modbus_sim",
    "sim_factory",
    "start_agent",
    "write_config",
]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


class SimThread:
    """A simulator (Modbus by default) served by an event loop in a background thread."""

    def __init__(self, factory: Callable[..., Any] = ModbusSimulator, **kwargs: Any) -> None:
        kwargs.setdefault("deterministic", True)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="sim")
        self._thread.start()
        self.sim: Any = self.call(lambda: factory(**kwargs))
        self.run(self.sim.start(), timeout=30)

    @property
    def port(self) -> int:
        return self.sim.port

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    def stop(self) -> None:
        self.run(self.sim.stop())

    def restart(self) -> None:
        self.run(self.sim.restart())

    def close(self) -> None:
        if self._loop.is_running():
            self.run(self.sim.stop())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop.close()


class AgentProcess:
    """`python -m edge_agent run CONFIG` with its log captured to a file."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        self._log = self.log_path.open("wb")
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", str(config)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=full_env,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = 15, count: int = 1) -> str:
        """Wait until `pattern` (a regex) occurs `count` times in the log."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            text = self.log()
            if len(re.findall(pattern, text)) >= count:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"agent exited ({self.proc.returncode}) before {pattern!r}:\n{text}"
                )
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} not in the agent's log after {timeout}s:\n{self.log()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def terminate(self, timeout: float = 10) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()


def modbus_device(
    port: int, points: list[dict[str, Any]], name: str = "pump-101", **kw: Any
) -> dict[str, Any]:
    """A Modbus TCP device on 127.0.0.1:`port` polled every 200 ms (timeout 200 ms); `kw`
    adds or overrides keys (indicators, poll_interval, ...)."""
    return {
        "name": name,
        "protocol": "modbus-tcp",
        "host": "127.0.0.1",
        "port": port,
        "poll_interval": "200ms",
        "timeout": "200ms",
        "points": points,
        **kw,
    }


def write_config(
    path: Path, broker_url: str, devices: list[dict[str, Any]], **sections: Any
) -> Path:
    """A config file for a test: gateway gw-test/site test, the buffer beside the file."""
    doc: dict[str, Any] = {
        "gateway": {"id": "gw-test", "site": "test"},
        "mqtt": {
            "url": broker_url,
            "keepalive": "5s",
            "reconnect_delay": "200ms",
            "reconnect_delay_max": "1s",
        },
        "buffer": {"path": str(path.parent / "buffer.db")},
        "devices": devices,
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., SimThread]]:
    made: list[SimThread] = []

    def make(**kwargs: Any) -> SimThread:
        made.append(SimThread(**kwargs))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def modbus_sim(sim_factory: Callable[..., SimThread]) -> SimThread:
    return sim_factory()


@pytest.fixture
def agent_factory() -> Iterator[Callable[..., AgentProcess]]:
    made: list[AgentProcess] = []

    def make(config: Path, env: dict[str, str] | None = None) -> AgentProcess:
        made.append(AgentProcess(config, env))
        return made[-1]

    yield make
    for a in made:
        a.close()


@pytest.fixture
def start_agent(
    agent_factory: Callable[..., AgentProcess], tmp_path: Path
) -> Callable[..., AgentProcess]:
    """`start_agent(broker_url, devices, **sections)`: write `tmp_path/a.yaml` with
    write_config and start the agent on it (env=... as for agent_factory)."""

    def start(
        broker_url: str,
        devices: list[dict[str, Any]],
        *,
        env: dict[str, str] | None = None,
        **sections: Any,
    ) -> AgentProcess:
        config = write_config(tmp_path / "a.yaml", broker_url, devices, **sections)
        return agent_factory(config, env)

    return start
