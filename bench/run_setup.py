"""bench.run's scenarios: what is polled, how often, and the targets the figures are judged by."""

from __future__ import annotations

from pathlib import Path

from bench.agent import modbus_device, write_config

POINTS = 200  # float32 points per device: the simulator's whole bench bank
INTERVAL = 0.1  # poll interval, seconds
TARGET_US = 6.0  # agent CPU per reading, at most
WARMUP = 3.0  # seconds after every device delivered, before the window opens
DEVICES_PER_SIM = 5  # one simulator process serves this many devices (one connection each)
IDLE_POINTS = 10
IDLE_INTERVAL = 1.0
IDLE_SECONDS = 10.0


def agent_config(
    path: Path,
    *,
    gateway: str,
    broker_port: int,
    buffer: Path,
    devices: list[tuple[str, int]],
    points: int,
    interval: float,
    timeout: float,
) -> None:
    """Devices of `points` float32 each, all on the given simulator ports; buffer defaults."""
    write_config(
        path,
        gateway=gateway,
        mqtt={"url": f"mqtt://127.0.0.1:{broker_port}"},
        buffer={"path": str(buffer)},
        devices=[modbus_device(name, port, points, interval, timeout) for name, port in devices],
    )


def buffer_defaults() -> str:
    """The buffer settings the bench leaves at their defaults, as the config model has them."""
    try:
        from edge_agent.config.models import Buffer

        b = Buffer()
        return (
            f"`sync: {b.sync}`, `flush_interval: {round(b.flush_interval * 1000)}ms`, "
            f"`flush_messages: {b.flush_messages}`"
        )
    except Exception as err:  # a model being edited must not cost the report
        return f"defaults unknown: {err!r}"
