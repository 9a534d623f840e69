"""Retained state messages: `{prefix}/meta/{device}` describes each device's points."""

from __future__ import annotations

import orjson

from .config.models import Config
from .config.opcua import OpcUaDevice
from .readings import Message, now_ms


def meta_messages(cfg: Config) -> list[Message]:
    prefix = cfg.prefix()
    out = []
    for dev in cfg.devices:
        points: list[dict[str, object]] = []
        if isinstance(dev, OpcUaDevice):
            for q in dev.points:
                entry: dict[str, object] = {"name": q.name, "mode": q.mode}
                for key in ("node", "browse_path", "unit", "description"):
                    if getattr(q, key) is not None:
                        entry[key] = getattr(q, key)
                points.append(entry)
        for p in getattr(dev, "points", []) if not isinstance(dev, OpcUaDevice) else []:
            item: dict[str, object] = {
                "name": p.name,
                "type": p.dtype,
                "table": p.table,
                "address": p.address,
            }
            for key in ("bit", "length", "unit", "description"):
                if getattr(p, key) is not None:
                    item[key] = getattr(p, key)
            if p.scale != 1 or p.offset != 0:
                item.update(scale=p.scale, offset=p.offset)
            points.append(item)
        indicators = [{"name": i.name, "kind": i.kind, "source": i.source} for i in dev.indicators]
        payload = orjson.dumps(
            {
                "device": dev.name,
                "protocol": dev.protocol,
                "ts": now_ms(),
                "poll_interval_ms": round(dev.poll_interval * 1000),
                "description": dev.description,
                "points": points,
                "indicators": indicators,
            }
        )
        out.append(Message(f"{prefix}/meta/{dev.name}", payload, 1, dev.name, retain=True))
    return out
