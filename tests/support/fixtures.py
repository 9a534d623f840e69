"""Pytest fixtures built on tests.support; re-export with ``from tests.support.fixtures import *``.

* ``pki`` (session): test CA, server/client certs, a wrong CA (:class:`CertBundle`).
* ``broker`` (session): one mosquitto with a plain and a TLS listener, shared by
  the whole session - tests must not stop, kill or reconfigure it.
* ``fresh_broker`` (function): same setup, private to the test; it may be
  stopped, killed and restarted.
* ``broker_factory`` (function): ``make(**Broker kwargs) -> started Broker`` for
  custom configs (users, ACL, mutual TLS); all are stopped at teardown.
* ``embedded_broker`` (function): amqtt (MQTT 3.1.1, plain TCP), skipped when
  amqtt is not importable.
* ``subscriber_factory`` (function): ``make(url, topics="#", **options) ->
  started Subscriber``; all are closed at teardown.

mosquitto-backed fixtures skip (not fail) when mosquitto is not installed.
Broker work dirs live under pytest's tmp dirs, so logs of failed runs survive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Unpack

import pytest

from tests.support.broker import Broker, EmbeddedBroker
from tests.support.certs import CertBundle, make_test_pki
from tests.support.subscriber import ConnectOptions, Subscriber

__all__ = [
    "broker",
    "broker_factory",
    "embedded_broker",
    "fresh_broker",
    "pki",
    "subscriber_factory",
]

MOSQUITTO_MISSING = "mosquitto executable not found on PATH (install the 'mosquitto' package)"
AMQTT_MISSING = "amqtt is not importable in this interpreter"

BrokerFactory = Callable[..., Broker]
SubscriberFactory = Callable[..., Subscriber]


def _require_mosquitto() -> None:
    if not Broker.available():
        pytest.skip(MOSQUITTO_MISSING)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> CertBundle:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def broker(pki: CertBundle, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _require_mosquitto()
    with Broker(tls=pki, workdir=tmp_path_factory.mktemp("session-broker")) as session_broker:
        yield session_broker


@pytest.fixture
def broker_factory(pki: CertBundle, tmp_path: Path) -> Iterator[BrokerFactory]:
    _require_mosquitto()
    made: list[Broker] = []

    def make(**kwargs: Any) -> Broker:
        kwargs.setdefault("workdir", tmp_path / f"broker-{len(made)}")
        new = Broker(**kwargs)
        made.append(new)
        return new.start()

    yield make
    for each in reversed(made):
        each.close()


@pytest.fixture
def fresh_broker(broker_factory: BrokerFactory, pki: CertBundle) -> Broker:
    return broker_factory(tls=pki)


@pytest.fixture
def embedded_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    if not EmbeddedBroker.available():
        pytest.skip(AMQTT_MISSING)
    with EmbeddedBroker(workdir=tmp_path / "amqtt") as embedded:
        yield embedded


@pytest.fixture
def subscriber_factory() -> Iterator[SubscriberFactory]:
    made: list[Subscriber] = []

    def make(
        url: str, topics: str | list[str] = "#", *, qos: int = 1, **options: Unpack[ConnectOptions]
    ) -> Subscriber:
        subscriber = Subscriber(url, topics, qos=qos, **options)
        made.append(subscriber)
        return subscriber.start()

    yield make
    for each in reversed(made):
        each.close()
