"""MQTT publisher: sends what the buffer holds, deletes a message only on a successful PUBACK.

paho-mqtt 2 runs on our event loop (its socket is watched with add_reader/add_writer and its
housekeeping called once a second), so there is no network thread. Each connection uses a
fresh paho client; after a disconnect everything not acknowledged is re-read from the
buffer, oldest first, so per-device order holds and at most `inflight` messages are sent
twice. Reconnection is ours: capped exponential backoff with jitter.

Errors (all caught in run(); none escapes to the supervisor):
    ConnectFailed       TCP/TLS/DNS failure or no CONNACK in time: back off, retry
    ConnectRefused      the broker said no (bad credentials, not authorized): back off, retry,
                        and say which setting to check
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .backoff import Backoff
from .buffer import SqliteBuffer, StoredMessage
from .config.models import Mqtt
from .readings import Message, now_ms

log = logging.getLogger(__name__)

DEAD_LETTER_RETRY_SECONDS = 60


class ConnectFailed(Exception):
    pass


class ConnectRefused(ConnectFailed):
    pass


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
        self._loop_thread = 0
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
        self._loop_thread = threading.get_ident()
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
            self._flush_writes(client)
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
    def _make_client(self) -> paho.Client:
        cfg = self.cfg
        v5 = cfg.protocol == "5"
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else True,
            reconnect_on_failure=False,
        )
        client.connect_timeout = max(cfg.keepalive, 5.0)
        client.max_inflight_messages_set(cfg.inflight)
        # The pump bounds what it hands paho to the window; the status and meta messages come
        # on top of it, so paho's own queue limit must leave room for them (0: unlimited).
        client.max_queued_messages_set(0)
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else None
            client.username_pw_set(cfg.username, password)
        if cfg.tls_enabled:
            tls = cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.will_set(
            self.status_topic, status_payload("offline", self.version), qos=1, retain=True
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
        return client

    async def _connect(self) -> None:
        assert self._loop is not None
        cfg = self.cfg
        client = self._make_client()
        self._client = client
        self._lost = self._loop.create_future()
        self._connack = self._loop.create_future()
        props = None
        if cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 0
        try:
            await self._handshake(client, props)
        except BaseException:
            self._teardown()
            raise

    async def _handshake(self, client: paho.Client, props: Properties | None) -> None:
        assert self._loop is not None
        assert self._connack is not None
        cfg = self.cfg
        where = f"{cfg.host}:{cfg.port}"
        try:
            # connect() resolves, opens TCP and does the TLS handshake: blocking, so off-loop.
            await self._loop.run_in_executor(
                None,
                lambda: client.connect(
                    cfg.host,
                    cfg.port,
                    keepalive=int(cfg.keepalive),
                    # MQTT 5 only; 3.1.1 has clean_session=True from the constructor
                    clean_start=True if props is not None else paho.MQTT_CLEAN_START_FIRST_ONLY,
                    properties=props,
                ),
            )
        except ssl.SSLCertVerificationError as err:
            hint = (
                "use in mqtt.url the host name the broker's certificate was issued for"
                if "mismatch" in str(err.verify_message).lower()
                else "check that mqtt.tls.ca_file holds the CA that signed the broker's certificate"
            )
            raise ConnectFailed(
                f"TLS: broker {where} certificate not trusted ({err.verify_message}): {hint}"
            ) from err
        except (OSError, ValueError) as err:
            raise ConnectFailed(f"cannot connect to {where}: {err}") from err
        self._flush_writes(client)
        try:
            rc = await asyncio.wait_for(asyncio.shield(self._connack), client.connect_timeout)
        except TimeoutError as err:
            raise ConnectFailed(
                f"no CONNACK from {where} within {client.connect_timeout:g}s"
            ) from err
        if rc.is_failure:
            hint = (
                ": check mqtt.username and the password" if rc.value in (0x86, 0x87, 4, 5) else ""
            )
            raise ConnectRefused(f"broker {where} refused the connection: {rc}{hint}")

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
            self._unwatch(sock, reader=True)
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
                        self._flush_writes(client)
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
            self._flush_writes(client)

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
        self._flush_writes(client)
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

    # paho calls the socket callbacks from connect(), which runs in an executor thread, and
    # from loop_read/loop_write/loop_misc on the event loop: registration must happen on the
    # loop, and at once when already there (a closed socket cannot be unregistered later).
    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch, client, sock)

    def _watch(self, client: paho.Client, sock: Any) -> None:
        if client is self._client and sock.fileno() >= 0:
            assert self._loop is not None
            self._loop.add_reader(sock, self._readable, client)

    def _readable(self, client: paho.Client) -> None:
        rc = client.loop_read(max_packets=100)
        sock = client.socket()
        # TLS may hold decrypted bytes that the socket no longer signals.
        while (
            rc == MQTTErrorCode.MQTT_ERR_SUCCESS
            and isinstance(sock, ssl.SSLSocket)
            and sock.pending()
        ):
            rc = client.loop_read(max_packets=100)

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._unwatch(sock, reader=True)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, client, sock)

    def _want_write(self, client: paho.Client, sock: Any) -> None:
        if client is self._client and client.socket() is sock and sock.fileno() >= 0:
            assert self._loop is not None
            self._loop.add_writer(sock, client.loop_write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._unwatch, sock, False)

    def _unwatch(self, sock: Any, reader: bool = False) -> None:
        """Unregister at once: it must happen before the socket is closed."""
        loop = self._loop
        if loop is None or sock is None:
            return
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            if reader:
                loop.remove_reader(sock)
            loop.remove_writer(sock)

    def _flush_writes(self, client: paho.Client) -> None:
        if client.want_write():
            client.loop_write()
