"""paho-mqtt 2 on our asyncio loop: the client built from the config, the connect handshake
with errors an integrator can act on, and the binding of paho's socket to the loop (readers
and writers instead of paho's network thread). No buffer, no publishing policy: that is
publisher.py.

Errors:
    ConnectFailed       TCP/TLS/DNS failure or no CONNACK in time: back off, retry
    ConnectRefused      the broker said no (bad credentials, not authorized): back off, retry,
                        and say which setting to check
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .config.models import Mqtt


class ConnectFailed(Exception):
    pass


class ConnectRefused(ConnectFailed):
    pass


def make_client(cfg: Mqtt, client_id: str, will: tuple[str, bytes]) -> paho.Client:
    """A fresh paho client for one connection: protocol, window, credentials, TLS, will."""
    v5 = cfg.protocol == "5"
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
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
    client.will_set(will[0], will[1], qos=1, retain=True)
    return client


async def handshake(
    loop: asyncio.AbstractEventLoop,
    client: paho.Client,
    cfg: Mqtt,
    connack: asyncio.Future[ReasonCode],
    flush: Callable[[paho.Client], None],
) -> None:
    """TCP, TLS and CONNECT, then wait for the CONNACK (which `connack` receives)."""
    where = f"{cfg.host}:{cfg.port}"
    props = None
    if cfg.protocol == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0
    try:
        # connect() resolves, opens TCP and does the TLS handshake: blocking, so off-loop.
        await loop.run_in_executor(
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
    flush(client)
    try:
        rc = await asyncio.wait_for(asyncio.shield(connack), client.connect_timeout)
    except TimeoutError as err:
        raise ConnectFailed(f"no CONNACK from {where} within {client.connect_timeout:g}s") from err
    if rc.is_failure:
        hint = ": check mqtt.username and the password" if rc.value in (0x86, 0x87, 4, 5) else ""
        raise ConnectRefused(f"broker {where} refused the connection: {rc}{hint}")


class LoopBinding:
    """Watches the socket of the current paho client with the loop's readers and writers.

    paho calls the socket callbacks from connect(), which runs in an executor thread, and
    from loop_read/loop_write/loop_misc on the event loop: registration must happen on the
    loop, and at once when already there (a closed socket cannot be unregistered later).
    `current()` names the client in use; callbacks of a discarded client are ignored.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, current: Callable[[], paho.Client | None]
    ) -> None:
        self.loop = loop
        self.current = current
        self._thread = threading.get_ident()

    def attach(self, client: paho.Client) -> None:
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write

    def flush(self, client: paho.Client) -> None:
        """Write what paho has queued now rather than at the next writable event."""
        if client.want_write():
            client.loop_write()

    def unwatch(self, sock: Any, reader: bool = False) -> None:
        """Unregister at once: it must happen before the socket is closed."""
        if sock is None:
            return
        with contextlib.suppress(ValueError, OSError, RuntimeError):
            if reader:
                self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)

    def _on_loop(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self._thread:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._watch, client, sock)

    def _watch(self, client: paho.Client, sock: Any) -> None:
        if client is self.current() and sock.fileno() >= 0:
            self.loop.add_reader(sock, self._readable, client)

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
        self.unwatch(sock, reader=True)

    def _on_register_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self._want_write, client, sock)

    def _want_write(self, client: paho.Client, sock: Any) -> None:
        if client is self.current() and client.socket() is sock and sock.fileno() >= 0:
            self.loop.add_writer(sock, client.loop_write)

    def _on_unregister_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        self._on_loop(self.unwatch, sock, False)
