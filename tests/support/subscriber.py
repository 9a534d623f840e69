"""Real paho-mqtt clients for observing and driving a broker in tests.

:class:`Subscriber` records everything published on its topic filters so a test
can wait for an expected message instead of sleeping; :class:`Publisher`
publishes and waits for the broker's acknowledgement.  Both use paho-mqtt 2
with ``CallbackAPIVersion.VERSION2`` and speak MQTT 5 unless told otherwise
(``protocol=MQTTProtocolVersion.MQTTv311`` for brokers such as amqtt).

Connection failures (refused CONNACK, TLS verification errors, the broker
hanging up before CONNACK as mosquitto does to a mutual-TLS client without a
certificate) surface as :class:`MqttConnectError` from ``start()``, so negative
tests can assert on them directly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

__all__ = [
    "ConnectOptions",
    "Message",
    "MqttConnectError",
    "MqttPublishError",
    "Publisher",
    "Subscriber",
    "publish_once",
]

DEFAULT_TIMEOUT = 10.0
_PLAIN_SCHEMES = {"mqtt": 1883, "tcp": 1883}
_TLS_SCHEMES = {"mqtts": 8883, "ssl": 8883}


class MqttConnectError(Exception):
    """The client could not establish an MQTT session (see ``reason``)."""

    def __init__(self, reason: str, reason_code: ReasonCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.reason_code = reason_code


class MqttPublishError(Exception):
    """A publish was not accepted (bad reason code in PUBACK/PUBREC, or no ack in time)."""


@dataclass(frozen=True)
class Message:
    """One message as delivered to a :class:`Subscriber`."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    received_at: float = field(default_factory=time.monotonic, compare=False)

    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError as exc:
            preview = self.payload[:200]
            raise AssertionError(f"payload on {self.topic!r} is not JSON: {preview!r}") from exc


class ConnectOptions(TypedDict, total=False):
    """Keyword options shared by :class:`Subscriber`, :class:`Publisher` and :func:`publish_once`.

    ``username``/``password`` may also come from the URL (``mqtt://user:pw@host:port``);
    ``ca_file``/``client_cert``/``client_key`` are only valid with ``mqtts://``.
    """

    client_id: str | None
    username: str | None
    password: str | None
    ca_file: str | Path | None
    client_cert: str | Path | None
    client_key: str | Path | None
    protocol: MQTTProtocolVersion
    keepalive: int
    connect_timeout: float


@dataclass(frozen=True)
class _Endpoint:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def _parse_url(url: str) -> _Endpoint:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _PLAIN_SCHEMES:
        tls, default_port = False, _PLAIN_SCHEMES[scheme]
    elif scheme in _TLS_SCHEMES:
        tls, default_port = True, _TLS_SCHEMES[scheme]
    else:
        raise ValueError(f"unsupported MQTT URL scheme in {url!r} (use mqtt:// or mqtts://)")
    if not parts.hostname:
        raise ValueError(f"no host in MQTT URL {url!r}")
    return _Endpoint(
        host=parts.hostname,
        port=parts.port or default_port,
        tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _describe(payload: bytes, limit: int = 80) -> str:
    shown = payload[:limit].decode("utf-8", errors="replace")
    return shown + ("..." if len(payload) > limit else "")


def _close_sockets_in_traceback(exc: BaseException) -> None:
    """Close sockets abandoned by a failed ``Client.connect()``.

    paho 2.2 does not close the TLS socket when the handshake fails (e.g. an
    untrusted server certificate); it is only finalised later, emitting a
    ResourceWarning that ``filterwarnings = error`` turns into a test error far
    from the cause.  The socket is still reachable from the traceback frames,
    so close it here.
    """
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        for value in list(frame.f_locals.values()):
            if isinstance(value, socket.socket):
                value.close()


class _ClientBase:
    """Connection handling shared by Subscriber and Publisher.

    ``start()`` connects synchronously (so TLS errors raise right there), runs
    paho's network thread and waits for a successful CONNACK.  After that paho
    reconnects on its own if the broker goes away; subclasses hook
    ``_on_session`` to restore state on each new session.
    """

    _id_prefix = "edge-test"

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
        keepalive: int = 30,
        connect_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url
        self._endpoint = _parse_url(url)
        if not self._endpoint.tls and (ca_file or client_cert or client_key):
            raise ValueError(f"TLS options given for non-TLS URL {url!r}")
        if (client_cert is None) != (client_key is None):
            raise ValueError("client_cert and client_key go together")
        self.client_id = client_id or f"{self._id_prefix}-{uuid.uuid4().hex[:10]}"
        self.protocol = protocol
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout

        self._cond = threading.Condition()
        self._connacks = 0
        self._connected = False
        self._failure: MqttConnectError | None = None
        self._last_disconnect: str | None = None
        self._last_problem: str | None = None
        self._started = False
        self._closed = False

        is_v5 = protocol == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=protocol,
            clean_session=None if is_v5 else True,
        )
        user = username if username is not None else self._endpoint.username
        secret = password if password is not None else self._endpoint.password
        if user is not None:
            client.username_pw_set(user, secret)
        if self._endpoint.tls:
            client.tls_set(
                ca_certs=str(ca_file) if ca_file else None,
                certfile=str(client_cert) if client_cert else None,
                keyfile=str(client_key) if client_key else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        # Reconnect quickly after a broker restart; paho's defaults start at 1 s.
        client.reconnect_delay_set(min_delay=0.1, max_delay=1)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_log = self._on_log
        self._client = client

    # -- lifecycle ------------------------------------------------------------
    def start(self) -> Self:
        """Connect and wait for CONNACK; raise :class:`MqttConnectError` on failure."""
        if self._started:
            return self
        self._started = True
        endpoint = self._endpoint
        try:
            self._client.connect(endpoint.host, endpoint.port, keepalive=self._keepalive)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            _close_sockets_in_traceback(exc)
            self._shutdown()
            raise MqttConnectError(f"connect to {self.url} failed: {exc!r}") from exc
        self._client.loop_start()
        deadline = time.monotonic() + self._connect_timeout
        self._wait_session(deadline)
        return self

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._shutdown()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        with self._cond:
            return self._connected

    @property
    def client(self) -> mqtt.Client:
        """The underlying paho client, for the odd thing these helpers lack."""
        return self._client

    # -- hooks / internals ------------------------------------------------------
    def _on_session(self, client: mqtt.Client, session_present: bool) -> None:
        """Called on the network thread after every successful CONNACK."""

    def _session_ready(self) -> bool:
        """Whether ``start()`` may return (caller holds the lock)."""
        return self._connacks > 0

    def _wait_session(self, deadline: float) -> None:
        with self._cond:
            done = self._cond.wait_for(
                lambda: self._failure is not None or self._session_ready(),
                timeout=max(0.0, deadline - time.monotonic()),
            )
            failure = self._failure
        if failure is not None:
            self._shutdown()
            raise failure
        if not done:
            self._shutdown()
            raise MqttConnectError(
                f"no session with {self.url} within {self._connect_timeout:.0f} s "
                f"(last disconnect: {self._last_disconnect or 'none'})"
            )

    def _shutdown(self) -> None:
        # Best effort: disconnect() only queues a packet and cannot fail in a
        # way that matters while tearing down.
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def _fail(self, failure: MqttConnectError) -> None:
        with self._cond:
            if self._failure is None and self._connacks == 0:
                self._failure = failure
            self._cond.notify_all()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._fail(MqttConnectError(f"{self.url} refused CONNECT: {reason_code}", reason_code))
            return
        with self._cond:
            self._connected = True
            self._connacks += 1
            self._cond.notify_all()
        self._on_session(client, flags.session_present)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        detail = self._last_problem or "network/TLS error"
        self._fail(MqttConnectError(f"connect to {self.url} failed: {detail}"))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        # paho reports socket/TLS errors (e.g. the alert a mutual-TLS broker sends
        # to a client without a certificate) only through its log; keep the last one
        # so connection failures can say why.
        if level in (mqtt.MQTT_LOG_ERR, mqtt.MQTT_LOG_WARNING):
            with self._cond:
                self._last_problem = text

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            self._connected = False
            self._last_disconnect = str(reason_code)
            self._cond.notify_all()
        reason = f"{self.url} closed the connection before CONNACK: {reason_code}"
        if self._last_problem:
            reason += f" ({self._last_problem})"
        self._fail(MqttConnectError(reason, reason_code))


class Subscriber(_ClientBase):
    """Subscribes to ``topics`` and records every delivered message.

    ``start()`` returns only after the SUBACK, so anything published afterwards
    is guaranteed to be seen.  After a reconnect (broker restart) the filters
    are subscribed again; use :meth:`wait_subscribed` to wait for that.
    """

    _id_prefix = "edge-test-sub"

    def __init__(
        self,
        url: str,
        topics: str | Sequence[str] = "#",
        *,
        qos: int = 1,
        **options: Unpack[ConnectOptions],
    ) -> None:
        super().__init__(url, **options)
        self.topics: tuple[str, ...] = (topics,) if isinstance(topics, str) else tuple(topics)
        if not self.topics:
            raise ValueError("Subscriber needs at least one topic filter")
        self.qos = qos
        self._messages: list[Message] = []
        self._subacks = 0
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    # -- collected messages -----------------------------------------------------
    @property
    def messages(self) -> list[Message]:
        """Snapshot of everything received so far (oldest first)."""
        with self._cond:
            return list(self._messages)

    @property
    def subscriptions_acked(self) -> int:
        """Successful SUBACKs so far (1 after start, +1 per re-subscribe)."""
        with self._cond:
            return self._subacks

    def clear(self) -> None:
        """Forget messages received so far."""
        with self._cond:
            self._messages.clear()

    def json_payloads(self, topic_suffix: str | None = None) -> list[Any]:
        """Decoded JSON payloads, optionally only from topics ending in ``topic_suffix``."""
        return [
            m.json()
            for m in self.messages
            if topic_suffix is None or m.topic.endswith(topic_suffix)
        ]

    def wait_for(
        self,
        predicate: Callable[[list[Message]], bool],
        timeout: float = DEFAULT_TIMEOUT,
        description: str | None = None,
    ) -> list[Message]:
        """Block until ``predicate(messages)`` holds and return the messages.

        The predicate is re-evaluated on every arrival (on a snapshot, outside
        the lock).  On timeout raise AssertionError describing what did arrive.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            snapshot = list(self._messages)
        while not predicate(snapshot):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                what = description or getattr(predicate, "__name__", "predicate")
                headline = f"timed out after {timeout:g} s waiting for {what}"
                raise AssertionError(self._summary(headline, snapshot))
            with self._cond:
                # Sleep until on_message notifies (or time is up); the loop re-checks.
                if len(self._messages) == len(snapshot):
                    self._cond.wait(remaining)
                snapshot = list(self._messages)
        return snapshot

    def wait_for_messages(
        self, count: int = 1, *, topic: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> list[Message]:
        """Wait for ``count`` messages (on exactly ``topic`` if given); return those messages."""

        def matching(messages: list[Message]) -> list[Message]:
            return [m for m in messages if topic is None or m.topic == topic]

        what = f"{count} message(s)" + (f" on {topic!r}" if topic else "")
        return matching(self.wait_for(lambda ms: len(matching(ms)) >= count, timeout, what))

    def wait_subscribed(self, count: int = 1, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until ``subscriptions_acked >= count`` (e.g. re-subscribed after a restart)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: self._subacks >= count, timeout=timeout)
            acked = self._subacks
        if not ok:
            raise AssertionError(
                f"{self.client_id}: {acked} SUBACK(s) after {timeout:g} s, wanted {count} "
                f"(connected={self.connected}, last disconnect: {self._last_disconnect or 'none'})"
            )

    def _summary(self, headline: str, messages: list[Message], last: int = 10) -> str:
        lines = [
            f"{headline}; subscriber {self.client_id} on {self.url} filters {list(self.topics)}",
            f"connected={self.connected}, last disconnect: {self._last_disconnect or 'none'}",
            f"{len(messages)} message(s) arrived"
            + (f"; the last {last}:" if len(messages) > last else ":"),
        ]
        for m in messages[-last:]:
            flags = f"q{m.qos}" + (" retained" if m.retain else "")
            lines.append(f"  {m.topic} {flags}: {_describe(m.payload)}")
        return "\n".join(lines)

    # -- paho callbacks -----------------------------------------------------------
    def _session_ready(self) -> bool:
        return self._subacks > 0

    def _on_session(self, client: mqtt.Client, session_present: bool) -> None:
        # Re-subscribe even if the broker kept the session: it is idempotent and
        # gives wait_subscribed() a SUBACK to wait for.
        client.subscribe([(topic, self.qos) for topic in self.topics])

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        with self._cond:
            if refused:
                if self._subacks == 0 and self._failure is None:
                    reason = f"subscription to {list(self.topics)} refused: {refused}"
                    self._failure = MqttConnectError(reason)
            else:
                self._subacks += 1
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        message = Message(
            topic=msg.topic, payload=bytes(msg.payload), qos=msg.qos, retain=bool(msg.retain)
        )
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()


class Publisher(_ClientBase):
    """Publishes messages and waits for the broker to acknowledge each one."""

    _id_prefix = "edge-test-pub"

    def __init__(self, url: str, **options: Unpack[ConnectOptions]) -> None:
        super().__init__(url, **options)
        self._acks: dict[int, ReasonCode] = {}
        self._client.on_publish = self._on_publish

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict[str, Any] | list[Any] | None = None,
        *,
        qos: int = 1,
        retain: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Publish and wait until the broker acked it (PUBACK/PUBCOMP; sent, for QoS 0).

        dicts and lists are sent as JSON.  With MQTT 5 a failure reason code in
        the ack (e.g. "Not authorized" from an ACL) raises MqttPublishError.
        """
        if not self._started:
            self.start()
        data = json.dumps(payload).encode() if isinstance(payload, (dict, list)) else payload
        info = self._client.publish(topic, data, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            problem = mqtt.error_string(info.rc)
            raise MqttPublishError(f"publish to {topic!r} failed locally: {problem}")
        with self._cond:
            acked = self._cond.wait_for(lambda: info.mid in self._acks, timeout=timeout)
            reason = self._acks.pop(info.mid, None)
        if not acked or reason is None:
            raise MqttPublishError(f"no ack for QoS {qos} publish to {topic!r} in {timeout:g} s")
        if reason.is_failure:
            raise MqttPublishError(f"broker rejected publish to {topic!r}: {reason}")

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._cond:
            self._acks[mid] = reason_code
            self._cond.notify_all()


def publish_once(
    url: str,
    topic: str,
    payload: bytes | str | dict[str, Any] | list[Any] | None = None,
    *,
    qos: int = 1,
    retain: bool = False,
    **options: Unpack[ConnectOptions],
) -> None:
    """Connect, publish one message, wait for its ack, disconnect."""
    with Publisher(url, **options) as publisher:
        publisher.publish(topic, payload, qos=qos, retain=retain)
