"""Retained state messages: `{prefix}/meta/{device}` describes each device's points."""

from __future__ import annotations

import orjson

from .config.models import Config
from .readings import Message, now_ms


def meta_messages(cfg: Config) -> list[Message]:
    prefix = cfg.prefix()
    out = []
    for dev in cfg.devices:
        points = []
        for p in dev.points:
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
        indicators = [{"name": i.name, "kind": i.kind, "source": i.source}
                      for i in dev.indicators]
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
