"""What the viewer received: the agent's MQTT messages folded into per-device state (no I/O)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PointState:
    """The last reading of one point, plus what the meta message says about it."""

    unit: str = ""
    seen: bool = False
    value: Any = None
    quality: str = ""
    err: str | None = None
    ts_ms: int | None = None


@dataclass
class DeviceState:
    name: str
    description: str | None = None
    poll_ms: int | None = None
    points: dict[str, PointState] = field(default_factory=dict)
    seq: int | None = None
    seq_gaps: int = 0  # messages whose seq was not the previous one + 1
    indicators: list[dict[str, Any]] = field(default_factory=list)  # the latest message's
    last_event: dict[str, Any] | None = None

    def point(self, name: str) -> PointState:
        return self.points.setdefault(name, PointState())


class Board:
    """Everything the viewer received, updated from paho's thread, read by the renderer."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.devices: dict[str, DeviceState] = {}
        self.agent_state = "starting"
        self.gateway: str | None = None
        self.messages = 0
        self.malformed = 0
        self.last_malformed: str | None = None

    def device(self, name: str) -> DeviceState:
        return self.devices.setdefault(name, DeviceState(name))

    def handle(self, topic: str, payload: bytes | bytearray) -> None:
        with self.lock:
            self.messages += 1
            try:
                doc = json.loads(payload)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                self._apply(topic.split("/"), doc)
            except (ValueError, TypeError, KeyError, AttributeError) as err:
                self.malformed += 1
                self.last_malformed = f"{topic}: {err}"

    def _apply(self, parts: list[str], doc: dict[str, Any]) -> None:
        # maintenance4/demo/<gateway>/status | .../meta/<device> | .../<device>/telemetry
        if len(parts) == 4 and parts[3] == "status":
            self.gateway = parts[2]
            self.agent_state = str(doc["state"])
        elif len(parts) == 5 and parts[3] == "meta":
            self._apply_meta(self.device(parts[4]), doc)
        elif len(parts) == 5 and parts[4] == "telemetry":
            self._apply_telemetry(self.device(str(doc.get("device", parts[3]))), doc)
        elif len(parts) == 5 and parts[4] == "indicators":
            items = doc["indicators"]
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise ValueError("indicators is not a list of objects")
            self.device(str(doc.get("device", parts[3]))).indicators = items
        elif len(parts) == 5 and parts[4] == "events":
            events = doc["events"]
            if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
                raise ValueError("events is not a list of objects")
            if events:
                self.device(str(doc.get("device", parts[3]))).last_event = events[-1]

    @staticmethod
    def _apply_meta(dev: DeviceState, doc: dict[str, Any]) -> None:
        dev.description = doc.get("description")
        dev.poll_ms = doc.get("poll_interval_ms")
        ordered: dict[str, PointState] = {}
        for item in doc["points"]:
            state = dev.points.get(item["name"], PointState())
            state.unit = str(item.get("unit") or "")
            ordered[item["name"]] = state
        # The config's order, then anything the telemetry has that the meta does not.
        dev.points = ordered | {k: v for k, v in dev.points.items() if k not in ordered}

    @staticmethod
    def _apply_telemetry(dev: DeviceState, doc: dict[str, Any]) -> None:
        seq = doc.get("seq")
        if isinstance(seq, int):
            if dev.seq is not None and seq != dev.seq + 1:
                dev.seq_gaps += 1
            dev.seq = seq
        for reading in doc["readings"]:
            point = dev.point(str(reading["point"]))
            point.seen = True
            point.value = reading.get("v")
            point.quality = str(reading.get("q", "?"))
            point.err = reading.get("err")
            point.ts_ms = reading.get("ts")
