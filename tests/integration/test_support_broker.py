"""Tests of the test infrastructure itself: real brokers, real TLS, real paho clients."""

# The fixtures are imported by name (there is no root conftest to register them
# yet), so every test parameter "redefines" an import as far as pyflakes knows.
# ruff: noqa: F811

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from tests.support.broker import Broker, BrokerStartError, EmbeddedBroker
from tests.support.certs import CertBundle
from tests.support.fixtures import (  # noqa: F401 - fixtures must be in the module namespace
    MOSQUITTO_MISSING,
    broker,
    broker_factory,
    embedded_broker,
    fresh_broker,
    pki,
    subscriber_factory,
)
from tests.support.ports import port_accepts
from tests.support.subscriber import (
    MqttConnectError,
    MqttPublishError,
    Publisher,
    Subscriber,
    publish_once,
)

BrokerFactory = Callable[..., Broker]
SubscriberFactory = Callable[..., Subscriber]


def unique_prefix() -> str:
    """A topic prefix no other test uses (the session broker is shared)."""
    return f"edge-test/{uuid.uuid4().hex[:12]}"


def test_broker_runs_private_mosquitto_on_ephemeral_port(broker: Broker) -> None:
    assert broker.port != 1883
    assert broker.url == f"mqtt://127.0.0.1:{broker.port}"
    assert broker.tls_url == f"mqtts://localhost:{broker.tls_port}"
    assert "mosquitto version 2" in broker.log_text()


def test_qos1_publish_is_received(broker: Broker, subscriber_factory: SubscriberFactory) -> None:
    prefix = unique_prefix()
    sub = subscriber_factory(broker.url, f"{prefix}/#")

    with Publisher(broker.url) as pub:
        pub.publish(f"{prefix}/a", {"value": 1.5}, qos=1)
        pub.publish(f"{prefix}/b", b"raw", qos=1)

    messages = sub.wait_for_messages(2)
    assert [(m.topic, m.qos, m.retain) for m in messages] == [
        (f"{prefix}/a", 1, False),
        (f"{prefix}/b", 1, False),
    ]
    assert sub.json_payloads("/a") == [{"value": 1.5}]
    assert messages[1].payload == b"raw"
    sub.clear()
    assert sub.messages == []


def test_wait_for_timeout_reports_what_arrived(
    broker: Broker, subscriber_factory: SubscriberFactory
) -> None:
    prefix = unique_prefix()
    sub = subscriber_factory(broker.url, f"{prefix}/#")
    publish_once(broker.url, f"{prefix}/only", b"x")
    sub.wait_for_messages(1)

    with pytest.raises(AssertionError, match=r"(?s)1 message\(s\) arrived.*only q1"):
        sub.wait_for(lambda ms: len(ms) >= 2, timeout=0.2, description="two messages")


def test_tls_with_test_ca(
    broker: Broker, pki: CertBundle, subscriber_factory: SubscriberFactory
) -> None:
    prefix = unique_prefix()
    sub = subscriber_factory(broker.tls_url, f"{prefix}/#", ca_file=pki.ca_file)

    publish_once(broker.tls_url, f"{prefix}/tls", b"secure", ca_file=pki.ca_file)

    assert sub.wait_for_messages(1)[0].payload == b"secure"


def test_tls_with_wrong_ca_fails(broker: Broker, pki: CertBundle) -> None:
    with pytest.raises(MqttConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        Subscriber(broker.tls_url, "#", ca_file=pki.wrong_ca_file).start()


def test_mutual_tls_requires_a_client_cert_from_the_ca(
    broker_factory: BrokerFactory, pki: CertBundle, subscriber_factory: SubscriberFactory
) -> None:
    mtls = broker_factory(tls=pki, require_certificate=True)

    with pytest.raises(MqttConnectError, match="before CONNACK"):
        Subscriber(mtls.tls_url, "#", ca_file=pki.ca_file).start()
    with pytest.raises(MqttConnectError, match="before CONNACK"):
        Subscriber(
            mtls.tls_url,
            "#",
            ca_file=pki.ca_file,
            client_cert=pki.rogue_client_cert,
            client_key=pki.rogue_client_key,
        ).start()

    good = subscriber_factory(
        mtls.tls_url,
        "m/#",
        ca_file=pki.ca_file,
        client_cert=pki.client_cert,
        client_key=pki.client_key,
    )
    publish_once(mtls.url, "m/1", b"ok")
    assert good.wait_for_messages(1)[0].topic == "m/1"


def test_password_auth_refuses_wrong_password(
    broker_factory: BrokerFactory, subscriber_factory: SubscriberFactory
) -> None:
    secured = broker_factory(users={"edge": "secret", "viewer": "other"})

    with pytest.raises(MqttConnectError, match="refused CONNECT") as refused:
        Subscriber(secured.url, "#", username="edge", password="wrong").start()
    assert refused.value.reason_code is not None
    assert refused.value.reason_code.is_failure
    with pytest.raises(MqttConnectError, match="refused CONNECT"):
        Subscriber(secured.url, "#").start()  # anonymous

    sub = subscriber_factory(secured.url, "p/#", username="viewer", password="other")
    publish_once("mqtt://edge:secret@" + secured.url.removeprefix("mqtt://"), "p/1", b"in")
    assert sub.wait_for_messages(1)[0].payload == b"in"


def test_acl_text_is_enforced(
    broker_factory: BrokerFactory, subscriber_factory: SubscriberFactory
) -> None:
    acl = "user edge\ntopic readwrite #\n\nuser viewer\ntopic read #\n"
    secured = broker_factory(users={"edge": "secret", "viewer": "other"}, acl=acl)
    sub = subscriber_factory(secured.url, "a/#", username="viewer", password="other")

    with pytest.raises(MqttPublishError, match="Not authorized"):
        publish_once(secured.url, "a/denied", b"x", username="viewer", password="other")
    publish_once(secured.url, "a/allowed", b"y", username="edge", password="secret")

    assert [m.topic for m in sub.wait_for_messages(1)] == ["a/allowed"]


def test_first_start_moves_off_a_port_taken_meanwhile(tmp_path: Path) -> None:
    if not Broker.available():
        pytest.skip(MOSQUITTO_MISSING)
    candidate = Broker(workdir=tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", candidate.port))
        squatter.listen()  # would answer a bare TCP probe: readiness must not trust it
        taken = candidate.port
        with candidate:
            assert candidate.port != taken
            assert "Address already in use" in candidate.log_text()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_restart_keeps_ports_and_messages_flow_again(
    fresh_broker: Broker, subscriber_factory: SubscriberFactory, how: str
) -> None:
    port, tls_port = fresh_broker.port, fresh_broker.tls_port
    sub = subscriber_factory(fresh_broker.url, "r/#")
    publish_once(fresh_broker.url, "r/before", b"1")
    sub.wait_for_messages(1, topic="r/before")

    acked = sub.subscriptions_acked
    if how == "stop":
        fresh_broker.stop()
    else:
        fresh_broker.kill()
    assert not fresh_broker.is_running
    assert not port_accepts("127.0.0.1", port)

    fresh_broker.start()
    assert (fresh_broker.port, fresh_broker.tls_port) == (port, tls_port)
    sub.wait_subscribed(acked + 1)  # paho reconnected and the filter is back
    publish_once(fresh_broker.url, "r/after", b"2")
    assert sub.wait_for_messages(1, topic="r/after")[0].payload == b"2"
    assert fresh_broker.log_text().count("mosquitto version 2.0") >= 2


def test_retained_message_seen_by_late_subscriber(
    broker: Broker, subscriber_factory: SubscriberFactory
) -> None:
    topic = f"{unique_prefix()}/status"
    publish_once(broker.url, topic, {"state": "online"}, retain=True)

    late = subscriber_factory(broker.url, topic)
    message = late.wait_for_messages(1)[0]
    assert message.retain
    assert message.json() == {"state": "online"}

    publish_once(broker.url, topic, b"", retain=True)  # leave the shared broker clean


def test_broken_config_fails_fast_with_the_log(broker_factory: BrokerFactory) -> None:
    with pytest.raises(BrokerStartError, match=r"(?s)exited with status.*no_such_option"):
        broker_factory(extra_config="no_such_option 1")


def test_embedded_amqtt_broker_passes_a_message(
    embedded_broker: EmbeddedBroker, subscriber_factory: SubscriberFactory
) -> None:
    v311 = MQTTProtocolVersion.MQTTv311
    assert not embedded_broker.supports_mqtt5
    sub = subscriber_factory(embedded_broker.url, "e/#", protocol=v311)

    publish_once(embedded_broker.url, "e/1", {"ok": True}, protocol=v311)

    assert sub.wait_for_messages(1)[0].json() == {"ok": True}
    with pytest.raises(MqttConnectError, match="Unsupported protocol version"):
        Subscriber(embedded_broker.url, "#").start()  # MQTT 5 CONNECT
