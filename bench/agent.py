"""The agent as the benchmarks run it: the config they write, and the log it writes back."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any

from bench.common import wait_for

BANK = 1000  # first holding register of the simulator's bench bank (value i at BANK + 2 * i)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def modbus_device(
    name: str, port: int, points: int, interval: float, timeout: float
) -> dict[str, Any]:
    """A device of `points` float32 from the simulator's bench bank, as a config entry."""
    return {
        "name": name,
        "protocol": "modbus-tcp",
        "host": "127.0.0.1",
        "port": port,
        "unit_id": 1,
        "poll_interval": f"{round(interval * 1000)}ms",
        "timeout": f"{round(timeout * 1000)}ms",
        "points": [
            {"name": f"v{i:03d}", "address": BANK + 2 * i, "type": "float32"} for i in range(points)
        ],
    }


def write_config(
    path: Path,
    *,
    gateway: str,
    mqtt: dict[str, Any],
    buffer: dict[str, Any],
    devices: list[dict[str, Any]],
) -> None:
    """The agent's YAML config: site "bench", log level info (the logs are scanned)."""
    import yaml  # type: ignore[import-untyped]

    cfg = {
        "gateway": {"id": gateway, "site": "bench"},
        "mqtt": mqtt,
        "buffer": buffer,
        "log_level": "info",
        "devices": devices,
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def log_record(line: str) -> tuple[str, str | None]:
    """(level, message) of a line of the agent's log, `date time LEVEL logger: message`:
    level "" for a line that starts no record (a traceback's, say), message None when the
    record has none."""
    parts = line.split(" ", 3)
    level = parts[2] if len(parts) > 2 else ""
    if level not in LEVELS:
        return "", None
    return level, parts[3] if len(parts) > 3 else None


def wait_log(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the agent has logged `text` (False if it exits first or times out)."""

    def logged() -> bool:
        with contextlib.suppress(FileNotFoundError):
            return text in path.read_text(errors="replace")
        return False

    return wait_for(logged, timeout, proc=proc)
