"""OPC UA server simulating Motor 7 (a motor-driven fan), built on asyncua 2.x.

See ``simulators/README.md`` for the address space, the values and the security settings.

Lifecycle (asyncua notes):

* The asyncua ``Server`` (its address space takes ~1.7 s to build) is created on the first
  :meth:`OpcUaSimulator.start` and kept for the simulator's life.  :meth:`~OpcUaSimulator.stop`
  stops only the network side: the listening socket, every connection, every client session
  and subscription, and our refresh task.  :meth:`~OpcUaSimulator.restart` starts asyncua's
  ``BinaryServer`` again on the same port.  ``Server.stop()`` is never called: it would shut
  down the address space for good (its method thread pool and internal session).
* asyncua's clock task (``ServerStatus.CurrentTime`` once a second) is disabled; our refresh
  task updates ``CurrentTime`` instead, so nothing of asyncua's keeps running after ``stop``.
* Sessions that own subscriptions outlive their connection in asyncua 2.x (OPC UA Part 4
  6.7, so a client can transfer them); ``stop`` closes them explicitly, otherwise their
  timeout tasks would stay pending until the session timeout.
* With port 0, asyncua's ``BinaryServer`` stores the bound port in ``bserver.port``; the
  endpoint descriptions were made with port 0 before listening, so they are rewritten.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from asyncua import Server, ua
from asyncua.common.node import Node
from asyncua.common.utils import ServiceError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .degradation import severity as degradation_severity
from .opcua_model import (
    SAMPLE_RATE_HZ,
    WAVEFORM_SAMPLES,
    MotorReading,
    motor_at,
    nominal_reading,
    waveform,
    with_pins,
)

__all__ = [
    "APPLICATION_URI",
    "ENDPOINT_PATH",
    "MOTOR_VARIABLES",
    "NAMESPACE_URI",
    "TYPE_VALUES",
    "OpcUaSimulator",
    "make_certificate",
]

_log = logging.getLogger(__name__)

#: Namespace of every simulator node (index 2 of the server's NamespaceArray).
NAMESPACE_URI = "urn:edge-agent:simulator"
#: ApplicationUri of the server, also the URI in its certificate's subjectAltName.
APPLICATION_URI = "urn:edge-agent:simulator"
#: NamespaceArray[1], the server's own namespace.  Part 5 6.3.1 would have it equal the
#: ApplicationUri, but that URI is our node namespace, which must stay at index 2.
LOCAL_NAMESPACE_URI = "urn:edge-agent:simulator:server"
ENDPOINT_PATH = "/edge-agent/sim"
PRODUCT_URI = "urn:edge-agent:simulator:product"
SERVER_NAME = "edge-agent OPC UA simulator"

#: Scalars refresh every 0.1 s, the waveform every second (non-deterministic mode).
SCALAR_PERIOD_S = 0.1
WAVEFORM_PERIOD_S = 1.0

_UNITS_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"


@dataclass(frozen=True)
class MotorVariable:
    """One variable of Motor 7 fed by the motor model."""

    field: str  # MotorReading field
    variant: ua.VariantType
    unit: str | None  # UNECE common code (EngineeringUnits), None: no unit
    unit_name: str
    eu_range: tuple[float, float] | None  # EURange property (AnalogItemType)
    description: str


#: Motor 7's scalar variables, by browse name; node id ``Motor7.<name>``.
MOTOR_VARIABLES: dict[str, MotorVariable] = {
    "Speed": MotorVariable(
        "speed_rpm", ua.VariantType.Double, "RPM", "rpm", (0.0, 1800.0), "Shaft speed"
    ),
    "MotorCurrent": MotorVariable(
        "motor_current_a", ua.VariantType.Double, "AMP", "A", (0.0, 100.0), "Motor current"
    ),
    "WindingTemp": MotorVariable(
        "winding_temp_c", ua.VariantType.Double, "CEL", "°C", (0.0, 200.0), "Winding temperature"
    ),
    "BearingTemp": MotorVariable(
        "bearing_temp_c",
        ua.VariantType.Double,
        "CEL",
        "°C",
        (0.0, 200.0),
        "Drive-end bearing temperature",
    ),
    "Running": MotorVariable("running", ua.VariantType.Boolean, None, "", None, "Motor running"),
}

WAVEFORM = "Vibration.Waveform"
SAMPLE_RATE = "Vibration.SampleRate"
BROKEN = "Broken"

#: The type-coverage variables, by browse name; node id ``Types.<name>``.  Fixed values.
TYPE_VALUES: dict[str, tuple[ua.VariantType, Any]] = {
    "Boolean": (ua.VariantType.Boolean, True),
    "Int16": (ua.VariantType.Int16, -12345),
    "UInt16": (ua.VariantType.UInt16, 54321),
    "Int32": (ua.VariantType.Int32, -123456789),
    "UInt32": (ua.VariantType.UInt32, 3456789012),
    "Int64": (ua.VariantType.Int64, -1234567890123456789),
    "UInt64": (ua.VariantType.UInt64, 12345678901234567890),
    "Float": (ua.VariantType.Float, 3.14159),  # 3.141590118408203 as float32
    "Double": (ua.VariantType.Double, 2.718281828459045),
    "String": (ua.VariantType.String, "EDGE-AGENT-TEST! µ°C ✓"),
    "DateTime": (
        ua.VariantType.DateTime,
        dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC),
    ),
    "ByteString": (ua.VariantType.ByteString, bytes.fromhex("00017f80feff") + b"EDGE"),
}

#: asyncua loggers that the simulator turns down to ERROR (they log every connection,
#: session and subscription at INFO, and harmless oddities at WARNING).
_QUIET_LOGGERS = (
    "asyncua.server",
    "asyncua.common.connection",
    "asyncua.crypto.uacrypto",
    "asyncua.crypto.security_policies",
)


def quiet_asyncua(level: int = logging.ERROR) -> None:
    """Turn the server-side asyncua loggers down to ``level`` (unless set explicitly)."""
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


class _ExpectedErrors(logging.Filter):
    """Drop asyncua ERROR records about things that are normal for a test server.

    * the traceback asyncua logs when the port is taken (``start`` raises OSError instead);
    * "sending service fault response": every refused request (an untrusted certificate,
      a session unknown after a restart) is logged at ERROR; the client gets the fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "sending service fault response: %s (%s)":
            return False
        exc = record.exc_info[1] if record.exc_info else None
        return not (record.msg == "%s error starting server" and isinstance(exc, OSError))


for _name in ("asyncua.server.server", "asyncua.server.uaprocessor"):
    logging.getLogger(_name).addFilter(_ExpectedErrors())


# -- certificates ------------------------------------------------------------------


def make_certificate(
    application_uri: str,
    common_name: str,
    *,
    server: bool,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    days: int = 3650,
) -> tuple[bytes, bytes]:
    """A self-signed OPC UA application instance certificate and its key.

    Returns (certificate DER, private key PEM).  RSA 2048, SHA-256; subjectAltName holds
    ``application_uri`` and ``hosts`` (IP addresses as IP entries, names as DNS entries).
    Like the certificates asyncua itself makes, it is marked as a CA (it signs itself), so
    trust stores that use it as a trust anchor accept it.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge-agent"),
        ]
    )
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([usage, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [usage]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.DER), key_pem


def _load_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM or DER bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def _fingerprint(certificate: x509.Certificate) -> bytes:
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def _directory_fingerprints(directory: Path) -> set[bytes]:
    """Fingerprints of the certificates (*.der, *.pem, *.crt) in ``directory``."""
    found: set[bytes] = set()
    if not directory.is_dir():
        return found
    for path in directory.iterdir():
        if path.suffix.lower() in (".der", ".pem", ".crt") and path.is_file():
            try:
                found.add(_fingerprint(_load_certificate(path.read_bytes())))
            except ValueError:
                _log.warning("not a certificate, ignored: %s", path)
    return found


def _unit(code: str, name: str) -> ua.EUInformation:
    """EngineeringUnits for a UNECE common code (UnitId per OPC UA Part 8)."""
    unit_id = 0
    for char in code:
        unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=_UNITS_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(name),
        Description=ua.LocalizedText(name),
    )


def _status(code: ua.StatusCode | int) -> ua.StatusCode:
    return code if isinstance(code, ua.StatusCode) else ua.StatusCode(code)


# -- the simulator -----------------------------------------------------------------


class OpcUaSimulator:
    """Motor 7 served over OPC UA; see ``simulators/README.md``.

    Several simulators can run in one event loop on different ports.  Values pinned with
    :meth:`set_value` and statuses forced with :meth:`set_status` survive
    :meth:`stop`/:meth:`restart`; client sessions and subscriptions do not.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        deterministic: bool = False,
        seed: int = 0,
        security: bool = False,
        cert_dir: str | Path | None = None,
        fault_severity: float = 0.0,
        *,
        trust_all: bool = False,
        clock: Callable[[], float] = time.monotonic,
        degrade_after_h: float | None = None,
        time_scale: float = 1.0,
    ) -> None:
        """Prepare the simulator; nothing listens before :meth:`start`.

        ``security``: also offer Basic256Sha256 Sign and SignAndEncrypt endpoints, with a
        server certificate made (or reused) in ``cert_dir`` (in memory without one).
        Client certificates must be trusted (:meth:`trust`, or a file in
        ``cert_dir/trusted``) unless ``trust_all``.  ``clock`` (monotonic seconds) drives
        the motor model in non-deterministic mode.  ``time_scale`` is simulated seconds per
        second of ``clock`` (3600: an hour a second); the motor model and the bearing fault
        run on simulated time.  ``degrade_after_h`` starts a developing bearing fault
        (:mod:`simulators.degradation`) that many simulated hours after creation; while it
        is set the static ``fault_severity`` is not used.  ``None``: the static severity,
        unless :meth:`start_fault` is called.
        """
        if seed < 0:
            raise ValueError("seed must be >= 0")
        if not 0 < time_scale < math.inf:
            raise ValueError("time_scale must be a finite number > 0")
        if degrade_after_h is not None and not 0 <= degrade_after_h < math.inf:
            raise ValueError("degrade_after_h must be a finite number >= 0")
        self.host = host
        self.deterministic = deterministic
        self.seed = seed
        self.security = security
        self.cert_dir = Path(cert_dir) if cert_dir is not None else None
        self.trust_all = trust_all
        self._fault_severity = _checked_severity(fault_severity)
        self._port = port
        self._clock = clock
        self._t0 = clock()
        self.time_scale = float(time_scale)
        self._fault_start_h = None if degrade_after_h is None else float(degrade_after_h)
        self._server: Server | None = None
        self._ns = 2
        self._listening = False
        self._refresh_task: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._pins: dict[str, Any] = {}
        self._statuses: dict[str, ua.StatusCode] = {}
        self._trusted: set[bytes] = set()
        self._types: dict[str, Any] = {name: value for name, (_, value) in TYPE_VALUES.items()}
        self._reading: MotorReading = nominal_reading(self.current_severity)
        self._waveform: list[float] = []
        self.certificate: bytes | None = None  # server certificate, DER
        self._private_key: bytes | None = None
        quiet_asyncua()
        if security:
            self.certificate, self._private_key = self._server_credentials()

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for connections; returns once connections are accepted."""
        if self._listening:
            raise RuntimeError("simulator already running")
        if self._server is None:
            server = await self._build()
            try:
                await server.start()
            except OSError as exc:
                raise OSError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
            self._server = server
            self._port = self._bound_port(server)
            self._advertise(server)
        else:
            assert self._server.bserver is not None
            try:
                await self._server.bserver.start()
            except OSError as exc:
                raise OSError(f"cannot listen on {self.host}:{self._port}: {exc}") from exc
        self._listening = True
        await self._write_all()
        self._refresh_task = asyncio.create_task(self._refresh_loop(), name="opcua-sim-refresh")

    async def stop(self) -> None:
        """Stop listening, close every connection, session and subscription."""
        if not self._listening or self._server is None:
            return
        self._listening = False
        server = self._server
        task, self._refresh_task = self._refresh_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        assert server.bserver is not None
        protocols = list(server.bserver.clients)
        await server.bserver.stop()
        # Sessions with subscriptions survive their connection in asyncua 2.x; close them.
        sessions = getattr(server.iserver, "_external_sessions", {})
        for session in list(sessions.values()):
            await session.close_session(delete_subs=True)
        # Let the connections' message loops (cancelled by connection_lost) finish.
        pending = [t for p in protocols for t in (getattr(p, "_task", None),) if t is not None]
        if pending:
            await asyncio.wait(pending, timeout=2.0)

    async def restart(self) -> None:
        """Stop, then listen again on the same port (the address space is kept)."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> OpcUaSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The listening port (the requested one until first started)."""
        return self._port

    @property
    def endpoint(self) -> str:
        """``opc.tcp://HOST:PORT/edge-agent/sim`` (127.0.0.1 for a wildcard host)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"opc.tcp://{host}:{self._port}{ENDPOINT_PATH}"

    @property
    def running(self) -> bool:
        """True while listening."""
        return self._listening

    @property
    def namespace_index(self) -> int:
        """Index of :data:`NAMESPACE_URI` (2)."""
        return self._ns

    @property
    def connection_count(self) -> int:
        """Open client connections."""
        if not self._listening or self._server is None or self._server.bserver is None:
            return 0
        return len(self._server.bserver.clients)

    def node_id(self, name: str) -> ua.NodeId:
        """The node id of a variable: ``"Speed"`` -> ``ns=2;s=Motor7.Speed``."""
        return ua.NodeId(_node_string(_canonical(name)), self._ns)

    # -- values ------------------------------------------------------------------------

    @property
    def reading(self) -> MotorReading:
        """The scalar values last written to the address space (pins applied)."""
        return self._reading

    @property
    def fault_severity(self) -> float:
        """Static bearing fault severity (0 = healthy .. 99 = end of life); settable.

        Used while no fault develops over time (``degrade_after_h`` None and no
        :meth:`start_fault`); see :attr:`current_severity` for the one in use.
        """
        return self._fault_severity

    @fault_severity.setter
    def fault_severity(self, value: float) -> None:
        self._fault_severity = _checked_severity(value)
        if self.deterministic:
            self._schedule(self._write_model(waveform_too=True))

    @property
    def simulated_seconds(self) -> float:
        """Simulated seconds since creation (clock x ``time_scale``)."""
        return (self._clock() - self._t0) * self.time_scale

    @property
    def simulated_hours(self) -> float:
        """Simulated hours since creation (clock x ``time_scale``)."""
        return self.simulated_seconds / 3600.0

    @property
    def fault_start_h(self) -> float | None:
        """Simulated hour (since creation) at which the bearing fault starts, or None."""
        return self._fault_start_h

    @property
    def fault_hours(self) -> float | None:
        """Simulated hours since the bearing fault started; None before it or without one."""
        if self._fault_start_h is None:
            return None
        hours = self.simulated_hours - self._fault_start_h
        return hours if hours >= 0 else None

    @property
    def current_severity(self) -> float:
        """The severity in use now: the developing fault's, else :attr:`fault_severity`."""
        if self._fault_start_h is None:
            return self._fault_severity
        return degradation_severity(self.fault_hours)

    def start_fault(self) -> float:
        """Start the developing bearing fault now (a fault already developing starts over).

        Returns the simulated hour of the start (see :attr:`simulated_hours`).
        """
        self._fault_start_h = self.simulated_hours
        self._schedule(self._write_model(waveform_too=True))
        return self._fault_start_h

    def set_value(self, name: str, value: Any) -> None:
        """Serve ``value`` for variable ``name`` (``"Speed"``, ``"Types.Int16"``, ...).

        Model-driven values stay pinned until :meth:`clear_values`.  The value is written
        to the address space at once if the server runs (subscribers are notified), else
        at :meth:`start`.  ``value`` must fit the variable's type.
        """
        key = _canonical(name)
        if key in (BROKEN, SAMPLE_RATE):
            raise ValueError(f"{name} cannot be set")
        checked = _checked_value(key, value)
        if key.startswith("Types."):
            self._types[key.removeprefix("Types.")] = checked
        else:
            self._pins[key] = checked
        if key == WAVEFORM:
            self._waveform = checked
        elif key in MOTOR_VARIABLES:
            self._reading = replace(self._reading, **{MOTOR_VARIABLES[key].field: checked})
        self._schedule(self._write(key))

    def clear_values(self) -> None:
        """Release pinned values and restore the Types values."""
        self._pins.clear()
        self._types = {name: value for name, (_, value) in TYPE_VALUES.items()}
        self._schedule(self._write_all())

    def set_status(self, name: str, status: ua.StatusCode | int) -> None:
        """Serve ``name`` with ``status`` (e.g. ``ua.StatusCodes.BadSensorFailure``).

        Bad statuses carry no value (OPC UA Part 4 7.7.1: null); Uncertain ones keep the
        value.  A Good status (0) clears the forced status.  Stays until cleared.
        """
        key = _canonical(name)
        if key == BROKEN:
            raise ValueError("Broken is always BadSensorFailure")
        code = _status(status)
        if code.value == 0:
            self._statuses.pop(key, None)
        else:
            self._statuses[key] = code
        self._schedule(self._write(key))

    def clear_statuses(self) -> None:
        """Back to Good for every variable (Broken stays Bad)."""
        names = list(self._statuses)
        self._statuses.clear()
        for key in names:
            self._schedule(self._write(key))

    # -- security ---------------------------------------------------------------------

    @property
    def certificate_path(self) -> Path | None:
        """``cert_dir/server_cert.der`` (None without security or without cert_dir)."""
        if not self.security or self.cert_dir is None:
            return None
        return self.cert_dir / "server_cert.der"

    def trust(self, cert: str | Path | bytes) -> None:
        """Accept a client certificate (a PEM or DER file, or its bytes)."""
        data = cert if isinstance(cert, bytes) else Path(cert).read_bytes()
        self._trusted.add(_fingerprint(_load_certificate(data)))

    def _server_credentials(self) -> tuple[bytes, bytes]:
        """Reuse the certificate in cert_dir, or make one (and save it there)."""
        if self.cert_dir is None:
            return make_certificate(APPLICATION_URI, SERVER_NAME, server=True)
        cert_path = self.cert_dir / "server_cert.der"
        key_path = self.cert_dir / "private" / "server_key.pem"
        if cert_path.is_file() and key_path.is_file():
            return cert_path.read_bytes(), key_path.read_bytes()
        der, key = make_certificate(APPLICATION_URI, SERVER_NAME, server=True)
        (self.cert_dir / "private").mkdir(parents=True, exist_ok=True)
        (self.cert_dir / "trusted").mkdir(exist_ok=True)
        key_path.write_bytes(key)
        key_path.chmod(0o600)
        cert_path.write_bytes(der)
        pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
        (self.cert_dir / "server_cert.pem").write_bytes(pem)
        return der, key

    async def _check_client(
        self, certificate: x509.Certificate, description: ua.ApplicationDescription
    ) -> None:
        """asyncua certificate validator: called at CreateSession with a client cert."""
        if self.trust_all:
            return
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        fingerprint = _fingerprint(certificate)
        if fingerprint in self._trusted:
            return
        if self.cert_dir is not None:
            trusted = await asyncio.to_thread(_directory_fingerprints, self.cert_dir / "trusted")
            if fingerprint in trusted:
                return
            await asyncio.to_thread(self._keep_rejected, certificate)
        _log.info("refused untrusted client certificate of %s", description.ApplicationUri)
        raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)

    def _keep_rejected(self, certificate: x509.Certificate) -> None:
        """Save a refused certificate in cert_dir/rejected (move it to trusted/ to accept)."""
        assert self.cert_dir is not None
        rejected = self.cert_dir / "rejected"
        rejected.mkdir(parents=True, exist_ok=True)
        name = _fingerprint(certificate).hex()[:16] + ".der"
        (rejected / name).write_bytes(certificate.public_bytes(serialization.Encoding.DER))

    # -- building the server ----------------------------------------------------------

    async def _build(self) -> Server:
        """A configured asyncua Server with the address space; not listening yet."""
        server = Server()
        await server.init()
        server.disable_clock(True)
        server.set_server_name(SERVER_NAME)
        server.product_uri = PRODUCT_URI
        server.manufacturer_name = "edge-agent"
        server.application_type = ua.ApplicationType.Server
        server.set_endpoint(self.endpoint)
        await server.set_application_uri(APPLICATION_URI)
        namespaces = await server.get_namespace_array()
        namespaces[1] = LOCAL_NAMESPACE_URI  # set_application_uri put APPLICATION_URI there
        await server.nodes.namespace_array.write_value(namespaces)
        self._ns = await server.register_namespace(NAMESPACE_URI)
        policies = [ua.SecurityPolicyType.NoSecurity]
        if self.security:
            assert self.certificate is not None
            assert self._private_key is not None
            await server.load_certificate(self.certificate, format="der")
            await server.load_private_key(self._private_key, format="pem")
            policies += [
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ]
            server.set_certificate_validator(self._check_client)
        server.set_security_policy(policies)
        await self._add_nodes(server)
        return server

    async def _add_nodes(self, server: Server) -> None:
        ns = self._ns
        objects = server.nodes.objects
        motor = await objects.add_object(ua.NodeId("Motor7", ns), ua.QualifiedName("Motor7", ns))
        reading = self._model_reading()
        for name, spec in MOTOR_VARIABLES.items():
            node = await self._add_variable(
                server,
                motor,
                name,
                ua.Variant(getattr(reading, spec.field), spec.variant),
                spec.description,
                analog=spec.eu_range is not None,
            )
            if spec.eu_range is not None:
                low, high = spec.eu_range
                await self._add_property(
                    node, _node_string(name), "EURange", ua.Range(Low=low, High=high)
                )
            if spec.unit is not None:
                await self._add_property(
                    node, _node_string(name), "EngineeringUnits", _unit(spec.unit, spec.unit_name)
                )
        vibration = await motor.add_object(
            ua.NodeId("Motor7.Vibration", ns), ua.QualifiedName("Vibration", ns)
        )
        wave = await self._add_variable(
            server,
            vibration,
            WAVEFORM,
            ua.Variant(self._model_waveform(), ua.VariantType.Double),
            f"Acceleration, {WAVEFORM_SAMPLES} samples at {SAMPLE_RATE_HZ:g} Hz, m/s²",
            array=WAVEFORM_SAMPLES,
            sampling_ms=WAVEFORM_PERIOD_S * 1000.0,
        )
        await self._add_property(
            wave, _node_string(WAVEFORM), "EngineeringUnits", _unit("MSK", "m/s²")
        )
        await self._add_variable(
            server,
            vibration,
            SAMPLE_RATE,
            ua.Variant(SAMPLE_RATE_HZ, ua.VariantType.Double),
            "Sample rate of Waveform, Hz",
        )
        broken = await self._add_variable(
            server, motor, BROKEN, ua.Variant(0.0, ua.VariantType.Double), "Always BadSensorFailure"
        )
        await server.write_attribute_value(
            broken.nodeid, ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadSensorFailure))
        )
        types = await objects.add_folder(ua.NodeId("Types", ns), ua.QualifiedName("Types", ns))
        for name, (variant, _) in TYPE_VALUES.items():
            await self._add_variable(
                server,
                types,
                f"Types.{name}",
                ua.Variant(self._types[name], variant),
                f"Fixed {name} test value",
            )

    async def _add_variable(
        self,
        server: Server,
        parent: Node,
        key: str,
        value: ua.Variant,
        description: str,
        *,
        analog: bool = False,
        array: int | None = None,
        sampling_ms: float = SCALAR_PERIOD_S * 1000.0,
    ) -> Node:
        """Add a read-only variable ``<key>`` with string node id ``_node_string(key)``."""
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = ua.NodeId(_node_string(key), self._ns)
        item.BrowseName = ua.QualifiedName(key.rsplit(".", 1)[-1], self._ns)
        item.NodeClass = ua.NodeClass.Variable
        item.ParentNodeId = parent.nodeid
        item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
        item.TypeDefinition = ua.NodeId(
            ua.ObjectIds.AnalogItemType if analog else ua.ObjectIds.BaseDataVariableType
        )
        attrs = ua.VariableAttributes()
        attrs.DisplayName = ua.LocalizedText(item.BrowseName.Name)
        attrs.Description = ua.LocalizedText(description)
        attrs.DataType = ua.NodeId(value.VariantType.value)
        attrs.Value = value
        attrs.ValueRank = ua.ValueRank.Scalar if array is None else ua.ValueRank.OneDimension
        if array is not None:
            attrs.ArrayDimensions = [array]
        attrs.AccessLevel = ua.AccessLevel.CurrentRead.mask
        attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
        attrs.MinimumSamplingInterval = sampling_ms
        attrs.Historizing = False
        item.NodeAttributes = attrs
        results = await server.iserver.isession.add_nodes([item])
        results[0].StatusCode.check()
        return server.get_node(results[0].AddedNodeId)

    async def _add_property(self, node: Node, owner: str, name: str, value: Any) -> None:
        """A standard property (browse name in namespace 0), node id ``<owner>.<name>``."""
        datatype = ua.NodeId(
            ua.ObjectIds.Range if isinstance(value, ua.Range) else ua.ObjectIds.EUInformation
        )
        await node.add_property(
            ua.NodeId(f"{owner}.{name}", self._ns),
            ua.QualifiedName(name, 0),
            value,
            datatype=datatype,
        )

    @staticmethod
    def _bound_port(server: Server) -> int:
        """The port actually listened on (asyncua fills ``bserver.port`` for port 0)."""
        assert server.bserver is not None
        port = server.bserver.port
        if not port:  # several sockets (a host name with IPv4 and IPv6): take the first
            listener = getattr(server.bserver, "_server", None)
            port = listener.sockets[0].getsockname()[1] if listener else 0
            server.bserver.port = port
        return int(port)

    def _advertise(self, server: Server) -> None:
        """Put the real port into the endpoint descriptions (made before listening)."""
        url = self.endpoint
        server.set_endpoint(url)
        for description in server.iserver.endpoints:
            description.EndpointUrl = url
            description.Server.DiscoveryUrls = [url]

    # -- writing values ---------------------------------------------------------------

    def _schedule(self, write: Any) -> None:
        """Run a write coroutine now if listening (else drop it: start writes everything)."""
        if not self._listening:
            write.close()
            return
        task = asyncio.get_running_loop().create_task(write)
        self._writes.add(task)
        task.add_done_callback(self._write_done)

    def _write_done(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("writing a value failed", exc_info=task.exception())

    def _model_reading(self) -> MotorReading:
        if self.deterministic:
            reading = nominal_reading(self.current_severity)
        else:
            reading = motor_at(self.simulated_seconds, self.seed, self.current_severity)
        pins = {
            spec.field: self._pins[name]
            for name, spec in MOTOR_VARIABLES.items()
            if name in self._pins
        }
        return with_pins(reading, pins)

    def _model_waveform(self) -> list[float]:
        if WAVEFORM in self._pins:
            return list(self._pins[WAVEFORM])
        severity = self.current_severity
        if self.deterministic:
            samples = waveform(0.0, self.seed, nominal_reading().speed_rpm, severity)
        else:
            t = self.simulated_seconds
            speed = self._model_reading().speed_rpm  # a pinned speed counts
            samples = waveform(t, self.seed, speed, severity)
        values: list[float] = samples.tolist()
        return values

    async def _write_all(self) -> None:
        await self._write_model(waveform_too=True)
        for name in TYPE_VALUES:
            await self._write(f"Types.{name}")
        await self._write(SAMPLE_RATE)

    async def _write_model(self, waveform_too: bool) -> None:
        self._reading = self._model_reading()
        for name in MOTOR_VARIABLES:
            await self._write(name)
        if waveform_too:
            self._waveform = self._model_waveform()
            await self._write(WAVEFORM)

    async def _write(self, key: str) -> None:
        """Write the current value of ``key`` with its status, time-stamped now."""
        server = self._server
        if server is None:
            return
        variant = self._variant(key)
        status = self._statuses.get(key, ua.StatusCode())
        now = dt.datetime.now(dt.UTC)
        if status.is_bad():
            variant = ua.Variant(None, ua.VariantType.Null)
        value = ua.DataValue(
            Value=variant, StatusCode=status, SourceTimestamp=now, ServerTimestamp=now
        )
        await server.write_attribute_value(self.node_id(key), value)

    def _variant(self, key: str) -> ua.Variant:
        if key in MOTOR_VARIABLES:
            spec = MOTOR_VARIABLES[key]
            if key in self._pins:
                return ua.Variant(self._pins[key], spec.variant)
            return ua.Variant(getattr(self._reading, spec.field), spec.variant)
        if key == WAVEFORM:
            return ua.Variant(self._waveform, ua.VariantType.Double)
        if key == SAMPLE_RATE:
            return ua.Variant(SAMPLE_RATE_HZ, ua.VariantType.Double)
        name = key.removeprefix("Types.")
        return ua.Variant(self._types[name], TYPE_VALUES[name][0])

    async def _refresh_loop(self) -> None:
        """Scalars every 0.1 s and the waveform every 1 s (non-deterministic mode, or with a
        developing bearing fault); ServerStatus.CurrentTime every second (always)."""
        assert self._server is not None
        server = self._server
        clock = server.get_node(ua.NodeId(ua.ObjectIds.Server_ServerStatus_CurrentTime))
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        tick = 0
        per_second = round(WAVEFORM_PERIOD_S / SCALAR_PERIOD_S)
        while True:
            try:
                if tick % per_second == 0:
                    await clock.write_value(dt.datetime.now(dt.UTC))
                if not self.deterministic or self._fault_start_h is not None:
                    await self._write_model(waveform_too=tick % per_second == 0)
            except Exception:  # keep serving; a broken refresh must not stop the clock
                _log.exception("refreshing the values failed")
            tick += 1
            next_tick += SCALAR_PERIOD_S
            await asyncio.sleep(max(0.0, next_tick - loop.time()))


# -- names and values --------------------------------------------------------------


def _canonical(name: str) -> str:
    """``"Motor7.Speed"`` / ``"Speed"`` -> ``"Speed"``; ``"Types.Int16"`` stays."""
    key = name.removeprefix("Motor7.")
    if key in MOTOR_VARIABLES or key in (WAVEFORM, SAMPLE_RATE, BROKEN):
        return key
    if key.startswith("Types.") and key.removeprefix("Types.") in TYPE_VALUES:
        return key
    raise KeyError(f"no variable {name!r}")


def _node_string(key: str) -> str:
    """The string identifier of a variable's node id."""
    return key if key.startswith("Types.") else f"Motor7.{key}"


_INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}


def _checked_value(key: str, value: Any) -> Any:
    """``value`` converted to the variable's type; ValueError if it does not fit."""
    if key == WAVEFORM:
        samples = np.asarray(value, dtype=np.float64)
        if samples.ndim != 1:
            raise ValueError("the waveform is a sequence of numbers")
        return samples.tolist()
    if key in MOTOR_VARIABLES:
        variant = MOTOR_VARIABLES[key].variant
    else:
        variant = TYPE_VALUES[key.removeprefix("Types.")][0]
    if variant is ua.VariantType.Boolean:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{key} is Boolean, got {value!r}")
        return bool(value)
    if variant in _INT_RANGES:
        low, high = _INT_RANGES[variant]
        if isinstance(value, bool) or int(value) != value or not low <= int(value) <= high:
            raise ValueError(f"{key} is {variant.name} ({low}..{high}), got {value!r}")
        return int(value)
    if variant in (ua.VariantType.Float, ua.VariantType.Double):
        return float(value)
    if variant is ua.VariantType.String:
        return str(value)
    if variant is ua.VariantType.ByteString:
        return bytes(value)
    if variant is ua.VariantType.DateTime:
        if not isinstance(value, dt.datetime):
            raise ValueError(f"{key} is DateTime, got {value!r}")
        return value
    raise ValueError(f"cannot set {key}")  # pragma: no cover


def _checked_severity(value: float) -> float:
    value = float(value)
    if not 0.0 <= value < math.inf:
        raise ValueError("fault_severity must be a finite number >= 0")
    return value
