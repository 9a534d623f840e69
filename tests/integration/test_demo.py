"""The demo (`./scripts/demo`, i.e. `python -m simulators.demo`) end to end, as a user runs it.

Each test starts the real demo as a subprocess with stdout not a terminal, so it prints plain
snapshots of the table. The demo names every child it starts on stderr ("<name> (pid N)"); the
tests record each child's start time from /proc at once, so that after the demo has exited
they can tell "still there" (same pid, same start time, zombies included) from a reused pid.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHILD_LINE = re.compile(r"^demo: (.+?) \(pid (\d+)\) (?:ready|started)", re.M)
WORKDIR_LINE = re.compile(r"^demo: work dir (\S+)", re.M)
PUMP_101_PRESSURE = re.compile(r"^\s+discharge_pressure\s+(-?\d+\.\d+)\s+bar\s+good\b", re.M)
MOTOR_7_SPEED = re.compile(r"^\s+speed_rpm\s+(-?\d+\.\d+)\s+rpm\s+good\b", re.M)
MOTOR_7_WAVEFORM = re.compile(r"^\s+vibration_waveform\s+\[4096 values, rms [\d.]+\]", re.M)
MOTOR_7_INDICATORS = re.compile(r"^\s+indicators\s+de_bearing: velocity [\d.]+ mm/s", re.M)
SEQ = re.compile(r"last message seq (\d+)")

HAS_MOSQUITTO = any(
    shutil.which("mosquitto", path=p) for p in (None, "/usr/sbin", "/usr/local/sbin")
)
HAS_AMQTT = importlib.util.find_spec("amqtt") is not None
needs_a_broker = pytest.mark.skipif(
    not (HAS_MOSQUITTO or HAS_AMQTT), reason="neither mosquitto nor amqtt is installed"
)
needs_amqtt = pytest.mark.skipif(not HAS_AMQTT, reason="amqtt is not installed")
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (after the parenthesised name), None once the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rpartition(")")[2].split()[19]


class DemoRun:
    """The demo as a subprocess, its stdout and stderr merged and collected by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators.demo", *args],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.children: dict[int, tuple[str, str | None]] = {}  # pid -> (name, start time)
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                match = CHILD_LINE.match(line)
                if match:  # record at once, while the child is surely alive
                    pid = int(match.group(2))
                    self.children[pid] = (match.group(1), start_time(pid))
                with self._lock:
                    self._lines.append(line)

    @property
    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 20) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = pattern.search(self.output)
            if match:
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"{pattern.pattern!r} not in the demo's output:\n{self.output}")

    def wait(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code

    def child_pid(self, name: str) -> int:
        return next(pid for pid, (n, _) in self.children.items() if n == name)

    def leftovers(self) -> list[str]:
        """Children that still exist (zombies too): same pid *and* same start time."""
        return [
            f"{name} (pid {pid})"
            for pid, (name, started) in self.children.items()
            if started is not None and start_time(pid) == started
        ]

    def workdir(self) -> Path:
        match = WORKDIR_LINE.search(self.output)
        assert match, self.output
        return Path(match.group(1))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # the children get SIGTERM from the kernel (parent-death signal)
            self.proc.wait()
        self._reader.join(5)  # it closes the pipe at EOF


DemoFactory = Callable[..., DemoRun]


@pytest.fixture
def demo_factory() -> Iterator[DemoFactory]:
    runs: list[DemoRun] = []

    def factory(*args: str) -> DemoRun:
        run = DemoRun(*args)
        runs.append(run)
        return run

    yield factory
    for run in runs:
        run.kill()


def pump_101_blocks(output: str) -> list[str]:
    """The pump-101 section (title to the next blank line) of every snapshot."""
    return re.findall(r"^pump-101\b.*?(?=^\s*$)", output, re.M | re.S)


def motor_7_blocks(output: str) -> list[str]:
    """The motor-7 (OPC UA) section of every snapshot."""
    return re.findall(r"^motor-7\b.*?(?=^\s*$)", output, re.M | re.S)


def assert_live_and_clean(run: DemoRun, code: int) -> None:
    out = run.output
    assert code == 0, out
    blocks = pump_101_blocks(out)
    assert blocks, out
    assert all(PUMP_101_PRESSURE.search(block) for block in blocks), out
    # Messages kept coming: pump-101 is polled every second.
    assert max(int(m.group(1)) for b in blocks for m in SEQ.finditer(b)) >= 3, out
    # The OPC UA motor: a live value, the waveform in short, and (once due) its indicators.
    motor = motor_7_blocks(out)
    assert any(MOTOR_7_SPEED.search(block) for block in motor), out
    assert any(MOTOR_7_WAVEFORM.search(block) for block in motor), out
    assert any(MOTOR_7_INDICATORS.search(block) for block in motor), out
    assert "online" in out
    assert re.search(r"agent gw-demo-01 offline", out), "the agent did not say offline:\n" + out
    names = {name for name, _ in run.children.values()}
    assert names >= {"Modbus simulator", "OPC UA simulator", "edge agent"}
    assert len(run.children) == 4, out
    assert not run.leftovers(), out
    assert not run.workdir().exists()


@needs_a_broker
@needs_proc
def test_demo_shows_live_readings_and_stops_after_seconds(demo_factory: DemoFactory) -> None:
    run = demo_factory("--seconds", "8")
    code = run.wait()
    assert_live_and_clean(run, code)
    broker = "mosquitto" if HAS_MOSQUITTO else "amqtt"
    assert f"({broker})" in run.output


@needs_amqtt
@needs_proc
def test_demo_with_the_embedded_amqtt_broker(demo_factory: DemoFactory) -> None:
    run = demo_factory("--seconds", "8", "--embedded-broker")
    code = run.wait()
    assert_live_and_clean(run, code)
    assert "amqtt broker (pid" in run.output
    assert "(amqtt)" in run.output


@needs_a_broker
@needs_proc
def test_ctrl_c_stops_everything_and_exits_0(demo_factory: DemoFactory) -> None:
    run = demo_factory()
    run.wait_for(PUMP_101_PRESSURE)
    run.proc.send_signal(signal.SIGINT)
    code = run.wait()
    assert code == 0, run.output
    assert not run.leftovers(), run.output
    assert not run.workdir().exists()


@needs_a_broker
@needs_proc
def test_a_child_that_dies_is_named_and_the_demo_exits_1(demo_factory: DemoFactory) -> None:
    run = demo_factory()
    run.wait_for(re.compile(r"edge agent \(pid \d+\) started"))
    sim = run.child_pid("Modbus simulator")
    run.wait_for(PUMP_101_PRESSURE)
    os.kill(sim, signal.SIGKILL)
    code = run.wait()
    assert code == 1, run.output
    assert f"the Modbus simulator (pid {sim}) was killed by SIGKILL unexpectedly" in run.output
    assert "READY modbus" in run.output  # its log is shown
    assert not run.leftovers(), run.output
    assert not run.workdir().exists()
