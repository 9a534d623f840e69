"""MQTT publisher: sends what the buffer holds, deletes a message only on a successful PUBACK.

paho-mqtt 2 runs on our event loop (its socket is watched with add_reader/add_writer and its
housekeeping called once a second), so there is no network thread. Each connection uses a
fresh paho client; after a disconnect everything not acknowledged is re-read from the
buffer, oldest first, so per-device order holds and at most `inflight` messages are sent
twice. Reconnection is ours: capped exponential backoff with jitter. The paho plumbing (client,
handshake, socket on the loop) is mqtt_io.py; its ConnectFailed and ConnectRefused are all
caught in run(): none escapes to the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from .backoff import Backoff
from .buffer import SqliteBuffer, StoredMessage
from .config.models import Mqtt
from .mqtt_io import ConnectFailed, LoopBinding, handshake, make_client
from .readings import Message, now_ms

log = logging.getLogger(__name__)

DEAD_LETTER_RETRY_SECONDS = 60


def status_payload(state: str, version: str) -> bytes:
    return orjson.dumps({"state": state, "ts": now_ms(), "version": version})


class MqttPublisher:
    def __init__(
        self,
        cfg: Mqtt,
        client_id: str,
        prefix: str,
        buffer: SqliteBuffer,
        *,
        version: str,
        state_messages: Callable[[], list[Message]] = list,
        replay_rate: float | None = None,
    ) -> None:
        self.cfg = cfg
        self.min_gap = 1 / replay_rate if replay_rate else 0.0
        self.client_id = client_id
        self.prefix = prefix
        self.buffer = buffer
        self.version = version
        self.state_messages = state_messages
        self.status_topic = f"{prefix}/status"
        self.connected = False
        self.published = 0
        self.replayed = 0  # published from a backlog that built up while disconnected
        self.refused = 0
        self.connects = 0
        self._backlog_upto = 0
        self._client: paho.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io: LoopBinding | None = None
        self._wake = asyncio.Event()
        self._lost: asyncio.Future[str] | None = None
        self._connack: asyncio.Future[ReasonCode] | None = None
        self._inflight: dict[int, StoredMessage] = {}
        self._waiters: dict[int, asyncio.Future[ReasonCode]] = {}
        self._refused_topics: set[str] = set()
        self._cursor = 0
        self._next_send = 0.0
        self._down_since: float | None = None
        self._closing = False
        buffer.on_commit(self._wake.set)

    # ---- lifecycle -------------------------------------------------------------------
    async def run(self) -> None:
        """Connect, publish, reconnect: until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._io = LoopBinding(self._loop, lambda: self._client)
        if self.cfg.protocol == "3.1.1":
            log.warning(
                "MQTT 3.1.1: the broker acknowledges refused publishes as success, so "
                "refusals (e.g. not authorized) cannot be detected; use protocol: 5"
            )
        backoff = Backoff(self.cfg.reconnect_delay, self.cfg.reconnect_delay_max)
        while True:
            try:
                await self._connect()
            except ConnectFailed as err:
                if self._closing:
                    return
                self._mark_down(str(err))
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            try:
                reason = await self._session()
            finally:
                self._teardown()
            if self._closing:
                return  # close() said offline and disconnected: not an outage
            self._mark_down(reason)
            await asyncio.sleep(backoff.next())

    async def drain(self, timeout: float) -> bool:
        """Wait until the buffer has nothing left to send (True) or `timeout` passes."""
        end = time.monotonic() + timeout
        await self.buffer.flush()
        if not self.connected:
            return False  # no broker to hand anything to: it stays buffered for next time
        while time.monotonic() < end:
            idle = self.connected and not self._inflight
            if idle and not await self.buffer.fetch(self._cursor, 1):
                return True
            await asyncio.sleep(0.02)
        return False

    async def close(self, timeout: float = 1.0) -> None:
        """Say offline (retained) and disconnect cleanly: the last will is not sent then.
        Call it while run() still runs (its session owns the connection), then cancel run()."""
        self._closing = True
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(TimeoutError, ConnectFailed):
                await asyncio.wait_for(
                    self._publish_state(
                        Message(
                            self.status_topic,
                            status_payload("offline", self.version),
                            1,
                            retain=True,
                        )
                    ),
                    timeout,
                )
            client.disconnect()
            self._flush(client)
        self._teardown()

    async def publish_snapshot(self, m: Message) -> None:
        """A state message (health), sent if connected; never buffered."""
        if self.connected:
            with contextlib.suppress(ConnectFailed):
                await self._publish_state(m)

    async def republish_state(self, extra: list[Message] | None = None) -> None:
        """After a reload: the retained meta messages describe the new configuration; `extra`
        (empty retained payloads) clears those of removed devices."""
        if self.connected:
            with contextlib.suppress(ConnectFailed):
                for m in [*(extra or []), *self.state_messages()]:
                    await self._publish_state(m)

    # ---- connection --------------------------------------------------------------------
    async def _connect(self) -> None:
        assert self._loop is not None
        assert self._io is not None
        client = make_client(
            self.cfg, self.client_id, (self.status_topic, status_payload("offline", self.version))
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._io.attach(client)
        self._client = client
        self._lost = self._loop.create_future()
        self._connack = self._loop.create_future()
        try:
            await handshake(self._loop, client, self.cfg, self._connack, self._io.flush)
        except BaseException:
            self._teardown()
            raise

    async def _session(self) -> str:
        """Publish while connected; returns why the connection ended."""
        assert self._lost is not None
        self.connected = True
        self.connects += 1
        self._backlog_upto = self.buffer.stats.last_id if self.connects > 1 else 0
        if self._down_since is not None:
            log.info(
                "MQTT: connected again to %s:%d after %.1f s",
                self.cfg.host,
                self.cfg.port,
                time.monotonic() - self._down_since,
            )
            self._down_since = None
        else:
            log.info("MQTT: connected to %s:%d as %s", self.cfg.host, self.cfg.port, self.client_id)
        housekeeping = asyncio.create_task(self._housekeeping())
        pump = asyncio.create_task(self._pump())
        try:
            await self._publish_state(
                Message(self.status_topic, status_payload("online", self.version), 1, retain=True)
            )
            for m in self.state_messages():
                await self._publish_state(m)
            return await self._lost
        except ConnectFailed as err:
            return str(err)
        finally:
            self.connected = False
            for task in (housekeeping, pump):
                task.cancel()
            await asyncio.gather(housekeeping, pump, return_exceptions=True)

    def _teardown(self) -> None:
        client, self._client = self._client, None
        self.connected = False
        if client is not None:
            sock = client.socket()
            if self._io is not None:
                self._io.unwatch(sock, reader=True)
            if sock is not None:
                sock.close()  # the client is discarded: a new one is made for each connection
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(ConnectFailed("connection lost"))
        self._waiters.clear()
        self._inflight.clear()
        self._cursor = 0  # resend all that was not acknowledged, oldest first

    def _mark_down(self, reason: str) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("MQTT: %s", reason)

    async def _housekeeping(self) -> None:
        """paho's keepalive, once a second; refused messages retried once a minute."""
        ticks = 0
        while True:
            await asyncio.sleep(1.0)
            client = self._client
            if client is not None:
                client.loop_misc()
            ticks += 1
            if ticks % DEAD_LETTER_RETRY_SECONDS == 0 and self.connected:
                moved = await self.buffer.requeue_dead_letters()
                if moved:
                    log.debug("MQTT: retrying %d refused messages", moved)

    # ---- publishing --------------------------------------------------------------------
    async def _pump(self) -> None:
        window = self.cfg.inflight
        while True:
            room = window - len(self._inflight)
            self._wake.clear()
            rows = await self.buffer.fetch(self._cursor, room) if room > 0 else []
            if not rows:
                await self._wake.wait()
                continue
            client = self._client
            if client is None:
                return
            for sm in rows:
                if self.min_gap:  # buffer.replay_rate: pace the backlog
                    wait = self._next_send - time.monotonic()
                    if wait > 0:
                        self._flush(client)
                        await asyncio.sleep(wait)
                        if client is not self._client:
                            return
                    self._next_send = max(self._next_send, time.monotonic()) + self.min_gap
                m = sm.message
                info = client.publish(m.topic, m.payload, m.qos, m.retain)
                if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    self._connection_lost(f"publish failed: {paho.error_string(info.rc)}")
                    return
                self._inflight[info.mid] = sm
                self._cursor = sm.id
            self._flush(client)

    async def _publish_state(self, m: Message) -> None:
        """A state message (status, meta): sent directly, not through the buffer."""
        assert self._loop is not None
        client = self._client
        if client is None:
            raise ConnectFailed("not connected")
        info = client.publish(m.topic, m.payload, m.qos, m.retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise ConnectFailed(f"publish failed: {paho.error_string(info.rc)}")
        fut = self._loop.create_future()
        self._waiters[info.mid] = fut
        self._flush(client)
        if m.qos:
            rc = await fut
            if rc.is_failure:
                log.error("MQTT: broker refused %s: %s", m.topic, rc)

    # ---- paho callbacks (all run on the event loop thread, except socket_open) ---------
    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(rc)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        # paho reports a dropped TCP connection as "Unspecified error" (0x80); a missing
        # PINGRESP as "Keep alive timeout"; a DISCONNECT from the broker carries its reason.
        why = "connection lost" if rc.value == 0x80 else str(rc)
        self._connection_lost(f"disconnected from {self.cfg.host}:{self.cfg.port}: {why}")

    def _connection_lost(self, reason: str) -> None:
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
        self._wake.set()

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        waiter = self._waiters.pop(mid, None)
        if waiter is not None:
            if not waiter.done():
                waiter.set_result(rc)
            return
        sm = self._inflight.pop(mid, None)
        if sm is None:
            return
        if rc.is_failure:
            self.refused += 1
            self.buffer.dead_letter(sm.id, str(rc))
            if sm.message.topic not in self._refused_topics:
                self._refused_topics.add(sm.message.topic)
                log.error(
                    "MQTT: broker refused a publish to %s: %s; kept as a dead letter "
                    "(check the broker's ACL for this gateway)",
                    sm.message.topic,
                    rc,
                )
        else:
            self.published += 1
            if sm.id <= self._backlog_upto:
                self.replayed += 1
            self.buffer.ack([sm.id])
        self._wake.set()

    def _flush(self, client: paho.Client) -> None:
        if self._io is not None:
            self._io.flush(client)
