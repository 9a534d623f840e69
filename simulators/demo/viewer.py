"""The demo's MQTT subscriber: paho-mqtt on its own thread, feeding every message to the board."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .board import Board
from .children import HOST, TICK, DemoError, StopRequested

TOPIC_FILTER = "maintenance4/demo/#"
SUBSCRIBE_TIMEOUT = 10.0


class Viewer:
    """A paho-mqtt 2 subscriber to `maintenance4/demo/#` feeding the board."""

    def __init__(self, board: Board, port: int, mqtt311: bool) -> None:
        self.board = board
        self.port = port
        self.subscribed = threading.Event()
        protocol = MQTTProtocolVersion.MQTTv311 if mqtt311 else MQTTProtocolVersion.MQTTv5
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"edge-agent-demo-{os.getpid()}",
            protocol=protocol,
        )
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, stopping: Callable[[], bool]) -> None:
        try:
            self.client.connect(HOST, self.port, keepalive=30)
        except OSError as err:
            message = f"could not connect to the broker on {HOST}:{self.port}: {err}"
            raise DemoError(message) from err
        self.client.loop_start()
        deadline = time.monotonic() + SUBSCRIBE_TIMEOUT
        while not self.subscribed.wait(TICK):
            if stopping():
                raise StopRequested
            if time.monotonic() > deadline:
                raise DemoError(f"no SUBACK from the broker within {SUBSCRIBE_TIMEOUT:g} s")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not reason.is_failure:  # also after a reconnect: sessions are clean
            client.subscribe(TOPIC_FILTER, qos=1)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if reasons and not reasons[0].is_failure:
            self.subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.board.handle(msg.topic, msg.payload)
