"""Real MQTT brokers for tests: a private ``mosquitto`` per test session, or amqtt.

Every broker here is a child process listening on 127.0.0.1 on ports picked at
start-up, never the machine's shared broker on 1883.  Running the broker as a
separate process (also for the pure-Python amqtt fallback) is deliberate: tests
can SIGKILL it to simulate an abrupt broker death, and a wedged broker cannot
take the test process down with it.

mosquitto 2.0.11 notes (what the generated config relies on):

* ``per_listener_settings false`` (the default) makes ``allow_anonymous``,
  ``password_file`` and ``acl_file`` global, applying to the plain and the TLS
  listener alike; ``cafile``/``certfile``/``keyfile``/``require_certificate``
  are per listener and follow the ``listener <port> <address>`` line.
* Password files are created with ``mosquitto_passwd -c -b FILE USER PASS``
  (``-b`` alone refuses to create a missing file) and extended with
  ``mosquitto_passwd -b``; the file then holds ``user:$7$...`` PBKDF2-SHA512
  hashes.  (``mosquitto_passwd -U`` on a plaintext ``user:pass`` file also
  works in 2.0.11.)
* Started as root, mosquitto switches to the ``mosquitto`` user after reading
  its config and would then fail to read files in our 0700 temp dirs, so the
  config says ``user root`` when we are root.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self

from tests.support.certs import CertBundle
from tests.support.ports import LOCALHOST, free_port, port_accepts

__all__ = ["Broker", "BrokerStartError", "EmbeddedBroker"]

DEFAULT_START_TIMEOUT = 10.0
REPO = Path(__file__).resolve().parents[2]  # for the child that imports simulators
_POLL_INTERVAL = 0.02
# Extra places to look for the broker binaries: Debian puts mosquitto in
# /usr/sbin, which is not on PATH for ordinary users.
_EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin")

_live_brokers: weakref.WeakSet[_ProcessBroker] = weakref.WeakSet()


def _which(program: str) -> str | None:
    search = os.pathsep.join([os.environ.get("PATH", ""), *_EXTRA_BIN_DIRS])
    return shutil.which(program, path=search)


@atexit.register
def _kill_leftovers() -> None:
    """Do not leave brokers behind if a session dies without running teardown."""
    for broker in list(_live_brokers):
        broker.kill()


class BrokerStartError(RuntimeError):
    """The broker process did not come up; the message includes its log."""


class _PortInUseError(Exception):
    """Internal: the broker lost the race for a freshly picked port."""


class _ProcessBroker:
    """Process management shared by the mosquitto and amqtt brokers.

    Subclasses provide the command line, write their config files and name the
    ports that must accept TCP connections before ``start()`` returns.
    """

    #: Whether clients may speak MQTT 5 to this broker.
    supports_mqtt5: ClassVar[bool] = True
    _kind: ClassVar[str] = "broker"
    #: Log text the broker prints once all its listeners are open.  Waiting for
    #: it as well as for the TCP connect means a stranger that grabbed our port
    #: (and would answer the connect) cannot make a failed start look ready.
    _ready_marker: ClassVar[re.Pattern[bytes]] = re.compile(rb"")

    def __init__(
        self,
        *,
        workdir: str | os.PathLike[str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        if workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix=f"edge-test-{self._kind}-"))
            self._owns_workdir = True
        else:
            self._workdir = Path(workdir)
            self._workdir.mkdir(parents=True, exist_ok=True)
            self._owns_workdir = False
        self._start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._started_once = False
        self._start_count = 0
        self._log_path = self._workdir / f"{self._kind}.log"
        self._port = free_port()

    # -- subclass hooks ---------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files for the current ports (called before every spawn)."""

    def _env(self) -> dict[str, str] | None:
        """The child's environment (None: ours)."""
        return None

    def _ready_ports(self) -> list[int]:
        return [self._port]

    def _pick_new_ports(self) -> None:
        self._port = free_port()

    # -- public API -----------------------------------------------------------
    @property
    def port(self) -> int:
        """Plain MQTT port on 127.0.0.1."""
        return self._port

    @property
    def url(self) -> str:
        """``mqtt://127.0.0.1:PORT``."""
        return f"mqtt://{LOCALHOST}:{self._port}"

    @property
    def workdir(self) -> Path:
        """Directory holding the generated config and the broker log."""
        return self._workdir

    @property
    def pid(self) -> int | None:
        """PID of the running broker process, if any."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        """Everything the broker logged in this object's lifetime (all starts)."""
        return self._log_bytes().decode(errors="replace")

    def _log_bytes(self) -> bytes:
        try:
            return self._log_path.read_bytes()
        except FileNotFoundError:
            return b""

    def start(self) -> Self:
        """Start the broker; return once every listener accepts TCP connections.

        On the very first start a port stolen between :func:`free_port` and the
        broker's bind is replaced and the start retried; later starts (restarts)
        insist on the same ports.
        """
        if self.is_running:
            return self
        attempts = 1 if self._started_once else 3
        for _ in range(attempts):
            try:
                self._spawn_and_wait()
            except _PortInUseError:
                self._pick_new_ports()
                continue
            self._started_once = True
            _live_brokers.add(self)
            return self
        raise BrokerStartError(
            f"{self._kind}: could not bind free ports after {attempts} attempts\n{self._log_tail()}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop: SIGTERM, wait up to ``timeout``, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def kill(self) -> None:
        """Abrupt broker death (SIGKILL): no DISCONNECTs, no wills suppressed."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._process = None

    def restart(self) -> None:
        """Stop (if running) and start again on the same ports."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the broker and delete its work dir if we created it."""
        self.stop()
        _live_brokers.discard(self)
        if self._owns_workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running else "stopped"
        return f"<{type(self).__name__} {self.url} {state}>"

    # -- internals ------------------------------------------------------------
    def _log_tail(self, max_chars: int = 4000) -> str:
        text = self.log_text()
        if len(text) > max_chars:
            text = "...\n" + text[-max_chars:]
        return f"--- {self._kind} log ({self._log_path}) ---\n{text}--- end of log ---"

    def _spawn_and_wait(self) -> None:
        self._prepare()
        self._start_count += 1
        with self._log_path.open("ab") as log:
            ports = self._ready_ports()
            banner = f"=== tests.support: start #{self._start_count}, ports {ports} ==="
            log.write(banner.encode() + b"\n")
            log.flush()
            offset = log.tell()
            # The child keeps its own copy of the fd; ours closes with the block.
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._workdir,
                env=self._env(),
            )
        deadline = time.monotonic() + self._start_timeout
        pending = list(self._ready_ports())
        announced = False
        while True:
            rc = self._process.poll()
            if rc is not None:
                self._process = None
                new_output = self._log_bytes()[offset:].decode(errors="replace")
                if not self._started_once and "address already in use" in new_output.lower():
                    raise _PortInUseError
                raise BrokerStartError(
                    f"{self._kind} exited with status {rc} during start-up\n{self._log_tail()}"
                )
            announced = announced or bool(self._ready_marker.search(self._log_bytes()[offset:]))
            if announced:
                pending = [port for port in pending if not port_accepts(LOCALHOST, port)]
                if not pending:
                    return
            if time.monotonic() >= deadline:
                self.kill()
                waiting_for = (
                    f"accept connections on {LOCALHOST}:{pending}"
                    if announced
                    else f"log {self._ready_marker.pattern.decode()!r}"
                )
                raise BrokerStartError(
                    f"{self._kind} did not {waiting_for} within {self._start_timeout:g} s\n"
                    f"{self._log_tail()}"
                )
            time.sleep(_POLL_INTERVAL)


class Broker(_ProcessBroker):
    """A private ``mosquitto`` process.

    ``tls`` adds a second listener (server cert from the bundle, clients verified
    against its CA when ``require_certificate`` is true).  ``users`` turns off
    anonymous access and installs a password file; ``acl`` is the text of a
    mosquitto ACL file.  ``extra_config`` is appended verbatim to the global
    section.  Persistence is off: a restart forgets retained messages and
    sessions.
    """

    supports_mqtt5 = True
    _kind = "mosquitto"
    _ready_marker = re.compile(rb"mosquitto version \S+ running")

    def __init__(
        self,
        *,
        tls: CertBundle | None = None,
        require_certificate: bool = False,
        users: Mapping[str, str] | None = None,
        acl: str | None = None,
        extra_config: str = "",
        verbose: bool = False,
        workdir: str | os.PathLike[str] | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        if require_certificate and tls is None:
            raise ValueError("require_certificate needs a TLS listener (pass tls=CertBundle)")
        if users is not None and not users:
            raise ValueError("users must name at least one user (or be None for anonymous access)")
        super().__init__(workdir=workdir, start_timeout=start_timeout)
        self.tls = tls
        self.require_certificate = require_certificate
        self.users = dict(users) if users is not None else None
        self.acl = acl
        self.extra_config = extra_config
        self.verbose = verbose
        self._tls_port = free_port() if tls is not None else None
        self.config_path = self._workdir / "mosquitto.conf"

    @staticmethod
    def available() -> bool:
        """True when a ``mosquitto`` executable can be found."""
        return _which("mosquitto") is not None

    @property
    def has_tls(self) -> bool:
        return self._tls_port is not None

    @property
    def tls_port(self) -> int:
        """TLS listener port; raises if the broker was created without ``tls``."""
        if self._tls_port is None:
            raise RuntimeError("this broker has no TLS listener (create it with tls=CertBundle)")
        return self._tls_port

    @property
    def tls_url(self) -> str:
        """``mqtts://localhost:TLSPORT`` - ``localhost`` matches the server cert."""
        return f"mqtts://localhost:{self.tls_port}"

    def config_text(self) -> str:
        """The mosquitto.conf this broker runs with (for the current ports)."""
        lines = [
            "# generated by tests.support.broker",
            "per_listener_settings false",
            "persistence false",
            "log_dest stderr",
            "log_timestamp true",
            "connection_messages true",
        ]
        if self.verbose:
            lines.append("log_type all")
        else:
            lines += [f"log_type {kind}" for kind in ("error", "warning", "notice", "information")]
        if os.geteuid() == 0:
            lines.append("user root")
        lines.append(f"allow_anonymous {'false' if self.users else 'true'}")
        if self.users:
            lines.append(f"password_file {self._workdir / 'passwd'}")
        if self.acl is not None:
            lines.append(f"acl_file {self._workdir / 'acl'}")
        if self.extra_config:
            lines.append(self.extra_config.rstrip("\n"))
        lines += ["", f"listener {self._port} {LOCALHOST}"]
        if self.tls is not None:
            lines += [
                "",
                f"listener {self.tls_port} {LOCALHOST}",
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
                f"require_certificate {'true' if self.require_certificate else 'false'}",
            ]
        return "\n".join(lines) + "\n"

    def _command(self) -> list[str]:
        binary = _which("mosquitto")
        if binary is None:
            raise BrokerStartError("mosquitto executable not found on PATH")
        return [binary, "-c", str(self.config_path)]

    def _ready_ports(self) -> list[int]:
        return [self._port] if self._tls_port is None else [self._port, self._tls_port]

    def _pick_new_ports(self) -> None:
        self._port = free_port()
        if self._tls_port is not None:
            self._tls_port = free_port()

    def _prepare(self) -> None:
        if self.users:
            self._write_password_file(self._workdir / "passwd", self.users)
        if self.acl is not None:
            (self._workdir / "acl").write_text(self.acl.rstrip("\n") + "\n")
        self.config_path.write_text(self.config_text())

    @staticmethod
    def _write_password_file(path: Path, users: Mapping[str, str]) -> None:
        tool = _which("mosquitto_passwd")
        if tool is None:
            raise BrokerStartError("mosquitto_passwd not found on PATH; needed for users=...")
        path.unlink(missing_ok=True)
        for index, (user, password) in enumerate(users.items()):
            create = ["-c"] if index == 0 else []
            result = subprocess.run(
                [tool, *create, "-b", str(path), user, password],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                output = (result.stdout + result.stderr).strip()
                raise BrokerStartError(f"mosquitto_passwd failed for user {user!r}: {output}")


class EmbeddedBroker(_ProcessBroker):
    """amqtt broker in a child Python process: plain TCP, anonymous, MQTT 3.1.1 only.

    amqtt 0.12.1 accepts only protocol level 4; an MQTT 5 CONNECT is answered
    with CONNACK "unacceptable protocol version".  Use it where mosquitto is
    missing and the test needs no TLS, auth or MQTT 5 features.
    """

    supports_mqtt5 = False
    _kind = "amqtt"
    _ready_marker = re.compile(rb"READY amqtt")

    @staticmethod
    def available() -> bool:
        """True when amqtt is installed for this interpreter (the runner uses it too)."""
        return importlib.util.find_spec("amqtt") is not None

    def _command(self) -> list[str]:
        # the demo's embedded broker, the same code the demo falls back to
        return [sys.executable, "-m", "simulators.demo", "--serve-amqtt", str(self._port)]

    def _env(self) -> dict[str, str]:
        path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
