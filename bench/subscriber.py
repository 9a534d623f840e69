"""The benchmarks' end of the pipeline: a paho subscriber on the agent's telemetry."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, NamedTuple, Self


class Telemetry(NamedTuple):
    """The fields of one telemetry message the benchmarks check."""

    device: str
    seq: int
    ts: int  # poll start, epoch ms
    readings: list[dict[str, Any]]
    count: int  # len(readings)


class Subscriber:
    """A paho subscriber (QoS 1, MQTT 5, its own network thread) that parses every message
    (orjson, as the agent itself uses) and hands it to `received`, in paho's thread; one
    that does not parse is kept in `errors`. `lock` is for subclasses that keep what they
    count in more than one structure.
    """

    def __init__(self, port: int, topic: str, client_id: str) -> None:
        import orjson
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self._loads = orjson.loads
        self.port = port
        self.topic = topic
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{client_id}-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> Self:
        self._client.connect("127.0.0.1", self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscriber: no SUBACK within 10 s")
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def received(self, now: float, wall: float, msg: Telemetry) -> None:
        """One message arrived at monotonic `now`, wall clock `wall` (seconds)."""
        raise NotImplementedError

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now, wall = time.monotonic(), time.time()
        try:
            data = self._loads(msg.payload)
            readings = data["readings"]
            fields = Telemetry(data["device"], data["seq"], data["ts"], readings, len(readings))
        except (ValueError, KeyError, TypeError) as err:
            self.errors.append(f"{msg.topic}: {err!r}")
            return
        self.received(now, wall, fields)
