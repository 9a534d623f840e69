"""bench.buffer's scenarios: the one device, the backlog, the targets, and the agent's config."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench import common
from bench.agent import modbus_device, write_config

SITE = "bench"
DEVICE = "d0"
POINTS = 100  # float32 points of the one device (the first half of the bench bank)
INTERVAL = 0.1  # poll interval, seconds
RATE = POINTS / INTERVAL  # readings per second: 1,000
BACKLOG_SECONDS = 600.0  # the outage the drain scenario replays: 10 minutes
BACKLOG_MESSAGES = round(BACKLOG_SECONDS / INTERVAL)  # 6,000 messages, 600,000 readings
WARMUP = 5.0  # seconds after the agent is up (and, link up, has delivered) before a window
WAL_AUTOCHECKPOINT = 1000  # SQLite's default: a checkpoint when the WAL holds this many pages
WAL_WAIT = 180.0  # seconds at most for the WAL to reach its full size
RSS_EVERY = 0.5  # seconds between RSS samples during the drain
SYNCS = ("full", "normal")
TARGET_SPEEDUP = 20.0  # drain at least this many times faster than real time
TARGET_RSS_MIB = 20.0  # RSS flat within this during the drain
TARGET_BYTES = 150.0  # bytes written per reading at 1,000 readings/s with sync: full, at most
DEPTH_CAP = 2000  # throughput with a consumer: the producer keeps the backlog under this
THROUGHPUT_MAX_SIZE = 2**32  # throughput: a cap the commit-only run cannot reach
MODES = ("commit", "local", "mqtt")
SCENARIOS = ("writes", "throughput", "drain")
EXPECTED_WHEN_CUT = (
    "WARNING edge_agent.publisher: MQTT: cannot connect",
    "WARNING edge_agent: stopping before the broker took everything",
)


def say(text: str) -> None:
    """Progress, with the time of day: a full run takes a quarter of an hour."""
    common.say(f"[{time.strftime('%H:%M:%S')}] {text}")


def agent_config(
    path: Path,
    *,
    gateway: str,
    url: str,
    buffer: Path,
    sync: str,
    sim_port: int,
    fast_reconnect: bool,
) -> None:
    """A config with the one device: POINTS float32 every 100 ms; buffer defaults but path
    and sync. `fast_reconnect`: the drain must not wait for a long backoff after the
    restore (the default caps it at 60 s)."""
    mqtt: dict[str, Any] = {"url": url}
    if fast_reconnect:
        mqtt |= {"reconnect_delay": "100ms", "reconnect_delay_max": "500ms"}
    write_config(
        path,
        gateway=gateway,
        mqtt=mqtt,
        buffer={"path": str(buffer), "sync": sync},
        devices=[modbus_device(DEVICE, sim_port, POINTS, INTERVAL, INTERVAL)],
    )


def buffer_defaults() -> tuple[float, int]:
    """flush_interval and flush_messages as the agent's config defaults them."""
    from edge_agent.config.models import Buffer

    defaults = Buffer()  # type: ignore[call-arg]
    return float(defaults.flush_interval), int(defaults.flush_messages)
