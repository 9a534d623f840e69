"""OPC UA server simulating Motor 7 (a motor-driven fan), built on asyncua 2.x.

See ``simulators/README.md`` for the address space, the values and the security settings.
Here: the server's lifecycle and the Python API.  The variables are defined in
:mod:`simulators.opcua_variables`, the asyncua server and its address space are set up in
:mod:`simulators.opcua_server`, the values are kept and written by
:class:`simulators.opcua_values.MotorValues` and the certificates are handled in
:mod:`simulators.opcua_security`.

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
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from cryptography import x509

from .lifecycle import ServerLifecycle
from .opcua_model import MotorReading, nominal_reading
from .opcua_security import (
    check_client,
    fingerprint,
    load_certificate,
    make_certificate,
    server_credentials,
)
from .opcua_server import (
    APPLICATION_URI,
    ENDPOINT_PATH,
    NAMESPACE_URI,
    SERVER_NAME,
    add_nodes,
    advertise,
    bound_port,
    configure_server,
    quiet_asyncua,
)
from .opcua_server import LOCAL_NAMESPACE_URI as LOCAL_NAMESPACE_URI
from .opcua_server import PRODUCT_URI as PRODUCT_URI
from .opcua_values import MotorValues, checked_severity
from .opcua_variables import BROKEN as BROKEN
from .opcua_variables import (
    MOTOR_VARIABLES,
    SCALAR_PERIOD_S,
    TYPE_VALUES,
    WAVEFORM_PERIOD_S,
)
from .opcua_variables import SAMPLE_RATE as SAMPLE_RATE
from .opcua_variables import WAVEFORM as WAVEFORM
from .opcua_variables import MotorVariable as MotorVariable

# Every public name defined here before the split stays importable from here (``X as X``:
# not used in this module, re-exported only).
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


class OpcUaSimulator(ServerLifecycle, MotorValues):
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
        self._fault_severity = checked_severity(fault_severity)
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
            self.certificate, self._private_key = server_credentials(
                self.cert_dir, APPLICATION_URI, SERVER_NAME
            )

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
            self._port = bound_port(server)
            advertise(server, self.endpoint)
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
        self._trusted.add(fingerprint(load_certificate(data)))

    async def _check_client(
        self, certificate: x509.Certificate, description: ua.ApplicationDescription
    ) -> None:
        """asyncua certificate validator: called at CreateSession with a client cert."""
        if self.trust_all:
            return
        await check_client(certificate, description, self._trusted, self.cert_dir)

    # -- building the server ----------------------------------------------------------

    async def _build(self) -> Server:
        """A configured asyncua Server with the address space; not listening yet."""
        credentials = None
        if self.security:
            assert self.certificate is not None
            assert self._private_key is not None
            credentials = (self.certificate, self._private_key)
        server, self._ns = await configure_server(self.endpoint, credentials, self._check_client)
        await add_nodes(
            server, self._ns, self._model_reading(), self._model_waveform(), self._types
        )
        return server

    # -- refreshing -------------------------------------------------------------------

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
