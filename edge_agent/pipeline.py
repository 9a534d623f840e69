"""Readings -> messages -> buffer. The one place that knows the message contract (docs/mqtt.md)."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from .readings import Batch, Message, Quality, Reading


def reading_json(r: Reading) -> dict[str, object]:
    if r.quality is Quality.GOOD:
        return {"point": r.point, "ts": r.ts_ms, "v": r.value, "q": "good"}
    return {"point": r.point, "ts": r.ts_ms, "v": r.value, "q": r.quality.value, "err": r.error}


class Pipeline:
    """Numbers each device's messages (`seq`, +1 each, never reused) and hands them on."""

    def __init__(
        self,
        prefix: str,
        qos: int,
        sink: Callable[[Message], None],
        last_seqs: dict[str, int],
        seq_floor: int = 0,
    ) -> None:
        self.prefix = prefix
        self.qos = qos
        self.sink = sink
        self._seqs = dict(last_seqs)
        self._floor = seq_floor

    def emit(self, batch: Batch) -> None:
        seq = self._seqs.get(batch.device, self._floor) + 1
        self._seqs[batch.device] = seq
        payload = orjson.dumps(
            {
                "device": batch.device,
                "seq": seq,
                "ts": batch.ts_ms,
                "readings": [reading_json(r) for r in batch.readings],
            }
        )
        self.sink(
            Message(f"{self.prefix}/{batch.device}/telemetry", payload, self.qos, batch.device, seq)
        )
