"""The OPC UA Motor 7 simulator over real TCP, read with asyncua's own Client.

Each test starts its own simulator on an ephemeral port in this process (building the
asyncua address space takes ~1.7 s, so the checks are grouped into few tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509

from simulators.opcua_model import BPFO_ORDER, SAMPLE_RATE_HZ, waveform
from simulators.opcua_sim import (
    APPLICATION_URI,
    NAMESPACE_URI,
    TYPE_VALUES,
    OpcUaSimulator,
)
from tests.support.certs import self_signed_rsa

REPO = Path(__file__).resolve().parents[2]
SHAFT_HZ = 1485.0 / 60.0
CLIENT_URI = "urn:edge-agent:test-client"


@contextlib.asynccontextmanager
async def connected(url: str, **security: Any) -> AsyncIterator[Client]:
    """A connected asyncua client (secured if ``security`` holds set_security arguments)."""
    client = Client(url, timeout=5)
    client.application_uri = CLIENT_URI
    if security:
        await client.set_security(SecurityPolicyBasic256Sha256, **security)
    await client.connect()
    try:
        yield client
    finally:
        await client.disconnect()


def node(client: Client, ident: str) -> Any:
    return client.get_node(ua.NodeId(ident, 2))


def server_tasks() -> set[asyncio.Task[Any]]:
    """Pending tasks created by the asyncua server or the simulator."""
    found = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code else ""
        if "asyncua/server" in filename or "simulators/opcua_" in filename:
            found.add(task)
    return found


# -- values ---------------------------------------------------------------------------

EXPECTED_TYPES = {
    "Boolean": (True, ua.VariantType.Boolean),
    "Int16": (-12345, ua.VariantType.Int16),
    "UInt16": (54321, ua.VariantType.UInt16),
    "Int32": (-123456789, ua.VariantType.Int32),
    "UInt32": (3456789012, ua.VariantType.UInt32),
    "Int64": (-1234567890123456789, ua.VariantType.Int64),
    "UInt64": (12345678901234567890, ua.VariantType.UInt64),
    "Float": (float(np.float32(3.14159)), ua.VariantType.Float),
    "Double": (2.718281828459045, ua.VariantType.Double),
    "String": ("EDGE-AGENT-TEST! µ°C ✓", ua.VariantType.String),
    "DateTime": (dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), ua.VariantType.DateTime),
    "ByteString": (b"\x00\x01\x7f\x80\xfe\xffEDGE", ua.VariantType.ByteString),
}

MOTOR_VALUES = {
    "Speed": 1485.0,
    "MotorCurrent": 42.5,
    "WindingTemp": 78.4,
    "BearingTemp": 61.3,
    "Running": True,
    "Vibration.SampleRate": 10000.0,
}


def spectrum(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and amplitude spectrum (Hann window) of a waveform."""
    freqs = np.fft.rfftfreq(len(samples), 1.0 / SAMPLE_RATE_HZ)
    return freqs, np.abs(np.fft.rfft(samples * np.hanning(len(samples))))


def envelope_spectrum(samples: np.ndarray, band: tuple[float, float]) -> np.ndarray:
    """Amplitude spectrum of the envelope of ``samples`` band-passed to ``band`` (Hz)."""
    full = np.fft.fft(samples)
    freqs = np.fft.fftfreq(len(samples), 1.0 / SAMPLE_RATE_HZ)
    analytic = np.where((freqs >= band[0]) & (freqs <= band[1]), 2.0 * full, 0.0)
    envelope = np.abs(np.fft.ifft(analytic))
    return np.abs(np.fft.rfft((envelope - envelope.mean()) * np.hanning(len(samples))))


async def test_values_types_statuses_and_waveform() -> None:
    """One deterministic simulator (building one takes ~1.7 s) for every read check."""
    async with OpcUaSimulator(deterministic=True, seed=7) as sim, connected(sim.endpoint) as client:
        assert sim.endpoint == f"opc.tcp://127.0.0.1:{sim.port}/edge-agent/sim"
        assert await client.get_namespace_index(NAMESPACE_URI) == 2

        # every data type, with its variant type
        assert set(EXPECTED_TYPES) == set(TYPE_VALUES)
        for name, (value, variant) in EXPECTED_TYPES.items():
            data = await node(client, f"Types.{name}").read_data_value()
            assert data.StatusCode.is_good(), name
            assert data.Value.VariantType == variant, name
            assert data.Value.Value == value, name
        types = await client.nodes.objects.get_child("2:Types")
        assert len(await types.get_children()) == len(TYPE_VALUES)

        # the motor's fixed values; browse path as the agent writes it; EURange
        for name, value in MOTOR_VALUES.items():
            assert await node(client, f"Motor7.{name}").read_value() == value, name
        bearing = await client.nodes.objects.get_child(["2:Motor7", "2:BearingTemp"])
        assert bearing.nodeid == ua.NodeId("Motor7.BearingTemp", 2)
        eu_range = await bearing.get_child("0:EURange")
        assert await eu_range.read_value() == ua.Range(Low=0.0, High=200.0)
        assert await bearing.read_type_definition() == ua.NodeId(ua.ObjectIds.AnalogItemType)

        # set_value pins a value (Types too); clear_values restores
        sim.set_value("BearingTemp", 88.5)
        sim.set_value("Types.Int16", -1)
        assert await node(client, "Motor7.BearingTemp").read_value() == 88.5
        assert await node(client, "Types.Int16").read_value() == -1
        assert sim.reading.bearing_temp_c == 88.5
        sim.set_value("Vibration.Waveform", [1.0, -2.5])
        assert await node(client, "Motor7.Vibration.Waveform").read_value() == [1.0, -2.5]
        with pytest.raises(ValueError, match="Int16"):
            sim.set_value("Types.Int16", 40000)
        sim.clear_values()
        assert await node(client, "Motor7.BearingTemp").read_value() == 61.3
        assert await node(client, "Types.Int16").read_value() == -12345

        # Broken is always BadSensorFailure, without a value
        broken = node(client, "Motor7.Broken")
        data = await broken.read_data_value(raise_on_bad_status=False)
        assert data.StatusCode.value == ua.StatusCodes.BadSensorFailure
        assert data.Value.Value is None
        with pytest.raises(ua.UaStatusCodeError) as error:
            await broken.read_value()
        assert error.value.code == ua.StatusCodes.BadSensorFailure

        # forced statuses: Uncertain keeps the value, Bad drops it, Good clears
        speed = node(client, "Motor7.Speed")
        sim.set_status("Speed", ua.StatusCodes.UncertainLastUsableValue)
        data = await speed.read_data_value(raise_on_bad_status=False)
        assert data.StatusCode.value == ua.StatusCodes.UncertainLastUsableValue
        assert data.Value.Value == 1485.0
        sim.set_status("Motor7.Speed", ua.StatusCodes.BadCommunicationError)
        data = await speed.read_data_value(raise_on_bad_status=False)
        assert data.StatusCode.value == ua.StatusCodes.BadCommunicationError
        assert data.Value.Value is None
        sim.set_status("Speed", ua.StatusCodes.Good)
        data = await speed.read_data_value()
        assert data.StatusCode.is_good()
        assert data.Value.Value == 1485.0

        # the waveform: 4096 samples, exactly the model's for this seed, 1x stands out
        wave_node = node(client, "Motor7.Vibration.Waveform")
        assert await wave_node.read_array_dimensions() == [4096]
        healthy = np.asarray(await wave_node.read_value())
        assert healthy.shape == (4096,)
        np.testing.assert_allclose(healthy, waveform(0.0, 7, 1485.0, 0.0))
        freqs, amplitude = spectrum(healthy)
        one_x = np.argmin(abs(freqs - SHAFT_HZ))
        assert amplitude[one_x] > 10 * np.median(amplitude)
        below_bpfo = freqs < 80.0
        assert abs(freqs[below_bpfo][np.argmax(amplitude[below_bpfo])] - SHAFT_HZ) < freqs[1]

        # a bearing fault: impacts at BPFO ring the 3 kHz resonance; the bearing warms
        sim.fault_severity = 4.0
        await asyncio.sleep(0.05)
        faulty = np.asarray(await wave_node.read_value())
        np.testing.assert_allclose(faulty, waveform(0.0, 7, 1485.0, 4.0))
        assert await node(client, "Motor7.BearingTemp").read_value() > 61.3 + 5.0

    bpfo = BPFO_ORDER * SHAFT_HZ
    envelope = envelope_spectrum(faulty, (2000.0, 4000.0))
    assert abs(freqs[1:300][np.argmax(envelope[1:300])] - bpfo) < 2 * freqs[1]
    at_bpfo = np.argmin(abs(freqs - bpfo))
    healthy_envelope = envelope_spectrum(healthy, (2000.0, 4000.0))
    assert envelope[at_bpfo] > 5 * healthy_envelope[at_bpfo - 1 : at_bpfo + 2].max()


async def test_bearing_fault_develops_over_simulated_time() -> None:
    """degrade_after_h=0 at 2 simulated hours a second: the fault grows between reads."""
    bpfo = BPFO_ORDER * SHAFT_HZ

    async def sample(client: Client) -> tuple[float, float, float]:
        wave = np.asarray(await node(client, "Motor7.Vibration.Waveform").read_value())
        freqs = np.fft.rfftfreq(len(wave), 1.0 / SAMPLE_RATE_HZ)
        envelope = envelope_spectrum(wave, (2000.0, 4000.0))
        at_bpfo = envelope[np.argmin(abs(freqs - bpfo))]
        rms = float(np.sqrt(np.mean(wave**2)))
        return rms, float(at_bpfo), await node(client, "Motor7.BearingTemp").read_value()

    sim = OpcUaSimulator(deterministic=True, seed=7, degrade_after_h=0.0, time_scale=7200.0)
    async with sim, connected(sim.endpoint) as client:
        rms1, env1, temp1 = await sample(client)
        await asyncio.sleep(2.5)
        rms2, env2, temp2 = await sample(client)
        assert sim.fault_hours is not None
        assert sim.fault_hours > 4.0
        assert sim.current_severity > 0.0
    assert rms2 > rms1
    assert env2 > env1
    assert temp2 > temp1 > 61.3


async def test_subscription_receives_changes() -> None:
    received: dict[str, list[Any]] = {"Motor7.Speed": [], "Motor7.Vibration.Waveform": []}
    enough = asyncio.Event()
    pinned = asyncio.Event()

    class Handler:
        def datachange_notification(self, changed: Any, value: Any, data: Any) -> None:
            received[changed.nodeid.Identifier].append(value)
            if len(received["Motor7.Speed"]) >= 5 and received["Motor7.Vibration.Waveform"]:
                enough.set()
            if value == 1000.0:
                pinned.set()

    async with OpcUaSimulator(seed=3) as sim, connected(sim.endpoint) as client:
        subscription = await client.create_subscription(100, Handler())
        await subscription.subscribe_data_change(
            [node(client, "Motor7.Speed"), node(client, "Motor7.Vibration.Waveform")]
        )
        await asyncio.wait_for(enough.wait(), timeout=5.0)
        speeds = received["Motor7.Speed"]
        assert all(1470.0 < s < 1500.0 for s in speeds)
        assert len(set(speeds)) > 1  # 10 Hz, with noise
        assert len(received["Motor7.Vibration.Waveform"][0]) == 4096

        sim.set_value("Speed", 1000.0)  # a pinned value reaches subscribers at once
        await asyncio.wait_for(pinned.wait(), timeout=3.0)
        await subscription.delete()


# -- lifecycle ------------------------------------------------------------------------


async def test_stop_and_restart_on_the_same_port() -> None:
    before = server_tasks()
    sim = OpcUaSimulator(deterministic=True)
    await sim.start()
    port = sim.port
    assert port > 0
    client = Client(sim.endpoint, timeout=2)
    await client.connect()
    subscription = await client.create_subscription(100, None)
    await subscription.subscribe_data_change(node(client, "Motor7.Speed"))
    assert await node(client, "Motor7.Running").read_value() is True
    assert sim.connection_count == 1

    await sim.stop()  # with a client connected and subscribed
    assert not sim.running
    assert server_tasks() == before  # nothing of the server keeps running
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)  # the port is closed
    with pytest.raises((ConnectionError, ua.UaError, asyncio.TimeoutError)):
        await node(client, "Motor7.Running").read_value()
    with contextlib.suppress(Exception):
        await client.disconnect()

    # while stopped somebody else takes the port: start fails, and works once it is free
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    with squatter, pytest.raises(OSError, match="cannot listen"):
        await sim.start()
    assert not sim.running

    await sim.restart()  # a stopped simulator restarts too
    assert sim.port == port
    async with connected(sim.endpoint) as again:
        assert await node(again, "Motor7.Speed").read_value() == 1485.0
    await sim.restart()
    assert sim.port == port
    async with connected(sim.endpoint) as again:
        assert await node(again, "Types.UInt64").read_value() == 12345678901234567890
    await sim.stop()
    await sim.stop()  # idempotent
    assert server_tasks() == before


# -- security -------------------------------------------------------------------------


def client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed client certificate (DER) and key (PEM), as a third-party tool makes."""
    return self_signed_rsa(directory, "edge-agent test client", CLIENT_URI, stem="client_cert")


async def test_sign_and_encrypt_with_a_trusted_client_certificate(tmp_path: Path) -> None:
    cert_dir = tmp_path / "sim-pki"
    cert_path, key_path = client_certificate(tmp_path)
    sim = OpcUaSimulator(deterministic=True, security=True, cert_dir=cert_dir)
    assert sim.certificate_path == cert_dir / "server_cert.der"
    server_cert = x509.load_der_x509_certificate(sim.certificate_path.read_bytes())
    san = server_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [APPLICATION_URI]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    security = {
        "certificate": str(cert_path),
        "private_key": str(key_path),
        "server_certificate": str(sim.certificate_path),
        "mode": ua.MessageSecurityMode.SignAndEncrypt,
    }
    async with sim:
        async with connected(sim.endpoint) as plain:
            endpoints = await plain.get_endpoints()
        offered = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode) for e in endpoints}
        assert offered == {
            ("None", ua.MessageSecurityMode.None_),
            ("Basic256Sha256", ua.MessageSecurityMode.Sign),
            ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt),
        }

        # an untrusted client certificate is refused (and kept in rejected/)
        with pytest.raises(ua.UaStatusCodeError) as refused:
            async with connected(sim.endpoint, **security):
                pass
        assert refused.value.code == ua.StatusCodes.BadCertificateUntrusted
        assert len(list((cert_dir / "rejected").iterdir())) == 1

        sim.trust(cert_path)
        # the client checks the server certificate the way the agent does: a trust store
        # holding cert_dir, full validation (time, URI, key usage, server use, trusted)
        store = TrustStore([cert_dir], [])
        await store.load()
        validator = CertificateValidator(
            CertificateValidatorOptions.TRUSTED_VALIDATION
            | CertificateValidatorOptions.PEER_SERVER,
            store,
        )
        client = Client(sim.endpoint, timeout=5)
        client.application_uri = CLIENT_URI
        client.certificate_validator = validator
        await client.set_security(SecurityPolicyBasic256Sha256, **security)
        async with client:
            assert client.security_policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
            assert await node(client, "Types.String").read_value() == "EDGE-AGENT-TEST! µ°C ✓"
            assert await node(client, "Motor7.BearingTemp").read_value() == 61.3

    # the certificate in cert_dir is reused by the next simulator
    again = OpcUaSimulator(security=True, cert_dir=cert_dir)
    assert again.certificate == sim.certificate


# -- command line ---------------------------------------------------------------------


async def test_command_line_ready_line_and_sigterm() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "simulators",
        "opcua",
        "--port",
        "0",
        "--deterministic",
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20.0)).decode()
        kind, url = line.split()[1:]
        assert line.startswith("READY opcua opc.tcp://127.0.0.1:")
        assert kind == "opcua"
        assert url.endswith("/edge-agent/sim")
        async with connected(url) as client:
            assert await node(client, "Motor7.WindingTemp").read_value() == 78.4
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=10.0) == 0
        _, stderr = await proc.communicate()
        assert stderr.decode() == ""
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
