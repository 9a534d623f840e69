"""`edge-agent read`: poll each device once and print a table, for commissioning a device."""

from __future__ import annotations

import asyncio
import logging
import time

from .config.models import Config
from .config.opcua import OpcUaDevice
from .drivers.base import DeviceUnavailable
from .drivers.registry import make_driver
from .readings import Quality, Reading

_WIDTH = 60


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    if len(text) > _WIDTH:  # a waveform: its start and its length, not 85 KB on one line
        text = text[: _WIDTH - 1] + "…"
        if isinstance(value, list):
            text += f" ({len(value)} values)"
    return text


def render(device: str, header: str, readings: list[Reading], units: dict[str, str]) -> str:
    rows = [("POINT", "VALUE", "UNIT", "QUALITY", "RAW")]
    for r in readings:
        q = r.quality.value if r.quality is Quality.GOOD else f"{r.quality.value} ({r.error})"
        raw = (
            " ".join(f"{x:04X}" if x > 1 or len(r.raw or ()) > 1 else str(x) for x in r.raw)
            if r.raw
            else ""
        )
        rows.append((r.point, _fmt(r.value), units.get(r.point, ""), q, raw))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"{device}  {header}"]
    for row in rows:
        cells = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True))
        lines.append(f"  {cells}  {row[4]}".rstrip())
    return "\n".join(lines)


async def read_devices(cfg: Config, only: str | None) -> int:
    # the drivers translate what the libraries log into the one line printed per device
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    worst = 0
    for dev in cfg.devices:
        if only and dev.name != only:
            continue
        driver = make_driver(dev, keep_raw=True)
        units = {p.name: p.unit or "" for p in dev.points}
        started = time.monotonic()
        where = dev.endpoint if isinstance(dev, OpcUaDevice) else f"{dev.host}:{dev.port}"
        try:
            await driver.connect()
            if isinstance(dev, OpcUaDevice):
                # Subscribed points report their first value shortly after the subscription.
                await asyncio.sleep(min(2.0, max(0.5, dev.poll_interval)))
            readings = await driver.poll()
        except DeviceUnavailable as err:
            print(f"{dev.name}  {where}: {err.code}: {err}\n")
            worst = 1
            continue
        finally:
            await driver.close()
        took = (time.monotonic() - started) * 1000
        order = {p.name: i for i, p in enumerate(dev.points)}
        readings.sort(key=lambda r: order.get(r.point, 0))
        print(render(dev.name, f"({driver.describe()}; {took:.0f} ms)", readings, units) + "\n")
        if any(r.quality is not Quality.GOOD for r in readings):
            worst = 1
    return worst
