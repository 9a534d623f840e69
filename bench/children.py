"""The processes a benchmark starts: simulators, the agent, servers, and the broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bench.common import PY, ROOT, read_line

if TYPE_CHECKING:
    from tests.support.broker import Broker


class Children:
    """Every process the bench starts (but the broker), each in a session of its own.

    A session of its own means Ctrl-C in the terminal reaches the bench only, which then
    stops the children in order in its `finally`; and one killpg ends a child together
    with anything it spawned.
    """

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def spawn(
        self,
        argv: Sequence[str],
        *,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
        stderr: int | IO[bytes] | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        self._procs.append(proc)
        return proc

    def stop(
        self,
        proc: subprocess.Popen[bytes],
        timeout: float = 10.0,
        on_overrun: Callable[[int], None] | None = None,
    ) -> float:
        """SIGTERM the process group, SIGKILL it after `timeout`; returns seconds taken.

        `on_overrun(pid)` runs before the SIGKILL, to look at a process that hangs.
        """
        started = time.monotonic()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if on_overrun is not None:
                    on_overrun(proc.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ProcessLookupError):  # stragglers in its group
            os.killpg(proc.pid, signal.SIGKILL)
        if proc in self._procs:
            self._procs.remove(proc)
        return time.monotonic() - started

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            self.stop(proc, timeout=3.0)


def spawn_agent(
    children: Children, config: Path, log: Path, *, stdout_too: bool = True
) -> subprocess.Popen[bytes]:
    """`python -m edge_agent run CONFIG`, logging to `log` (its stderr, and its stdout
    unless `stdout_too` is off)."""
    with log.open("wb") as out:
        return children.spawn(
            [PY, "-m", "edge_agent", "run", str(config)],
            stdout=out if stdout_too else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout_too else out,
        )


def tests_on_path() -> None:
    """The test suite's support code (brokers, proxies, ports) serves the benchmarks too."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def start_broker(workdir: Path, extra_config: str = "") -> Broker:
    """A private mosquitto on a free port, never the shared 1883."""
    tests_on_path()
    from tests.support.broker import Broker

    return Broker(workdir=workdir, extra_config=extra_config).start()


def start_simulator(children: Children, log: Path, flags: Sequence[str]) -> subprocess.Popen[bytes]:
    """`python -m simulators modbus --port 0 FLAGS`; simulator_port() reads its port."""
    argv = [PY, "-m", "simulators", "modbus", "--port", "0", *flags]
    with log.open("wb") as err:
        return children.spawn(argv, stdout=subprocess.PIPE, stderr=err)


def simulator_port(sim: subprocess.Popen[bytes]) -> int:
    line = read_line(sim, 20.0)
    if not line.startswith("READY modbus "):
        raise RuntimeError(f"simulator did not report READY (got {line!r})")
    return int(line.rsplit(":", 1)[1])
