"""The OPC UA driver against real asyncua servers in this process, on ephemeral ports.

Most tests share one plain asyncua server built here, whose variables the tests write with
the exact types, statuses and source timestamps they need (building an address space takes
~2 s, so it serves the whole module). It offers an unsecured endpoint and
Basic256Sha256/SignAndEncrypt, with a certificate made here, and trusts the client
certificate made by `edge-agent certs` (certs.py). Tests that stop it start it again on the
same port before they end. The last test runs the driver against the Motor 7 simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from edge_agent.config.opcua import OpcUaDevice
from edge_agent.drivers.base import DeviceUnavailable
from edge_agent.drivers.opcua.browse import browse
from edge_agent.drivers.opcua.certs import make_client_certificate
from edge_agent.drivers.opcua.driver import OpcUaDriver
from edge_agent.drivers.opcua.security import (
    SecurityRejected,
    ServerNotTrusted,
    thumbprint,
    verify_server_certificate,
)
from edge_agent.readings import Quality, Reading
from simulators.opcua_sim import NAMESPACE_URI, OpcUaSimulator
from tests.support.certs import make_test_pki, self_signed_rsa
from tests.support.proxy import CuttableProxy
from tests.support.uaproxy import RenewalProxy

pytestmark = pytest.mark.asyncio(loop_scope="module")

NS = "urn:edge-agent:test"
APP_URI = "urn:edge-agent:test-client"
T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=dt.UTC)
T0_MS = 1714979289123
VT = ua.VariantType

# name, type, first value, second value, expected first, expected second
TYPES: list[tuple[str, VT, Any, Any, Any, Any]] = [
    ("boolean", VT.Boolean, True, False, True, False),
    ("int16", VT.Int16, -12345, 7, -12345, 7),
    ("uint16", VT.UInt16, 54321, 1, 54321, 1),
    ("int32", VT.Int32, -123456789, 2, -123456789, 2),
    ("uint32", VT.UInt32, 3456789012, 3, 3456789012, 3),
    ("int64", VT.Int64, -1234567890123456789, 4, -1234567890123456789, 4),
    ("uint64", VT.UInt64, 12345678901234567890, 5, 12345678901234567890, 5),
    ("float", VT.Float, 3.14, -0.1, 3.14, -0.1),  # the float32 shortest decimal
    ("double", VT.Double, 2.718281828459045, -1e300, 2.718281828459045, -1e300),
    ("string", VT.String, "EDGE-AGENT ✓", "", "EDGE-AGENT ✓", ""),
    ("datetime", VT.DateTime, T0, T0 + dt.timedelta(seconds=1), T0_MS, T0_MS + 1000),
    ("bytestring", VT.ByteString, b"\x00\xffedge", b"", "AP9lZGdl", ""),
    ("doubles", VT.Double, [1.5, -2.25, 3.0], [0.5], [1.5, -2.25, 3.0], [0.5]),
    ("int32s", VT.Int32, [1, -2, 3], [], [1, -2, 3], []),
]


USER, PASSWORD = "edge", "pompe-101 ✓ s3cret"


class _Users:
    """Anonymous, or user `edge` with its password; any other login is refused."""

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, **_: Any
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User)
        if (username, password) == (USER, PASSWORD):
            return User(role=UserRole.User, name=username)
        return None


class UaTestServer:
    """asyncua Server with the test's variables; stop() and start() keep port and nodes."""

    def __init__(self, pki: Path) -> None:
        self.pki = pki
        self.cert, self.key = self_signed_rsa(
            pki / "server", "edge-agent test server", f"{NS}:server", server=True, stem="server"
        )
        self.client_cert, self.client_key = make_client_certificate(
            pki / "client", APP_URI, socket.gethostname()
        )
        self.server = Server(user_manager=_Users())  # type: ignore[arg-type]
        self.nodes: dict[str, Node] = {}
        self.port = 0
        self.idx = 0

    @property
    def url(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def setup(self) -> None:
        server = self.server
        await server.init()
        server.set_endpoint("opc.tcp://127.0.0.1:0/")
        server.set_server_name("edge-agent test server")
        await server.set_application_uri(f"{NS}:server")
        server.set_security_policy(
            [
                ua.SecurityPolicyType.NoSecurity,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Aes128Sha256RsaOaep_SignAndEncrypt,
                ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
                ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
            ]
        )
        await server.load_certificate(str(self.cert))
        await server.load_private_key(str(self.key))
        (self.pki / "server-trusts").mkdir()
        shutil.copy(self.client_cert, self.pki / "server-trusts" / "client.der")
        store = TrustStore([self.pki / "server-trusts"], [])
        await store.load()
        server.set_certificate_validator(
            CertificateValidator(
                CertificateValidatorOptions.TRUSTED_VALIDATION
                | CertificateValidatorOptions.PEER_CLIENT,
                store,
            )
        )
        self.idx = idx = await server.register_namespace(NS)
        plant = await server.nodes.objects.add_object(ua.NodeId("Plant", idx), f"{idx}:Plant")
        for name, vtype, first, *_ in TYPES:
            await self.add(plant, name, first, vtype)
        await self.add(plant, "level", 1.0, VT.Double)
        await self.add(plant, "sensor", 1.0, VT.Double)
        await self.add(plant, "guess", 1.0, VT.Double)
        await self.add(plant, "secret", 1.0, VT.Double)
        await self.nodes["secret"].write_attribute(
            ua.AttributeIds.AccessLevel, ua.DataValue(ua.Variant(0, VT.Byte))
        )
        await self.nodes["secret"].write_attribute(
            ua.AttributeIds.UserAccessLevel, ua.DataValue(ua.Variant(0, VT.Byte))
        )
        await self.add(plant, "ranged", 50.0, VT.Double)
        await self.nodes["ranged"].add_property(
            ua.NodeId("ranged.EURange", idx),
            ua.QualifiedName("EURange", 0),
            ua.Range(0.0, 100.0),
            VT.ExtensionObject,
        )
        await server.start()
        assert server.bserver is not None
        self.port = server.bserver.port  # asyncua fills in the port bound for port 0
        server.set_endpoint(f"opc.tcp://127.0.0.1:{self.port}/")  # for start() after stop()

    async def add(self, parent: Node, name: str, value: Any, vtype: VT) -> None:
        node = await parent.add_variable(
            ua.NodeId(name, self.idx), f"{self.idx}:{name}", value, vtype
        )
        self.nodes[name] = node

    async def write(
        self,
        name: str,
        value: Any,
        vtype: VT,
        status: int = ua.StatusCodes.Good,
        source: dt.datetime | None = None,
    ) -> None:
        variant = ua.Variant(value, vtype) if value is not None else ua.Variant()
        await self.nodes[name].write_value(
            ua.DataValue(
                variant,
                StatusCode=ua.StatusCode(status),
                SourceTimestamp=source or dt.datetime.now(dt.UTC),
                ServerTimestamp=dt.datetime.now(dt.UTC),
            )
        )

    async def start(self) -> None:
        await self.server.start()  # returns once the socket listens: the "started" signal

    async def stop(self) -> None:
        await self.server.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[UaTestServer]:
    srv = UaTestServer(tmp_path_factory.mktemp("opcua-pki"))
    await srv.setup()
    yield srv
    await srv.stop()


def device(url: str, points: list[dict[str, Any]], **kw: Any) -> OpcUaDevice:
    return OpcUaDevice.model_validate(
        {
            "name": "plc",
            "protocol": "opcua",
            "endpoint": url,
            "poll_interval": "100ms",
            "timeout": "2s",
            "keepalive": "1s",
            "points": points,
            **kw,
        }
    )


def node(name: str) -> str:
    return f"ns=2;s={name}"


async def poll_until(
    driver: OpcUaDriver,
    done: Callable[[list[Reading]], bool],
    timeout: float = 5.0,
) -> list[Reading]:
    """Poll every 50 ms, collecting readings, until `done(all so far)` (or fail)."""
    seen: list[Reading] = []
    async with asyncio.timeout(timeout):
        while True:
            seen.extend(await driver.poll())
            if done(seen):
                return seen
            await asyncio.sleep(0.05)


def latest(readings: list[Reading]) -> dict[str, Reading]:
    return {r.point: r for r in readings}


def has(*names: str, value: Callable[[str], Any] | None = None) -> Callable[[list[Reading]], bool]:
    def done(seen: list[Reading]) -> bool:
        last = latest(seen)
        if value is None:
            return all(n in last for n in names)
        return all(n in last and last[n].value == value(n) for n in names)

    return done


async def connected(dev: OpcUaDevice, **kw: Any) -> OpcUaDriver:
    driver = OpcUaDriver(dev, **kw)
    await driver.connect()
    return driver


async def test_every_type_by_poll_and_by_subscription(server: UaTestServer) -> None:
    for name, vtype, first, *_ in TYPES:
        await server.write(name, first, vtype, source=T0)
    points = [{"name": f"{n}_poll", "node": node(n), "mode": "poll"} for n, *_ in TYPES]
    points += [
        {"name": f"{n}_sub", "node": node(n), "sampling_interval": "50ms"} for n, *_ in TYPES
    ]
    driver = await connected(device(server.url, points), keep_raw=True)
    try:
        assert driver.problems == []
        assert driver.describe() == (
            f"opcua {server.url} (no security): {len(TYPES)} subscribed, {len(TYPES)} polled points"
        )
        first = {f"{n}_{m}": e for n, _, _, _, e, _ in TYPES for m in ("poll", "sub")}
        requests = driver.requests
        seen = await poll_until(driver, has(*first, value=first.__getitem__))
        polls = sum(1 for r in seen if r.point == "boolean_poll")
        assert driver.requests - requests == polls  # one Read per poll for all 14 nodes
        for r in latest(seen).values():
            assert (r.quality, r.error, r.ts_ms, r.raw) == (Quality.GOOD, None, T0_MS, None), r
        assert type(latest(seen)["uint64_sub"].value) is int

        later = T0 + dt.timedelta(minutes=1)
        for name, vtype, _, second, *_ in TYPES:
            await server.write(name, second, vtype, source=later)
        second = {f"{n}_{m}": e for n, _, _, _, _, e in TYPES for m in ("poll", "sub")}
        seen = await poll_until(driver, has(*second, value=second.__getitem__))
        assert {r.ts_ms for r in latest(seen).values()} == {T0_MS + 60_000}
    finally:
        await driver.close()


async def test_bad_and_uncertain_status(server: UaTestServer) -> None:
    await server.write("sensor", None, VT.Double, ua.StatusCodes.BadSensorFailure)
    await server.write("guess", 7.5, VT.Double, ua.StatusCodes.UncertainLastUsableValue)
    points = [
        {"name": "sensor_poll", "node": node("sensor"), "mode": "poll"},
        {"name": "guess_poll", "node": node("guess"), "mode": "poll"},
        {"name": "sensor_sub", "node": node("sensor")},
        {"name": "guess_sub", "node": node("guess")},
    ]
    driver = await connected(device(server.url, points), keep_raw=True)  # raw: `read`'s RAW
    try:
        last = latest(await poll_until(driver, has(*(p["name"] for p in points))))
        for kind in ("poll", "sub"):
            bad, uncertain = last[f"sensor_{kind}"], last[f"guess_{kind}"]
            assert (bad.value, bad.quality, bad.error) == (None, Quality.BAD, "BadSensorFailure")
            assert bad.raw == (ua.StatusCodes.BadSensorFailure,)
            assert uncertain.raw == (ua.StatusCodes.UncertainLastUsableValue,)
            assert (uncertain.value, uncertain.quality, uncertain.error) == (
                7.5,
                Quality.UNCERTAIN,
                "UncertainLastUsableValue",
            )
        await server.write("sensor", 20.5, VT.Double)  # the sensor is back
        last = latest(
            await poll_until(driver, has("sensor_sub", "sensor_poll", value=lambda _: 20.5))
        )
        assert last["sensor_sub"].quality is Quality.GOOD
        assert last["sensor_sub"].error is None
    finally:
        await driver.close()


async def test_a_missing_node_does_not_stop_the_others(server: UaTestServer) -> None:
    await server.write("level", 4.25, VT.Double)
    points = [
        {"name": "level", "node": node("level"), "mode": "poll"},
        {"name": "level_sub", "browse_path": "0:Objects/2:Plant/2:level", "deadband": 0.1},
        {"name": "ranged", "node": node("ranged"), "deadband": "5%"},
        {"name": "gone", "node": node("NoSuchNode"), "mode": "poll"},
        {"name": "gone_sub", "node": "ns=2;i=987654"},
        {"name": "no_path", "browse_path": "0:Objects/2:Plant/2:NoSuchNode"},
        {"name": "folder", "node": node("Plant"), "mode": "poll"},
        {"name": "secret", "node": node("secret"), "mode": "poll"},
        {"name": "percent", "node": node("level"), "deadband": "2%"},
        {"name": "elsewhere", "node": "nsu=urn:nobody;s=level"},
        {"name": "by_uri", "node": f"nsu={NS};s=level", "mode": "poll"},
    ]
    driver = await connected(device(server.url, points))
    try:
        errors = {
            "gone": "BadNodeIdUnknown",
            "gone_sub": "BadNodeIdUnknown",
            "no_path": "BadNoMatch",
            "folder": "BadAttributeIdInvalid",
            "secret": "BadNotReadable",
            "percent": "BadDeadbandFilterInvalid",
            "elsewhere": "BadNodeIdUnknown",
        }
        assert [p.split("'")[1] for p in driver.problems] == list(errors)
        assert "EURange" in driver.problems[5]
        assert driver.describe().endswith("2 subscribed, 2 polled points, 7 unavailable")
        seen: list[Reading] = []
        for _ in range(2):  # bad on every poll, not only the first
            readings = await driver.poll()
            seen += readings
            last = latest(readings)
            for name, err in errors.items():
                assert (last[name].value, last[name].quality, last[name].error) == (
                    None,
                    Quality.BAD,
                    err,
                )
            assert last["level"].value == last["by_uri"].value == 4.25
        seen += await poll_until(driver, lambda new: has("level_sub", "ranged")(seen + new))
        last = latest(seen)
        assert (last["level_sub"].value, last["ranged"].value) == (4.25, 50.0)
    finally:
        await driver.close()


async def test_deadband_and_queue_keep_the_servers_order(server: UaTestServer) -> None:
    await server.write("level", 10.0, VT.Double)
    points = [
        {"name": "banded", "node": node("level"), "deadband": 0.5, "queue_size": 10},
        {"name": "queued", "node": node("level"), "queue_size": 10, "sampling_interval": "0s"},
        {"name": "latest", "node": node("level")},  # queue_size 1: the newest value only
    ]
    driver = await connected(device(server.url, points, poll_interval="300ms"))
    try:
        names = ("banded", "queued", "latest")
        await poll_until(driver, has(*names))
        for value in (10.2, 10.4, 11.0, 11.1, 12.0):  # within one publishing interval
            await server.write("level", value, VT.Double)
        seen = await poll_until(driver, has(*names, value=lambda _: 12.0))
        assert [r.value for r in seen if r.point == "banded"] == [11.0, 12.0]
        assert [r.value for r in seen if r.point == "queued"] == [10.2, 10.4, 11.0, 11.1, 12.0]
        newest = [r.value for r in seen if r.point == "latest"]
        assert newest[-1] == 12.0
        assert len(newest) <= 2  # 1 unless the burst straddled a publishing interval
        stamps = [r.ts_ms for r in seen if r.point == "queued"]
        assert stamps == sorted(stamps)
    finally:
        await driver.close()


async def test_a_percent_deadband_is_applied_when_the_server_ignores_it(
    server: UaTestServer,
) -> None:
    """`ranged` has an EURange of 0..100, so 2 % is 2.0. The asyncua server accepts percent
    deadbands but sends every change (it logs "not implemented"): the driver filters."""
    await server.write("ranged", 50.0, VT.Double)
    points = [
        {"name": "percent", "node": node("ranged"), "deadband": "2%", "queue_size": 10},
        {"name": "every", "node": node("ranged"), "queue_size": 10},
    ]
    driver = await connected(device(server.url, points, poll_interval="300ms"))
    try:
        await poll_until(driver, has("percent", "every", value=lambda _: 50.0))
        steps = (51.0, 53.0, 54.5, 55.1, 54.0, 52.0, 49.0)
        for value in steps:
            await server.write("ranged", value, VT.Double)
            await asyncio.sleep(0.02)
        seen = await poll_until(driver, has("every", value=lambda _: 49.0))
        assert [r.value for r in seen if r.point == "every"] == list(steps)
        assert [r.value for r in seen if r.point == "percent"] == [53.0, 55.1, 52.0, 49.0]
        assert driver.filtered == 3
        # a new status passes whatever the value: only the value has a deadband
        for code in (
            ua.StatusCodes.UncertainLastUsableValue,
            ua.StatusCodes.UncertainSensorNotAccurate,
        ):
            await server.write("ranged", 49.5, VT.Double, status=code)
            await asyncio.sleep(0.02)
        seen = await poll_until(driver, lambda got: sum(r.point == "every" for r in got) == 2)
        errors = [r.error for r in seen if r.point == "percent"]
        assert errors == ["UncertainLastUsableValue", "UncertainSensorNotAccurate"]
        assert driver.filtered == 3
    finally:
        await driver.close()


async def test_browse_lists_what_points_can_name(server: UaTestServer) -> None:
    await server.write("level", 4.25, VT.Double)
    await server.write("doubles", [1.5, -2.25, 3.0], VT.Double)
    dev = device(server.url, [{"name": "x", "node": node("level")}])
    assert await browse(dev, 1) == [(0, "ns=2;s=Plant", "2:Plant", "", "")]
    rows = {r[1]: r for r in await browse(dev, 3)}
    assert rows["ns=2;s=level"] == (1, "ns=2;s=level", "2:level", "Double", "4.25")
    assert rows["ns=2;s=doubles"][3:] == ("Double", "[1.5, -2.25, 3.0]")
    assert rows["ns=2;s=ranged.EURange"][:4] == (2, "ns=2;s=ranged.EURange", "0:EURange", "Range")
    assert not any(r[1].startswith("i=") for r in rows.values())  # the Server object is left out


def secure(server: UaTestServer, trusted: Path, url: str | None = None, **kw: Any) -> OpcUaDevice:
    security = {
        "policy": kw.pop("policy", "Basic256Sha256"),
        "mode": kw.pop("mode", "SignAndEncrypt"),
        "certificate": str(kw.pop("certificate", server.client_cert)),
        "private_key": str(kw.pop("private_key", server.client_key)),
        "trusted_servers": str(trusted),
    }
    points = kw.pop("points", [{"name": "level", "node": node("level")}])
    return device(url or server.url, points, security=security, **kw)


@pytest.mark.parametrize(
    ("policy", "mode"),
    [
        ("Basic256Sha256", "SignAndEncrypt"),
        ("Basic256Sha256", "Sign"),
        ("Aes128_Sha256_RsaOaep", "SignAndEncrypt"),
        ("Aes256_Sha256_RsaPss", "Sign"),
        ("Aes256_Sha256_RsaPss", "SignAndEncrypt"),
    ],
)
async def test_every_policy_with_a_trusted_server(
    server: UaTestServer, tmp_path: Path, policy: str, mode: str
) -> None:
    trusted = tmp_path / "pki" / "trusted"
    trusted.mkdir(parents=True)
    cert = x509.load_der_x509_certificate(server.cert.read_bytes())
    (trusted / "plc.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    await server.write("level", 3.5, VT.Double)
    driver = await connected(secure(server, trusted, policy=policy, mode=mode))
    try:
        assert f"({policy}/{mode})" in driver.describe()
        channel = driver._client.security_policy  # type: ignore[union-attr]  # what is in use
        uri, in_use = channel.URI, channel.Mode
        assert uri == f"http://opcfoundation.org/UA/SecurityPolicy#{policy}"
        assert in_use == getattr(ua.MessageSecurityMode, mode)
        last = latest(await poll_until(driver, has("level")))
        assert (last["level"].value, last["level"].quality) == (3.5, Quality.GOOD)
    finally:
        await driver.close()
    assert not (tmp_path / "pki" / "rejected").exists()


async def test_an_untrusted_server_is_refused_until_its_certificate_is_copied(
    server: UaTestServer, tmp_path: Path
) -> None:
    trusted = tmp_path / "pki" / "trusted"
    trusted.mkdir(parents=True)
    shutil.copy(server.client_cert, trusted / "someone-else.der")
    driver = OpcUaDriver(secure(server, trusted))
    with pytest.raises(ServerNotTrusted) as refused:
        await driver.connect()
    cert = x509.load_der_x509_certificate(server.cert.read_bytes())
    saved = tmp_path / "pki" / "rejected" / f"edge-agent_test_server-{thumbprint(cert)[:16]}.der"
    assert str(refused.value) == (
        f"server certificate of {server.url} (thumbprint {thumbprint(cert)}, subject "
        f"CN=edge-agent test server) is not trusted: copy it into {trusted}/ (it was saved to "
        f"{saved} for you to inspect)"
    )
    assert refused.value.code == "untrusted_server"
    assert isinstance(refused.value, DeviceUnavailable)  # the runner backs off and retries
    assert saved.read_bytes() == server.cert.read_bytes()

    shutil.copy(saved, trusted)  # what the operator does; the next connect() takes it
    await driver.connect()
    try:
        assert latest(await poll_until(driver, has("level")))["level"].quality is Quality.GOOD
    finally:
        await driver.close()


async def test_a_server_certificate_issued_by_a_trusted_ca_is_trusted(tmp_path: Path) -> None:
    pki = make_test_pki(tmp_path / "pki")  # CA-issued server cert, and an unrelated CA
    der = x509.load_pem_x509_certificate(pki.server_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    by_ca = tmp_path / "by-ca"
    by_ca.mkdir()
    shutil.copy(pki.ca_file, by_ca)
    assert verify_server_certificate(der, "opc.tcp://plc:4840", by_ca).subject.rfc4514_string()
    with pytest.raises(ServerNotTrusted, match="is not trusted: add it to"):
        verify_server_certificate(der, "opc.tcp://plc:4840", pki.wrong_ca_file)


async def test_a_refused_certificate_goes_to_the_state_directory_when_pki_is_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under systemd's ProtectSystem=strict /etc is read-only: the certificate is saved
    where the operator can still find it, not in the service's private /tmp."""
    pki = make_test_pki(tmp_path / "pki")
    der = x509.load_pem_x509_certificate(pki.server_cert.read_bytes()).public_bytes(
        serialization.Encoding.DER
    )
    etc = tmp_path / "etc"
    (etc / "trusted").mkdir(parents=True)
    (etc / "rejected").write_text("not a directory: as unwritable as a read-only /etc\n")
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    with pytest.raises(ServerNotTrusted) as refused:
        verify_server_certificate(der, "opc.tcp://plc:4840", etc / "trusted")
    saved = next((tmp_path / "state" / "rejected-servers").iterdir())
    assert saved.read_bytes() == der
    assert f"it was saved to {saved} for you to inspect" in str(refused.value)


async def test_the_server_refusing_our_certificate_says_so(
    server: UaTestServer, tmp_path: Path
) -> None:
    cert, key = make_client_certificate(tmp_path / "other", APP_URI, socket.gethostname())
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(server.cert, trusted)
    driver = OpcUaDriver(secure(server, trusted, certificate=cert, private_key=key))
    with pytest.raises(SecurityRejected, match="refused this gateway's certificate") as refused:
        await driver.connect()
    assert str(cert) in str(refused.value)
    await driver.close()


@pytest.mark.parametrize("secured", [False, True], ids=["no-security", "sign-and-encrypt"])
async def test_username_and_password(server: UaTestServer, tmp_path: Path, secured: bool) -> None:
    await server.write("level", 5.5, VT.Double)
    shutil.copy(server.cert, tmp_path)

    def login(password: str) -> OpcUaDevice:
        if secured:
            return secure(server, tmp_path, username=USER, password=password)
        points = [{"name": "level", "node": node("level")}]
        return device(server.url, points, username=USER, password=password)

    driver = await connected(login(PASSWORD))
    try:
        last = latest(await poll_until(driver, has("level")))
        assert (last["level"].value, last["level"].quality) == (5.5, Quality.GOOD)
    finally:
        await driver.close()

    refused = OpcUaDriver(login("pompe-101"))
    with pytest.raises(SecurityRejected) as err:
        await refused.connect()
    assert str(err.value) == (
        f"{server.url}: connect: the server refused user 'edge' (BadUserAccessDenied)"
    )
    await refused.close()


async def test_read_command_logs_in_with_a_password_file(
    server: UaTestServer, tmp_path: Path
) -> None:
    """`edge-agent read` in a real process, the password from password_file (relative to
    the config), never printed, not by `check` either."""
    await server.write("level", 6.25, VT.Double)
    (tmp_path / "plc.pass").write_text(PASSWORD + "\n")
    (tmp_path / "config.yaml").write_text(
        f"""gateway: {{id: gw-test, site: test}}
mqtt: {{url: "mqtt://127.0.0.1:1"}}
buffer: {{path: buffer.db}}
devices:
  - name: plc
    protocol: opcua
    endpoint: {server.url}
    username: {USER}
    password_file: plc.pass
    points:
      - {{name: level, node: "{node("level")}", mode: poll}}
"""
    )

    async def run(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge_agent", *args, "config.yaml",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
        return await proc.wait(), out.decode()

    code, out = await run("read")
    assert code == 0, out
    assert "level  6.25" in out
    code, checked = await run("check")
    assert code == 0, checked
    assert "user edge, password from file plc.pass" in checked
    assert PASSWORD not in out + checked


async def test_a_frozen_link_is_noticed_within_the_keepalive(server: UaTestServer) -> None:
    await server.write("level", 1.0, VT.Double)
    points = [{"name": "level", "node": node("level")}]
    with CuttableProxy(server.port) as proxy:
        url = f"opc.tcp://127.0.0.1:{proxy.port}"
        driver = await connected(device(url, points, keepalive="1s", timeout="500ms"))
        try:
            await poll_until(driver, has("level"))
            proxy.freeze()  # no FIN, no RST: only the keepalive can tell
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(DeviceUnavailable, match="keepalive probe unanswered"):
                await poll_until(driver, lambda _: False, timeout=5)
            assert loop.time() - started < 2.5
            await driver.close()
            await driver.connect()  # a new connection through the proxy works
            await server.write("level", 2.0, VT.Double)
            await poll_until(driver, has("level", value=lambda _: 2.0))
        finally:
            await driver.close()


def renewing(server: UaTestServer, proxy: RenewalProxy, trusted: Path, **kw: Any) -> OpcUaDevice:
    """SignAndEncrypt through `proxy`, with keys renewed every 1.5 s (75 % of 2 s)."""
    shutil.copy(server.cert, trusted)
    points = [{"name": "level", "node": node("level")}, {"name": "sensor", "node": node("sensor")}]
    return secure(
        server, trusted, proxy.url, points=points, channel_lifetime="2s", timeout="500ms", **kw
    )


@contextlib.asynccontextmanager
async def changing(server: UaTestServer) -> AsyncIterator[None]:
    """`sensor` changes every 100 ms meanwhile. The asyncua server numbers a renewal's token
    from the last one it saw in use, so two renewals with no request between them (an idle
    subscription) get the same number and the channel breaks; data changes keep the
    client's publish requests, sealed with the newest token, coming."""

    async def change() -> None:
        for i in itertools.count():
            await server.write("sensor", float(i), VT.Double)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(change())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_slow_secure_channel_renewal_is_given_up_and_the_channel_rebuilt(
    server: UaTestServer, tmp_path: Path
) -> None:
    """The renewal's answer comes after the timeout: the session still works, but with no
    renewal ever again its keys expire and a strict server drops it. asyncua only logs
    this; the driver gives the session up at once and the next connect() renews fine."""
    await server.write("level", 1.0, VT.Double)
    async with changing(server):
        with RenewalProxy(server.port) as proxy:
            # keepalive 30 s: only the renewal can be what the driver notices
            driver = await connected(renewing(server, proxy, tmp_path, keepalive="30s"))
            try:
                await poll_until(driver, has("level", "sensor"))
                proxy.slow_renewals = 1.0  # twice the timeout
                with pytest.raises(DeviceUnavailable, match=r"channel renewal failed \(no an"):
                    await poll_until(driver, lambda _: False, timeout=10)  # due at 1.5 s
                assert proxy.answers_held == 1

                proxy.slow_renewals = 0
                await driver.connect()  # what the runner does after its backoff
                # the new channel's first renewal was answered: asyncua sent a second one
                await poll_until(driver, lambda _: proxy.renewals_passed >= 3, timeout=10)
                await server.write("level", 2.0, VT.Double)  # under the new channel's keys
                await poll_until(driver, has("level", value=lambda _: 2.0))
            finally:
                await driver.close()
    assert proxy.answers_held == 1


async def test_a_lost_secure_channel_renewal_ends_the_session_and_connect_recovers(
    server: UaTestServer, tmp_path: Path
) -> None:
    await server.write("level", 1.0, VT.Double)
    async with changing(server):
        with RenewalProxy(server.port) as proxy:
            driver = await connected(renewing(server, proxy, tmp_path))
            try:
                await poll_until(driver, has("level", "sensor"))
                proxy.drop_renewals = True
                with pytest.raises(DeviceUnavailable):  # the server sees a sequence gap
                    await poll_until(driver, lambda _: False, timeout=10)
                assert (proxy.renewals_dropped, proxy.renewals_passed) == (1, 0)

                proxy.drop_renewals = False
                await driver.connect()
                await poll_until(driver, lambda _: proxy.renewals_passed >= 3, timeout=10)
                await server.write("level", 2.0, VT.Double)
                await poll_until(driver, has("level", value=lambda _: 2.0))
            finally:
                await driver.close()


async def test_after_a_server_restart_connect_recreates_the_subscription(
    server: UaTestServer,
) -> None:
    await server.write("level", 1.0, VT.Double)
    points = [
        {"name": "level", "node": node("level")},
        {"name": "level_poll", "node": node("level"), "mode": "poll"},
    ]
    driver = await connected(device(server.url, points))
    try:
        await poll_until(driver, has("level", "level_poll", value=lambda _: 1.0))
        await server.stop()
        with pytest.raises(DeviceUnavailable):  # as the runner sees it: back off, reconnect
            await poll_until(driver, lambda _: False)
        await driver.close()
        with pytest.raises(DeviceUnavailable, match="connect"):
            await driver.connect()
        await server.start()
        await driver.connect()  # a new session and a new subscription
        await server.write("level", 2.0, VT.Double)
        seen = await poll_until(driver, has("level", "level_poll", value=lambda _: 2.0))
        assert [r.value for r in seen if r.point == "level"][-1] == 2.0
    finally:
        await driver.close()


async def test_motor7_of_the_simulator_over_sign_and_encrypt(tmp_path: Path) -> None:
    cert, key = make_client_certificate(tmp_path / "client", APP_URI, socket.gethostname())
    sim = OpcUaSimulator(port=0, deterministic=True, security=True, cert_dir=tmp_path / "sim")
    sim.trust(cert)
    async with sim:
        assert sim.certificate_path is not None
        trusted = tmp_path / "trusted"
        trusted.mkdir()
        shutil.copy(sim.certificate_path, trusted)
        security = {
            "policy": "Basic256Sha256",
            "mode": "SignAndEncrypt",
            "certificate": str(cert),
            "private_key": str(key),
            "trusted_servers": str(trusted),
        }
        points = [
            {
                "name": "bearing",
                "browse_path": "0:Objects/2:Motor7/2:BearingTemp",
                "deadband": "1%",
            },
            {"name": "speed", "node": "ns=2;s=Motor7.Speed", "mode": "poll"},
            {"name": "running", "node": "ns=2;s=Motor7.Running"},
            {"name": "waveform", "node": "ns=2;s=Motor7.Vibration.Waveform", "mode": "poll"},
            {"name": "broken", "node": "ns=2;s=Motor7.Broken"},
            {"name": "float", "node": "ns=2;s=Types.Float", "mode": "poll"},
            {"name": "bytes", "node": f"nsu={NAMESPACE_URI};s=Types.ByteString"},
        ]
        driver = await connected(device(sim.endpoint, points, security=security))
        try:
            assert driver.problems == []
            last = latest(await poll_until(driver, has(*(p["name"] for p in points))))
            assert {n: r.value for n, r in last.items() if n != "waveform"} == {
                "bearing": 61.3,
                "speed": 1485.0,
                "running": True,
                "broken": None,
                "float": 3.14159,
                "bytes": "AAF/gP7/RURHRQ==",
            }
            assert (last["broken"].quality, last["broken"].error) == (
                Quality.BAD,
                "BadSensorFailure",
            )
            wave = last["waveform"].value
            assert len(wave) == 4096
            assert all(type(v) is float for v in wave)

            sim.set_value("BearingTemp", 75.0)
            await poll_until(driver, has("bearing", value=lambda _: 75.0))
            await sim.restart()  # sessions and subscriptions are gone
            with pytest.raises(DeviceUnavailable):
                await poll_until(driver, lambda _: False)
            await driver.close()
            await driver.connect()
            sim.set_value("BearingTemp", 80.0)
            await poll_until(driver, has("bearing", value=lambda _: 80.0))
        finally:
            await driver.close()
