"""Readings -> messages -> buffer. The one place that knows the message contract
(docs/mqtt.md): telemetry, indicators and events, each numbered per device and topic."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from .readings import Batch, Message, Quality, Reading

if TYPE_CHECKING:
    from .indicators.engine import DeviceIndicators


def reading_json(r: Reading) -> dict[str, object]:
    if r.quality is Quality.GOOD:
        return {"point": r.point, "ts": r.ts_ms, "v": r.value, "q": "good"}
    return {"point": r.point, "ts": r.ts_ms, "v": r.value, "q": r.quality.value, "err": r.error}


def stream_key(device: str, topic: str) -> str:
    """The key `seq` is counted under: telemetry keeps the device's name (the contract's
    'seq per device'); indicators and events count on their own so telemetry has no gaps."""
    return device if topic == "telemetry" else f"{device}/{topic}"


class Pipeline:
    """Numbers each device's messages (`seq`, +1 each, never reused) and hands them on."""

    def __init__(
        self,
        prefix: str,
        qos: int,
        sink: Callable[[Message], None],
        last_seqs: Mapping[str, int],
        seq_floor: int = 0,
        indicators: Mapping[str, DeviceIndicators] | None = None,
    ) -> None:
        self.prefix = prefix
        self.qos = qos
        self.sink = sink
        self.indicators = dict(indicators or {})
        self._seqs = dict(last_seqs)
        self._floor = seq_floor

    def emit(self, batch: Batch) -> None:
        self._send(
            batch.device,
            "telemetry",
            batch.ts_ms,
            {"readings": [reading_json(r) for r in batch.readings]},
        )
        engine = self.indicators.get(batch.device)
        if engine is None:
            return
        due, events = engine.feed(batch)
        if events:
            self._send(batch.device, "events", batch.ts_ms, {"events": events})
        if due:
            self._send(batch.device, "indicators", batch.ts_ms, {"indicators": due})

    def _send(self, device: str, topic: str, ts_ms: int, body: dict[str, Any]) -> None:
        key = stream_key(device, topic)
        seq = self._seqs.get(key, self._floor) + 1
        self._seqs[key] = seq
        payload = orjson.dumps(
            {"device": device, "seq": seq, "ts": ts_ms, **body}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        self.sink(Message(f"{self.prefix}/{device}/{topic}", payload, self.qos, key, seq))

    def states(self) -> dict[str, bytes]:
        """The indicators' states, for the buffer to keep across restarts."""
        out: dict[str, bytes] = {}
        for engine in self.indicators.values():
            out.update(engine.states())
        return out
