"""The agent's CPU per reading, end to end, beside a bare pymodbus floor.

    python -m bench.run [--seconds 30] [--quick] [--output docs/performance.md]

Everything is real and every party is a process of its own: Modbus simulators
(``python -m simulators modbus --deterministic``), a private mosquitto on a free port, the
agent (``python -m edge_agent run``) and, in this process, a paho subscriber that counts
what arrives. Per scenario (1 and 10 devices of 200 float32 points polled every 100 ms):

1. the floor: a bare pymodbus loop in a subprocess, reading and struct-decoding the same
   registers at the same rate with nothing else (no buffer, no JSON, no MQTT);
2. the agent against the same simulators, publishing through the broker to the subscriber.

Each runs a warm-up, then a measured window. CPU is the delta of utime+stime of the
process (all threads) from /proc/PID/stat over the window, as the issue asks; because that
has a 10 ms resolution, the per-thread scheduler runtime (/proc/PID/task/*/schedstat, ns)
is read too, as a cross-check and for the 5 s sub-windows that show the spread. Readings
count as delivered when their message reaches the subscriber inside the window.

The machine has 2 cores and is shared: the simulators, mosquitto and the subscriber compete
with the agent, so their CPU, the whole machine's load and the hypervisor's steal time are
reported beside the figures. A benchmark, not a test: it exits 0 when a target is missed and
says so; it exits 1 only when a measurement could not be taken.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from bench.common import read_line, terminated_as_interrupt, verdict

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

POINTS = 200  # float32 points per device: the simulator's whole bench bank
BANK = 1000  # first holding register of the bench bank (value i at BANK + 2 * i)
INTERVAL = 0.1  # poll interval, seconds
TARGET_US = 6.0  # agent CPU per reading, at most
WARMUP = 3.0  # seconds after every device delivered, before the window opens
DEVICES_PER_SIM = 5  # one simulator process serves this many devices (one connection each)
IDLE_POINTS = 10
IDLE_INTERVAL = 1.0
IDLE_SECONDS = 10.0
HEAVY = ("asyncua", "numpy", "pymodbus")  # the import check reports these packages
IMPORT_CHECK = (
    "import edge_agent.app, sys; print(sorted(m for m in sys.modules "
    "if m.split('.')[0] in ('asyncua','numpy','pymodbus')))"
)


# ---- /proc accounting -----------------------------------------------------------------


@dataclass(frozen=True)
class ProcSample:
    """One look at a process: CPU (two ways) and context switches, all threads together."""

    ticks: int  # utime + stime, clock ticks
    sched_ns: int  # sum of the threads' scheduler runtime (ns); threads that ended are lost
    main_ns: int  # the main thread's (the agent's event loop) scheduler runtime (ns)
    switches: int  # voluntary + involuntary context switches of the live threads


def proc_sample(pid: int) -> ProcSample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    sched_ns = main_ns = switches = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            ns = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
            sched_ns += ns
            if tid == str(pid):
                main_ns = ns
            for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                if "ctxt_switches:" in line:
                    switches += int(line.split()[1])
    return ProcSample(ticks, sched_ns, main_ns, switches)


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB: resident now, and the peak."""
    values = {"VmRSS:": 0, "VmHWM:": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0] + ":"
        if key in values:
            values[key] = int(line.split()[1])
    return values["VmRSS:"], values["VmHWM:"]


@dataclass(frozen=True)
class MachineSample:
    busy: int  # jiffies summed over all cores: everything but idle, iowait and steal
    steal: int
    total: int


def machine_sample() -> MachineSample:
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = parts[:8]
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return MachineSample(total - idle - iowait - steal, steal, total)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# ---- child processes --------------------------------------------------------------------


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


def start_simulators(children: Children, count: int, logdir: Path) -> list[subprocess.Popen[bytes]]:
    sims = []
    for i in range(count):
        log = (logdir / f"sim-{i}.log").open("wb")
        sims.append(
            children.spawn(
                [PY, "-m", "simulators", "modbus", "--port", "0", "--deterministic"],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        )
        log.close()
    return sims


def simulator_port(sim: subprocess.Popen[bytes]) -> int:
    line = read_line(sim, 20.0)
    if not line.startswith("READY modbus "):
        raise RuntimeError(f"simulator did not report READY (got {line!r})")
    return int(line.rsplit(":", 1)[1])


# ---- the floor: a bare pymodbus loop (runs in a subprocess: python -m bench.run --floor) -


def floor_blocks() -> list[tuple[int, int]]:
    """The same requests the agent's planner makes: 62 float32 (124 registers) at most each,
    since a float32 may not straddle two requests of at most 125 registers."""
    per = 124
    total = 2 * POINTS
    return [(BANK + off, min(per, total - off)) for off in range(0, total, per)]


async def _floor(ports: list[int], devices: int, interval: float, out: str) -> None:
    """Poll until SIGTERM, then write what was done to `out` at once and wind down.

    The result is written before the poll tasks are stopped, and they are stopped with a
    flag rather than by cancellation alone: on Python 3.11 pymodbus' `asyncio.wait_for`
    drops a cancellation that coincides with a response (CPython gh-86296), so a single
    `cancel()` may not end a poll loop.
    """
    from pymodbus.client import AsyncModbusTcpClient

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    blocks = [
        (start, count, struct.Struct(f">{count}H"), struct.Struct(f">{count // 2}f"))
        for start, count in floor_blocks()
    ]
    clients = []
    for i in range(devices):
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=ports[i // DEVICES_PER_SIM], timeout=1.0, retries=0, name=f"d{i}"
        )
        if not await client.connect():
            raise SystemExit(f"floor: cannot connect to port {ports[i // DEVICES_PER_SIM]}")
        clients.append(client)
    done: list[list[float]] = [[] for _ in clients]
    skipped = [0] * devices
    errors: list[str] = []

    async def poll(i: int, client: AsyncModbusTcpClient) -> None:
        deadline = time.monotonic()
        sink = 0.0
        while not stop.is_set():
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                for start, count, regs, floats in blocks:
                    rr = await client.read_holding_registers(start, count=count, device_id=1)
                    sink += floats.unpack(regs.pack(*rr.registers))[-1]
            except Exception as err:
                errors.append(repr(err))
            else:
                done[i].append(time.monotonic())
            deadline += interval
            late = time.monotonic() - deadline
            if late >= 0:  # skip missed slots, as the agent's runner does
                missed = math.floor(late / interval) + 1
                skipped[i] += missed
                deadline += missed * interval

    print("READY", flush=True)
    pending = {asyncio.create_task(poll(i, c)) for i, c in enumerate(clients)}
    await stop.wait()
    result = {"done": done, "skipped": skipped, "errors": errors[:20], "error_count": len(errors)}
    _write_json(out, result)  # blocking, but the window is over: nothing is measured now
    for _ in range(20):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for client in clients:
        client.close()


def _write_json(path: str, data: object) -> None:
    Path(path).write_text(json.dumps(data))


def floor_main(ports: list[int], devices: int, interval: float, out: str) -> None:
    """Same event loop as the agent (uvloop where installed), so the floor is comparable."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(_floor(ports, devices, interval, out))
    else:
        uvloop.run(_floor(ports, devices, interval, out))


# ---- the subscriber -----------------------------------------------------------------------


@dataclass
class DeviceTally:
    messages: int = 0
    readings: int = 0
    bad: int = 0  # readings whose quality is not good
    last_seq: int | None = None
    seq_missing: int = 0  # numbers skipped over
    seq_repeated: int = 0  # numbers seen again, or going backwards
    last_ts: int | None = None
    late: int = 0  # gaps of 1.5 intervals or more between consecutive polls: late or skipped
    skips: list[tuple[int, int]] = field(default_factory=list)  # (ts after a gap, intervals)


class TelemetryCounter:
    """A paho subscriber (its own network thread) that counts telemetry instead of keeping it.

    Every message is parsed (orjson, as the agent itself uses) to check `seq` (+1 each, per
    device) and the poll `ts`: a gap of 1.5 intervals or more between consecutive polls of a
    device is a skipped slot, which is how drift shows from outside (the agent counts its
    skipped polls but does not log them). Arrivals are kept as (monotonic arrival time,
    device, poll ts, readings) so that any window can be counted afterwards.
    """

    def __init__(self, port: int, topic: str, interval: float) -> None:
        import orjson
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self._loads = orjson.loads
        self.topic = topic
        self.port = port
        self.interval_ms = interval * 1000
        self.tallies: dict[str, DeviceTally] = {}
        self.arrivals: list[tuple[float, str, int, int]] = []
        self.latencies_ms: list[float] = []  # arrival minus poll start, while `timing`
        self.timing = False
        self.errors: list[str] = []
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-sub-{os.getpid()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        self._client.connect("127.0.0.1", self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscriber: no SUBACK within 10 s")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def readings_between(self, t0: float, t1: float) -> int:
        """Readings that arrived between monotonic times t0 and t1."""
        return sum(n for t, _, _, n in list(self.arrivals) if t0 <= t < t1)

    def messages_between(self, t0: float, t1: float) -> int:
        return sum(1 for t, _, _, _ in list(self.arrivals) if t0 <= t < t1)

    def poll_times(self, wall0: float, wall1: float) -> dict[str, list[float]]:
        """Per device, the poll start times (seconds, from the payload ts) in a wall window."""
        out: dict[str, list[float]] = {}
        for _, device, ts, _ in list(self.arrivals):
            if wall0 * 1000 <= ts < wall1 * 1000:
                out.setdefault(device, []).append(ts / 1000)
        return out

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        wall_ms = time.time() * 1000
        try:
            data = self._loads(msg.payload)
            device, seq, ts, readings = data["device"], data["seq"], data["ts"], data["readings"]
        except (ValueError, KeyError, TypeError) as err:
            self.errors.append(f"{msg.topic}: {err!r}")
            return
        tally = self.tallies.setdefault(device, DeviceTally())
        tally.messages += 1
        tally.readings += len(readings)
        tally.bad += sum(1 for r in readings if r.get("q") != "good")
        if tally.last_seq is not None:
            if seq == tally.last_seq + 1:
                pass
            elif seq > tally.last_seq + 1:
                tally.seq_missing += seq - tally.last_seq - 1
            else:
                tally.seq_repeated += 1
        if tally.last_seq is None or seq > tally.last_seq:
            tally.last_seq = seq
        if tally.last_ts is not None and ts > tally.last_ts:
            slots = math.floor((ts - tally.last_ts) / self.interval_ms + 0.5) - 1
            if slots > 0:
                tally.late += 1
                tally.skips.append((ts, slots))
        tally.last_ts = ts
        self.arrivals.append((now, device, ts, len(readings)))
        if self.timing:
            self.latencies_ms.append(wall_ms - ts)

    def wait_devices(self, names: Sequence[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(n in self.tallies for n in names):
                return True
            time.sleep(0.05)
        return False


# ---- measurement ----------------------------------------------------------------------------


@dataclass
class Window:
    """What one measured window saw: the target process, its helpers and the machine."""

    seconds: float
    t0: float  # monotonic
    t1: float
    wall0: float  # the same instants on the wall clock, for the agent's epoch `ts`
    wall1: float
    target: tuple[ProcSample, ProcSample]
    others: dict[str, float]  # CPU seconds (schedstat) of the helpers, by role
    machine_busy: float  # fraction of all cores
    steal: float  # fraction of all cores
    samples: list[tuple[float, int]]  # (monotonic, target sched_ns), about every second

    @property
    def cpu_s(self) -> float:
        return (self.target[1].ticks - self.target[0].ticks) / CLK_TCK

    @property
    def sched_s(self) -> float:
        return (self.target[1].sched_ns - self.target[0].sched_ns) / 1e9

    @property
    def main_share(self) -> float:
        """The main thread's part of the process's CPU (the agent: its event loop)."""
        total = self.target[1].sched_ns - self.target[0].sched_ns
        return (self.target[1].main_ns - self.target[0].main_ns) / total if total else math.nan

    @property
    def switches(self) -> int:
        return self.target[1].switches - self.target[0].switches


def measure(seconds: float, target: int, helpers: dict[str, list[int]]) -> Window:
    def helper_ns() -> dict[str, int]:
        out: dict[str, int] = {}
        for role, pids in helpers.items():
            out[role] = 0
            for pid in pids:
                with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                    out[role] += proc_sample(pid).sched_ns
        return out

    h0, m0 = helper_ns(), machine_sample()
    t0, wall0, p0 = time.monotonic(), time.time(), proc_sample(target)
    samples = [(t0, p0.sched_ns)]
    end = t0 + seconds
    while (now := time.monotonic()) < end:
        time.sleep(min(1.0, end - now))
        samples.append((time.monotonic(), proc_sample(target).sched_ns))
    t1, wall1, p1 = time.monotonic(), time.time(), proc_sample(target)
    samples[-1] = (t1, p1.sched_ns)
    m1, h1 = machine_sample(), helper_ns()
    total = max(1, m1.total - m0.total)
    return Window(
        seconds=t1 - t0,
        t0=t0,
        t1=t1,
        wall0=wall0,
        wall1=wall1,
        target=(p0, p1),
        others={role: (h1[role] - h0[role]) / 1e9 for role in helpers},
        machine_busy=(m1.busy - m0.busy) / total,
        steal=(m1.steal - m0.steal) / total,
        samples=samples,
    )


def sub_window_length(seconds: float) -> float:
    return 5.0 if seconds >= 15 else 2.0


def sub_windows(window: Window, count: Callable[[float, float], int], length: float) -> list[float]:
    """CPU per reading (us, schedstat) in consecutive sub-windows of about `length` s."""
    out = []
    start = window.samples[0]
    for t, ns in window.samples[1:]:
        if t - start[0] >= length - 0.5:
            readings = count(start[0], t)
            if readings:
                out.append((ns - start[1]) / 1e3 / readings)
            start = (t, ns)
    return out


@dataclass
class Result:
    scenario: str
    role: str  # "agent" or "floor"
    devices: int
    points: int
    interval: float
    window: Window | None = None
    readings: int = 0
    messages: int = 0
    rss_kib: int = 0
    hwm_kib: int = 0
    spread_us: list[float] = field(default_factory=list)
    rates: dict[str, float] = field(default_factory=dict)  # readings/s per device, by poll times
    window_skipped: int = 0  # poll slots missing between consecutive polls in the window
    tallies: dict[str, DeviceTally] = field(default_factory=dict)
    skipped: int = 0  # floor: slots its own loop skipped
    latency_ms: list[float] = field(default_factory=list)
    log_counts: dict[str, int] = field(default_factory=dict)
    log_problems: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stop_s: float = 0.0
    hang: str = ""  # the stacks of an agent that did not stop on SIGTERM
    failure: str | None = None

    @property
    def expected(self) -> float:
        if self.window is None:
            return 0.0
        return self.devices * self.points * self.window.seconds / self.interval

    @property
    def us_per_reading(self) -> float:
        if self.window is None or not self.readings:
            return math.nan
        return self.window.cpu_s * 1e6 / self.readings

    @property
    def sched_us_per_reading(self) -> float:
        if self.window is None or not self.readings:
            return math.nan
        return self.window.sched_s * 1e6 / self.readings

    @property
    def nominal_rate(self) -> float:
        return self.points / self.interval

    @property
    def per_device_per_s(self) -> float:
        """The slowest device's readings per second, from its poll times in the window."""
        if len(self.rates) < self.devices:
            return math.nan
        return min(self.rates.values())

    @property
    def rate_ok(self) -> bool:
        """Every poll slot of the window polled and delivered: every device at the nominal
        rate (within 0.2 %), no skipped slot between its polls in the window, and over the
        whole run no lost or repeated seq and no bad reading.

        The count of arrivals in the window is not used: messages arrive in bursts (group
        commit) and late (latency can exceed the interval), so its edges may gain or lose a
        message per device without any poll being lost.
        """
        if self.window is None or not self.per_device_per_s >= 0.998 * self.nominal_rate:
            return False
        if self.window_skipped:
            return False
        if self.role == "floor":
            return True
        return (
            all(
                t.seq_missing == 0 and t.seq_repeated == 0 and t.bad == 0
                for t in self.tallies.values()
            )
            and len(self.tallies) == self.devices
        )


def skipped_in(times: dict[str, list[float]], interval: float) -> int:
    """Poll slots with no poll, from each device's poll times (seconds) in a window.

    The runner polls on a fixed grid (start + k * interval) and skips a slot only when a
    poll ends after the next slot began. Counting slots between the first and the last
    poll, less the polls seen, finds every skip; a poll that merely started late (the
    process was descheduled) still fills its slot and is not counted.
    """
    missing = 0
    for ts in times.values():
        if len(ts) >= 2:
            slots = round((max(ts) - min(ts)) / interval) + 1
            missing += max(0, slots - len(ts))
    return missing


def poll_rates(times: dict[str, list[float]], points: int) -> dict[str, float]:
    """Readings per second of each device from its poll times (seconds) in a window: the
    mean poll period, so that the edges of the window cannot add or remove a poll."""
    out = {}
    for device, ts in times.items():
        ts = sorted(ts)
        if len(ts) >= 2 and ts[-1] > ts[0]:
            out[device] = points * (len(ts) - 1) / (ts[-1] - ts[0])
    return out


def agent_config(
    path: Path,
    *,
    gateway: str,
    broker_port: int,
    buffer: Path,
    devices: list[tuple[str, int]],
    points: int,
    interval: float,
    timeout: float,
) -> None:
    import yaml

    cfg = {
        "gateway": {"id": gateway, "site": "bench"},
        "mqtt": {"url": f"mqtt://127.0.0.1:{broker_port}"},
        "buffer": {"path": str(buffer)},
        "log_level": "info",
        "devices": [
            {
                "name": name,
                "protocol": "modbus-tcp",
                "host": "127.0.0.1",
                "port": port,
                "unit_id": 1,
                "poll_interval": f"{round(interval * 1000)}ms",
                "timeout": f"{round(timeout * 1000)}ms",
                "points": [
                    {"name": f"v{i:03d}", "address": BANK + 2 * i, "type": "float32"}
                    for i in range(points)
                ],
            }
            for name, port in devices
        ],
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def scan_log(
    path: Path, start: int = 0, end: int | None = None
) -> tuple[dict[str, int], list[str]]:
    """Lines per level, and the distinct WARNING/ERROR/CRITICAL messages (and tracebacks),
    in bytes start..end of the log."""
    counts: dict[str, int] = {}
    problems: list[str] = []
    for line in path.read_bytes()[start:end].decode(errors="replace").splitlines():
        parts = line.split(" ", 3)
        level = parts[2] if len(parts) > 2 else ""
        if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            counts[level] = counts.get(level, 0) + 1
            if level in ("WARNING", "ERROR", "CRITICAL"):
                text = parts[3] if len(parts) > 3 else line
                if text not in problems:
                    problems.append(text)
        elif line.startswith("Traceback") or "Error" in line.split(":", 1)[0]:
            counts["other"] = counts.get("other", 0) + 1
            if line not in problems:
                problems.append(line)
    return counts, problems


class Bench:
    """Runs the scenarios one after the other and keeps their results.

    One private broker serves the whole run; simulators live for one scenario (floor and
    agent share them); every process started is stopped in `close()`, also on Ctrl-C.
    """

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.seconds: float = args.seconds
        self.workdir = workdir
        self.children = Children()
        self.broker: Any = None
        self.results: list[Result] = []

    # -- infrastructure --
    def start_broker(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.support.broker import Broker

        self.broker = Broker(workdir=self.workdir / "mosquitto").start()
        say(f"mosquitto on port {self.broker.port} (pid {self.broker.pid})")

    def close(self) -> None:
        self.children.stop_all()
        if self.broker is not None:
            self.broker.close()

    def helpers(self, sims: list[subprocess.Popen[bytes]]) -> dict[str, list[int]]:
        return {
            "simulators": [s.pid for s in sims],
            "mosquitto": [self.broker.pid] if self.broker.pid else [],
            "bench": [os.getpid()],
        }

    # -- scenarios --
    def throughput(self, devices: int) -> None:
        label = f"{devices} × {POINTS} @ {round(INTERVAL * 1000)} ms"
        nsims = math.ceil(devices / DEVICES_PER_SIM)
        logdir = self.workdir / f"d{devices}"
        logdir.mkdir()
        sims = start_simulators(self.children, nsims, logdir)
        try:
            ports = [simulator_port(s) for s in sims]
            say(f"[{label}] {nsims} simulator(s) on {ports}")
            self.results.append(self.run_floor(label, devices, ports, sims))
            self.results.append(
                self.run_agent(label, devices, POINTS, INTERVAL, ports, sims, self.seconds)
            )
        finally:
            for sim in sims:
                self.children.stop(sim)

    def idle(self) -> None:
        label = f"idle: 1 × {IDLE_POINTS} @ {IDLE_INTERVAL:g} s"
        logdir = self.workdir / "idle"
        logdir.mkdir()
        sims = start_simulators(self.children, 1, logdir)
        try:
            ports = [simulator_port(sims[0])]
            self.results.append(
                self.run_agent(label, 1, IDLE_POINTS, IDLE_INTERVAL, ports, sims, IDLE_SECONDS)
            )
        finally:
            self.children.stop(sims[0])

    def run_floor(
        self, label: str, devices: int, ports: list[int], sims: list[subprocess.Popen[bytes]]
    ) -> Result:
        result = Result(label, "floor", devices, POINTS, INTERVAL)
        say(f"[{label}] floor: bare pymodbus loop, warm-up {WARMUP:g} s, window {self.seconds:g} s")
        outfile = self.workdir / f"floor-{devices}.json"
        argv = [PY, "-m", "bench.run", "--floor", ",".join(map(str, ports)), str(devices)]
        argv.append(str(outfile))
        errlog = (self.workdir / f"floor-{devices}.log").open("wb")
        proc = self.children.spawn(argv, stdout=subprocess.PIPE, stderr=errlog)
        errlog.close()
        try:
            if read_line(proc, 30.0) != "READY":
                result.failure = "floor process did not start: " + self._tail(errlog.name)
                return result
            time.sleep(WARMUP)
            window = measure(self.seconds, proc.pid, self.helpers(sims))
            result.rss_kib, result.hwm_kib = memory_kib(proc.pid)
        finally:
            result.stop_s = self.children.stop(proc)
        result.exit_code = proc.returncode
        if not outfile.exists():
            result.failure = "floor process wrote no result: " + self._tail(errlog.name)
            return result
        data = json.loads(outfile.read_text())
        times = sorted(t for per_device in data["done"] for t in per_device)

        def count(a: float, b: float) -> int:
            return POINTS * sum(1 for t in times if a <= t < b)

        result.window = window
        in_window = {
            str(i): [t for t in per_device if window.t0 <= t < window.t1]
            for i, per_device in enumerate(data["done"])
        }
        result.rates = poll_rates(in_window, POINTS)
        result.window_skipped = skipped_in(in_window, INTERVAL)
        result.readings = count(window.t0, window.t1)
        result.messages = result.readings // POINTS
        result.skipped = sum(data["skipped"])
        if data["error_count"]:
            result.log_counts = {"ERROR": data["error_count"]}
            result.log_problems = data["errors"][:5]
        result.spread_us = sub_windows(window, count, self.chunk)
        say(self._line(result))
        return result

    def run_agent(
        self,
        label: str,
        devices: int,
        points: int,
        interval: float,
        ports: list[int],
        sims: list[subprocess.Popen[bytes]],
        seconds: float,
    ) -> Result:
        result = Result(label, "agent", devices, points, interval)
        tag = f"{len(self.results)}"
        gateway = f"gw-bench-{tag}"
        names = [f"dev{i:02d}" for i in range(devices)]
        config = self.workdir / f"agent-{tag}.yaml"
        agent_config(
            config,
            gateway=gateway,
            broker_port=self.broker.port,
            buffer=self.workdir / f"buffer-{tag}" / "buffer.db",
            devices=[(n, ports[i // DEVICES_PER_SIM]) for i, n in enumerate(names)],
            points=points,
            interval=interval,
            timeout=min(interval, 1.0),
        )
        counter = TelemetryCounter(
            self.broker.port, f"maintenance4/bench/{gateway}/+/telemetry", interval
        )
        counter.start()
        logpath = self.workdir / f"agent-{tag}.log"
        say(f"[{label}] agent, warm-up {WARMUP:g} s after the first message, window {seconds:g} s")
        log = logpath.open("wb")
        proc = self.children.spawn(
            [PY, "-m", "edge_agent", "run", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        try:
            if not counter.wait_devices(names, 30.0):
                result.failure = "not every device delivered within 30 s: " + self._tail(logpath)
                return result
            time.sleep(WARMUP)
            counter.timing = True
            window = measure(seconds, proc.pid, self.helpers(sims))
            counter.timing = False
            # Delivery is judged up to here: a profile taken next pauses the agent.
            tallies = {name: replace(t, skips=list(t.skips)) for name, t in counter.tallies.items()}
            log_end = logpath.stat().st_size
            if proc.poll() is not None:
                result.failure = f"agent exited ({proc.returncode}): " + self._tail(logpath)
                return result
            result.rss_kib, result.hwm_kib = memory_kib(proc.pid)
            if self.args.profile and not label.startswith("idle"):
                out = Path(self.args.profile) / f"agent-{devices}x{points}.txt"
                say(profile(proc.pid, out, min(seconds, 20.0)))
        finally:
            result.stop_s = self.children.stop(proc, on_overrun=self._hung(result))
            result.exit_code = proc.returncode
            counter.close()
        result.window = window
        in_window = counter.poll_times(window.wall0, window.wall1)
        result.rates = poll_rates(in_window, points)
        result.window_skipped = skipped_in(in_window, interval)
        result.readings = counter.readings_between(window.t0, window.t1)
        result.messages = counter.messages_between(window.t0, window.t1)
        result.tallies = tallies
        result.latency_ms = sorted(counter.latencies_ms)
        result.log_counts, result.log_problems = scan_log(logpath, 0, log_end)
        later = "while profiling or stopping" if self.args.profile else "while stopping"
        _, after = scan_log(logpath, log_end)
        result.log_problems += [f"({later}) {p}" for p in after]
        if counter.errors:
            result.log_problems += counter.errors[:3]
        result.spread_us = sub_windows(window, counter.readings_between, self.chunk)
        say(self._line(result))
        return result

    def _hung(self, result: Result) -> Callable[[int], None]:
        """What to do with an agent that ignores SIGTERM: keep its stacks for the report."""

        def dump(pid: int) -> None:
            spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
            text = "(install py-spy to see where it hangs)"
            if Path(spy).exists():
                proc = subprocess.run(
                    [spy, "dump", "--pid", str(pid)],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
                text = proc.stdout or proc.stderr
            result.hang = text
            say(f"agent {pid} still running 10 s after SIGTERM; its stacks:\n{text}")

        return dump

    @property
    def chunk(self) -> float:
        return sub_window_length(self.seconds)

    @staticmethod
    def _tail(path: str | Path, lines: int = 15) -> str:
        text = Path(path).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    @staticmethod
    def _line(r: Result) -> str:
        w = r.window
        assert w is not None
        return (
            f"    {r.role}: {r.readings:,} / {r.expected:,.0f} readings, CPU {w.cpu_s:.2f} s "
            f"({100 * w.cpu_s / w.seconds:.1f} % of a core) = {r.us_per_reading:.2f} us/reading "
            f"(schedstat {r.sched_us_per_reading:.2f}), RSS {r.rss_kib / 1024:.1f} MiB"
        )


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---- profiling (optional) -------------------------------------------------------------------


def profile(pid: int, out: Path, seconds: float) -> str:
    """Sample the agent with py-spy (native frames too) and summarise its event-loop thread.

    Runs after the measured window, so it cannot distort the figures. py-spy's own idle
    detection is unreliable here (threads blocked in a queue show as busy), so only the main
    thread is summarised, with samples parked in epoll dropped; /proc says how much of the
    agent's CPU that thread is (the "event loop" column). The raw collapsed stacks stay in
    `out` for a flame graph.
    """
    spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
    if not Path(spy).exists():
        return "profile: py-spy not found (pip install py-spy)"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [spy, "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "200"]
    argv += ["--native", "--threads", "--format", "raw", "--output", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.exists():
        return f"profile: py-spy failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not frames or "MainThread" not in frames[0] or "epoll_pwait" in stack:
            continue
        n = int(count)
        total += n
        names = [_frame(f) for f in frames[1:]]
        if names:
            own[names[-1]] = own.get(names[-1], 0) + n
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + n
    if not total:
        return f"profile: no samples of the main thread in {out}"
    lines = [f"profile of the event loop thread, {total} samples on CPU ({out}):", "  self:"]
    for name, n in sorted(own.items(), key=lambda kv: -kv[1])[:15]:
        lines.append(f"    {100 * n / total:5.1f} %  {name}")
    lines.append("  inclusive (edge_agent, pymodbus, paho):")
    ours = [
        kv
        for kv in inclusive.items()
        if any(k in kv[0] for k in ("edge_agent", "pymodbus", "paho"))
    ]
    for name, n in sorted(ours, key=lambda kv: -kv[1])[:25]:
        lines.append(f"    {100 * n / total:5.1f} %  {name}")
    return "\n".join(lines)


def _frame(frame: str) -> str:
    """`fn (/long/path/site-packages/pkg/mod.py:12)` -> `fn (pkg/mod.py)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3."):
        if marker in where:
            where = where.split(marker, 1)[1]
    return f"{name} ({where})"


# ---- the import check ----------------------------------------------------------------------


@dataclass
class ImportCheck:
    """Which heavy packages a Modbus-only agent has loaded, two ways.

    `modules`: the issue's command, `import edge_agent.app` only. The Modbus driver is
    imported lazily (drivers/registry.py), so this shows what the agent loads before it
    knows its config. `running`: the same once the drivers of a Modbus-only config are
    built, which is what the running agent holds.
    """

    modules: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)
    running_total: int = 0  # every module, for scale
    error: str = ""

    @staticmethod
    def packages(modules: list[str]) -> dict[str, int]:
        return {p: sum(1 for m in modules if m.split(".")[0] == p) for p in HEAVY}

    @property
    def clean(self) -> bool:
        """No OPC UA stack and no numpy, either way."""
        both = self.modules + self.running
        return not self.error and not any(m.split(".")[0] in ("asyncua", "numpy") for m in both)


IMPORT_RUNNING = (
    "import sys, json, edge_agent.app\n"
    "from edge_agent.config import load_config\n"
    "from edge_agent.drivers.registry import make_driver\n"
    "drivers = [make_driver(d) for d in load_config(sys.argv[1]).config.devices]\n"
    f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
    "print(json.dumps({'heavy': heavy, 'total': len(sys.modules)}))\n"
)


def import_check(config: Path) -> ImportCheck:
    def run(argv: list[str]) -> str:
        proc = subprocess.run(
            argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError((proc.stderr.strip().splitlines() or ["?"])[-1])
        return proc.stdout.strip()

    try:
        modules = ast.literal_eval(run([PY, "-c", IMPORT_CHECK]))
        running = json.loads(run([PY, "-c", IMPORT_RUNNING, str(config)]))
    except (RuntimeError, ValueError, SyntaxError) as err:
        return ImportCheck(error=str(err))
    return ImportCheck(modules, running["heavy"], running["total"])


# ---- the report ---------------------------------------------------------------------------------


def fmt_us(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} µs"


def pct(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.{digits}f} %"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"Python": platform.python_version()}
    for dist in ("pymodbus", "paho-mqtt", "uvloop", "orjson", "edge-agent"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "not installed"
    mosq = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if mosq:
        proc = subprocess.run([mosq, "-h"], capture_output=True, text=True, check=False)
        first = (proc.stdout or proc.stderr).splitlines()[:1]
        out["mosquitto"] = first[0].split("version", 1)[-1].strip() if first else "?"
    return out


def rate_why(r: Result) -> str:
    """Why the rate verdict failed, briefly ("" when it did not)."""
    if r.rate_ok or r.window is None:
        return ""
    why = []
    if r.window_skipped:
        why.append(f"{r.window_skipped} poll slot(s) skipped in the window")
    if not r.per_device_per_s >= 0.998 * r.nominal_rate:
        why.append("below the nominal rate")
    ts = r.tallies.values()
    lost = sum(t.seq_missing + t.seq_repeated for t in ts)
    if lost:
        why.append(f"{lost} seq number(s) lost or repeated")
    if bad := sum(t.bad for t in ts):
        why.append(f"{bad} bad reading(s)")
    if r.role == "agent" and len(r.tallies) < r.devices:
        why.append("a device never delivered")
    return ": " + ", ".join(why) if why else ""


def skip_moments(r: Result) -> list[tuple[int, int]]:
    """Late or skipped polls grouped in time: (first ts in ms, devices) per moment."""
    events = sorted((ts, device) for device, t in r.tallies.items() for ts, _ in t.skips)
    moments: list[tuple[int, set[str]]] = []
    for ts, device in events:
        if moments and ts - moments[-1][0] <= 100:
            moments[-1][1].add(device)
        else:
            moments.append((ts, {device}))
    return [(t, len(devices)) for t, devices in moments]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    return values[min(len(values) - 1, int(q * len(values)))]


def buffer_defaults() -> str:
    """The buffer settings the bench leaves at their defaults, as the config model has them."""
    try:
        from edge_agent.config.models import Buffer

        b = Buffer()
        return (
            f"`sync: {b.sync}`, `flush_interval: {round(b.flush_interval * 1000)}ms`, "
            f"`flush_messages: {b.flush_messages}`"
        )
    except Exception as err:  # a model being edited must not cost the report
        return f"defaults unknown: {err!r}"


def code_version() -> str:
    """The commit measured, and whether edge_agent/ differed from it (others edit it)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "edge_agent"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "commit unknown"
    return f"commit {head}" + (" + uncommitted changes in edge_agent/" if dirty else "")


def cores() -> int:
    """Logical processors listed in /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    return sum(1 for line in text.splitlines() if line.startswith("processor")) or (
        os.cpu_count() or 1
    )


def report(
    results: list[Result], imports: ImportCheck, command: str, seconds: float, started: dt.datetime
) -> tuple[str, bool, bool]:
    """The markdown document, and whether the CPU and the rate targets were met."""
    v = versions()
    loop = "uvloop " + v["uvloop"] if v["uvloop"] != "not installed" else "asyncio"
    load = os.getloadavg()
    main = [r for r in results if not r.scenario.startswith("idle")]
    agents = [r for r in main if r.role == "agent"]
    idle = next((r for r in results if r.scenario.startswith("idle")), None)
    cpu_met = bool(agents) and all(r.us_per_reading <= TARGET_US for r in agents)
    rate_met = bool(agents) and all(r.rate_ok for r in agents)
    ncores = cores()

    doc: list[str] = [
        "# Performance",
        "",
        f"Generated by `{command}` (from the repository root); do not edit by hand, run it "
        "again. What it measures and how: [bench/README.md](../bench/README.md).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {cpu_model()}, {ncores} cores (shared virtual machine) |",
        f"| Python | {v['Python']}, event loop {loop} |",
        f"| pymodbus | {v['pymodbus']} |",
        f"| paho-mqtt / orjson | {v['paho-mqtt']} / {v['orjson']} |",
        f"| mosquitto | {v.get('mosquitto', 'not found')} |",
        f"| edge-agent | {v['edge-agent']}, {code_version()} |",
        f"| Date | {started:%Y-%m-%d %H:%M} UTC |",
        f"| Load average at the end | {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} |",
        "",
        "## Verdict",
        "",
    ]
    for r in agents:
        doc.append(
            f"- {r.scenario}: {fmt_us(r.us_per_reading)} of agent CPU per reading (target "
            f"≤ {TARGET_US:g} µs: {verdict(r.us_per_reading <= TARGET_US)}); "
            f"{r.per_device_per_s:,.1f} of {r.nominal_rate:,.0f} readings per second per "
            f"device, slowest device ({verdict(r.rate_ok)}{rate_why(r)})."
        )
    for r in results:
        if r.failure:
            first = r.failure.splitlines()[0]
            doc.append(f"- {r.scenario} {r.role}: **measurement failed**: {first}")
    if idle is not None and idle.window is not None:
        idle_pct = idle.window.cpu_s / idle.window.seconds
        doc.append(
            f"- Idle ({idle.scenario.split(': ')[1]}): {pct(idle_pct, 2)} of one core "
            f"(target well under 1 %: {verdict(idle_pct < 0.01)})."
        )
    running = ImportCheck.packages(imports.running)
    doc.append(
        f"- A Modbus-only agent loads asyncua: {running['asyncua']} modules, numpy: "
        f"{running['numpy']}, pymodbus: {running['pymodbus']} ({verdict(imports.clean)})."
    )

    doc += [
        "",
        f"## Figures ({seconds:g} s windows)",
        "",
        "CPU is utime+stime of the process (all threads) over the window. Per reading, it is "
        "divided by the readings delivered in the window: for the agent, those whose message "
        "arrived at the subscriber; for the floor, those decoded. Readings per second is the "
        "slowest device's, from its poll times (mean period over the window), so drift shows "
        "and the window's edges do not. Spread: min–max over "
        f"{sub_window_length(seconds):g} s sub-windows (scheduler runtime, ns resolution). "
        "Event loop: the agent's main thread's share of its CPU (the rest is the SQLite "
        "buffer thread).",
        "",
        "| scenario | process | readings delivered / expected | readings/s per device | "
        "CPU, % of one core | CPU per reading | spread | event loop | RSS (peak) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in main:
        name = "agent" if r.role == "agent" else "floor: bare pymodbus"
        if r.window is None:
            doc.append(f"| {r.scenario} | {name} | failed | | | | | | |")
            continue
        w = r.window
        spread = f"{min(r.spread_us):.1f}–{max(r.spread_us):.1f} µs" if r.spread_us else "–"
        doc.append(
            f"| {r.scenario} | {name} | {r.readings:,} / {r.expected:,.0f} | "
            f"{r.per_device_per_s:,.1f} | {pct(w.cpu_s / w.seconds)} | "
            f"**{fmt_us(r.us_per_reading)}** | {spread} | "
            f"{pct(w.main_share, 0) if r.role == 'agent' else '–'} | "
            f"{r.rss_kib / 1024:.1f} MiB ({r.hwm_kib / 1024:.1f}) |"
        )
    pairs = [
        (f, a)
        for f in main
        for a in main
        if f.role == "floor"
        and a.role == "agent"
        and f.devices == a.devices
        and f.window
        and a.window
    ]
    if pairs:
        doc += ["", "The agent above the floor, per reading:", ""]
        for f, a in pairs:
            doc.append(
                f"- {a.scenario}: +{fmt_us(a.us_per_reading - f.us_per_reading)} "
                f"({a.us_per_reading / f.us_per_reading:.1f} × the floor)"
            )

    if idle is not None and idle.window is not None:
        w = idle.window
        doc += [
            "",
            f"## Idle ({idle.scenario.split(': ')[1]}, {w.seconds:.0f} s)",
            "",
            "| CPU, % of one core | wake-ups per second (context switches, all threads) | "
            "RSS (peak) |",
            "|---:|---:|---:|",
            f"| {pct(w.cpu_s / w.seconds, 2)} (scheduler: {pct(w.sched_s / w.seconds, 2)}) | "
            f"{w.switches / w.seconds:.0f} | "
            f"{idle.rss_kib / 1024:.1f} MiB ({idle.hwm_kib / 1024:.1f}) |",
        ]

    doc += [
        "",
        "## Delivery (agent)",
        "",
        "Checked at the subscriber from the messages' `seq` and poll `ts`, over the whole "
        "run (warm-up included) unless marked window; the agent counts its skipped polls "
        "but does not log them. Skipped polls: slots of the 100 ms grid between a device's "
        "first and last poll in the window that have no poll. Late or skipped: gaps of 1.5 "
        "intervals or more between consecutive polls of a device (a poll that starts more "
        "than half an interval late also makes one). Latency: arrival minus the poll's "
        f"`ts`, in the window; it includes the buffer's group commit ({buffer_defaults()}).",
        "",
        "| scenario | messages | seq missing / repeated | skipped polls (window) | "
        "late or skipped polls (run) | bad readings | "
        "latency p50 / p99 / max | log warnings, errors | SIGTERM → exit |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.role != "agent" or r.window is None:
            continue
        ts = r.tallies.values()
        lat = r.latency_ms
        doc.append(
            f"| {r.scenario} | {sum(t.messages for t in ts):,} | "
            f"{sum(t.seq_missing for t in ts)} / {sum(t.seq_repeated for t in ts)} | "
            f"{r.window_skipped} | {sum(t.late for t in ts)} | "
            f"{sum(t.bad for t in ts)} | "
            f"{percentile(lat, 0.5):.0f} / {percentile(lat, 0.99):.0f} / "
            f"{(lat[-1] if lat else math.nan):.0f} ms | "
            f"{r.log_counts.get('WARNING', 0)}, {r.log_counts.get('ERROR', 0)} | "
            f"{r.stop_s:.1f} s, exit {r.exit_code} |"
        )
    for r in results:
        if r.role == "agent" and (moments := skip_moments(r)):
            doc += [
                "",
                f"{r.scenario}: polls were late or skipped at {len(moments)} moment(s) of "
                "the run (devices within 100 ms of each other are one moment): "
                + ", ".join(
                    f"{dt.datetime.fromtimestamp(t / 1000, dt.UTC):%H:%M:%S.%f}"[:-3]
                    + f" ({n} device(s))"
                    for t, n in moments[:8]
                )
                + (", …" if len(moments) > 8 else "")
                + ". Many devices at one moment: the whole event loop stalled (a full "
                "garbage collection of the agent, or the process waiting for a CPU).",
            ]
    floors = [r for r in main if r.role == "floor" and r.window]
    if floors:
        doc += [
            "",
            "The floor's own loop skipped "
            + ", ".join(f"{r.skipped} slot(s) at {r.devices} device(s)" for r in floors)
            + ".",
        ]
    for r in results:
        if r.hang:
            doc += [
                "",
                f"{r.scenario}: the agent did not exit within 10 s of SIGTERM (killed); "
                "where it was:",
                "",
                "```",
                *r.hang.strip().splitlines()[:60],
                "```",
            ]
    problems = [(r, p) for r in results for p in r.log_problems]
    if problems:
        doc += ["", "Problems logged:", ""]
        doc += [f"- {r.scenario} {r.role}: `{p[:200]}`" for r, p in problems[:12]]

    doc += [
        "",
        "## The rest of the machine in each window",
        "",
        f"Everything below shares the {ncores} cores with the measured process; percentages "
        "are of one core. `others` is the machine's busy time minus the processes listed "
        "(other tenants of this machine, the kernel); `steal` is time the hypervisor gave to "
        "other virtual machines.",
        "",
        "| scenario | measured | simulators | mosquitto | bench (subscriber) | "
        "machine busy | others | steal | measured: context switches/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.window is None:
            continue
        w = r.window
        ours = (sum(w.others.values()) + w.sched_s) / w.seconds / ncores
        doc.append(
            f"| {r.scenario} | {r.role} | {pct(w.others['simulators'] / w.seconds)} | "
            f"{pct(w.others['mosquitto'] / w.seconds)} | {pct(w.others['bench'] / w.seconds)} | "
            f"{pct(w.machine_busy * ncores)} | {pct(max(0.0, w.machine_busy - ours) * ncores)} | "
            f"{pct(w.steal * ncores)} | {w.switches / w.seconds:,.0f} |"
        )

    doc += [
        "",
        "## Imports of a Modbus-only agent",
        "",
        "```",
        f'python -c "{IMPORT_CHECK}"',
        "```",
        "",
    ]
    if imports.error:
        doc.append(f"Failed: `{imports.error}`")
    else:
        doc.append(
            f"prints {imports.modules!r}: the Modbus driver, and pymodbus with it, is imported "
            "only when a config has a Modbus device (drivers/registry.py)."
            if not imports.modules
            else "prints "
            + ", ".join(f"{p}: {n}" for p, n in ImportCheck.packages(imports.modules).items())
            + " modules."
        )
        doc += [
            "",
            "Once the drivers of a Modbus-only config are built, as in the running agent: "
            + ", ".join(f"{p}: {n} modules" for p, n in running.items())
            + f" ({imports.running_total} modules in all).",
        ]

    doc += ["", "## Interpretation", ""]
    doc += interpretation(results, imports)
    doc += [
        "",
        "## Method",
        "",
        f"- One simulator process per {DEVICES_PER_SIM} devices "
        "(`python -m simulators modbus --port 0 --deterministic`); each device is a config "
        "entry of its own with its own TCP connection, as with real PLCs. A private "
        "mosquitto on a free port; a paho subscriber (QoS 1) in the bench process counts "
        "and checks every telemetry message.",
        f"- Agent config: {POINTS} float32 points per device at holding {BANK} + 2 i, "
        f"`poll_interval: {round(INTERVAL * 1000)}ms`, `timeout: {round(INTERVAL * 1000)}ms` "
        f"(it may not exceed the interval), buffer defaults ({buffer_defaults()}), MQTT 5 at "
        "QoS 1, log level info. The planner makes 4 requests per poll (124 + 124 + 124 + 28 "
        "registers).",
        "- Floor: one `AsyncModbusTcpClient` per device on the agent's event loop (uvloop), "
        "the same 4 requests, `struct` decoding, deadline-scheduled like the agent's runner; "
        "nothing else (no reading objects, JSON, buffer or MQTT).",
        f"- Warm-up {WARMUP:g} s (for the agent, after every device delivered its first "
        f"message), then a {seconds:g} s window. Expected readings = devices × points × "
        "window / interval. The rate counts as met when every device polled at ≥ 99.8 % of "
        "the nominal rate with no skipped slot in the window, and no seq was lost or "
        "repeated and no reading was bad in the whole run. (Arrivals in the window are "
        "bursty and may exceed or fall short of the expected count by a message per device "
        "at each edge; they are only the divisor of the CPU.)",
        f"- Idle: 1 device × {IDLE_POINTS} points every {IDLE_INTERVAL:g} s, "
        f"{IDLE_SECONDS:g} s window.",
        "- `python -m bench.run --keep` keeps the configs and logs of a run; `--profile DIR` "
        "attaches py-spy to the agent after each measured window (figures unaffected).",
    ]
    return "\n".join(doc) + "\n", cpu_met, rate_met


def interpretation(results: list[Result], imports: ImportCheck) -> list[str]:
    out: list[str] = []
    main = [r for r in results if not r.scenario.startswith("idle") and r.window]
    by = {(r.devices, r.role): r for r in main}
    for devices in sorted({r.devices for r in main}):
        a, f = by.get((devices, "agent")), by.get((devices, "floor"))
        if a is None or a.window is None:
            continue
        line = f"- {a.scenario}: the agent spends {fmt_us(a.us_per_reading)} of CPU per reading"
        if f is not None:
            line += (
                f", of which about {fmt_us(f.us_per_reading)} is what pymodbus alone costs to "
                "fetch and decode the registers (the floor); the other "
                f"{fmt_us(a.us_per_reading - f.us_per_reading)} are the agent's own work "
                "(reading objects, JSON, the SQLite buffer, MQTT)"
            )
        line += (
            f". {'Within' if a.us_per_reading <= TARGET_US else 'Above'} the {TARGET_US:g} µs "
            f"target. Its event loop does {pct(a.window.main_share, 0)} of that work."
        )
        out.append(line)
    a1, a10 = by.get((1, "agent")), by.get((10, "agent"))
    f1, f10 = by.get((1, "floor")), by.get((10, "floor"))
    if a1 and a10 and f1 and f10:
        out.append(
            f"- Per reading, 1 device costs {a1.us_per_reading / a10.us_per_reading:.1f} × "
            "what 10 devices cost, and the floor "
            f"{f1.us_per_reading / f10.us_per_reading:.1f} ×: the code per poll is the same, "
            "but a process that sleeps most of the time pays for waking (its own and the "
            "processes it talks to, on a virtual machine an exit to the hypervisor each) and "
            "for cold caches. 1 device is the harder case for the target, and its figures "
            "vary most from run to run."
        )
    agents = [r for r in main if r.role == "agent"]
    if agents:
        out.append(
            "- Polls kept their schedule: in the window every slot of every device was "
            "polled and delivered, in order, with no gap in `seq`."
            if all(r.rate_ok for r in agents)
            else "- Polls did not all keep their schedule"
            + "".join(f" ({r.scenario}{rate_why(r)})" for r in agents if not r.rate_ok)
            + ". A poll's 4 requests take a few ms; when the machine is busy (see the last "
            "table) the agent's event loop, which decodes every reading in Python, can fall "
            "behind (a full garbage collection, or the process waiting for a CPU) and its "
            "polls then start late or lose their slot."
        )
    idle = next((r for r in results if r.scenario.startswith("idle") and r.window), None)
    if idle is not None and idle.window is not None:
        w = idle.window
        share = w.cpu_s / w.seconds
        out.append(
            f"- Idle, the agent uses {pct(share, 2)} of one core and wakes about "
            f"{w.switches / w.seconds:.0f} times a second (event loop and buffer thread "
            "together): no busy loop."
            if share < 0.01
            else f"- Idle, the agent uses {pct(share, 2)} of one core: too much for a Raspberry Pi."
        )
    if not imports.error:
        out.append(
            "- A Modbus-only agent imports neither an OPC UA stack nor numpy."
            if imports.clean
            else "- A Modbus-only agent imports packages it does not need (see Imports)."
        )
    noisy = [r for r in results if r.window and r.window.steal > 0.01]
    out.append(
        "- These are one run's figures. This machine is shared: the load of other tenants "
        "(see the last table) changes over minutes, and with it the CPU time the same code "
        "takes (shared caches and cores); repeated runs of the same code have differed by "
        "about ±10 %. Judge a change by a few runs of each version, and by the agent's "
        "multiple of the floor measured in the same run."
        + (" The hypervisor also stole CPU in some windows." if noisy else "")
    )
    return out


# ---- entry point -----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="The agent's CPU per reading end to end, beside a bare pymodbus floor.",
    )
    parser.add_argument("--seconds", type=float, default=None, help="window (default 30)")
    parser.add_argument("--quick", action="store_true", help="8 s windows")
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "performance.md"), help="markdown report"
    )
    parser.add_argument("--keep", action="store_true", help="keep logs and configs")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="after each measured agent window, sample the agent with py-spy into DIR",
    )
    parser.add_argument(
        "--floor", nargs=3, metavar=("PORTS", "DEVICES", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 8.0 if args.quick else 30.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor:
        ports = [int(p) for p in args.floor[0].split(",")]
        floor_main(ports, int(args.floor[1]), INTERVAL, args.floor[2])
        return 0
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    if args.seconds != (8.0 if args.quick else 30.0):
        command += f" --seconds {args.seconds:g}"
    started = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    bench = Bench(args, workdir)
    imports = ImportCheck(error="not run")
    try:
        with terminated_as_interrupt():
            bench.start_broker()
            config = workdir / "imports.yaml"
            agent_config(
                config,
                gateway="gw-imports",
                broker_port=bench.broker.port,
                buffer=workdir / "imports.db",
                devices=[("dev00", 502)],
                points=POINTS,
                interval=INTERVAL,
                timeout=INTERVAL,
            )
            imports = import_check(config)
            for devices in (1, 10):
                bench.throughput(devices)
            bench.idle()
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    finally:
        bench.close()
        if args.keep:
            say(f"logs and configs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = any(r.failure for r in bench.results)
    doc, cpu_met, rate_met = report(bench.results, imports, command, args.seconds, started)
    print(doc)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(doc)
    say(f"written to {output}")
    say(
        f"CPU target (≤ {TARGET_US:g} µs per reading): {'MET' if cpu_met else 'MISSED'}; "
        f"rate ({POINTS * round(1 / INTERVAL):,}/{POINTS * round(1 / INTERVAL):,} readings "
        f"per second per device): {'MET' if rate_met else 'MISSED'}"
    )
    for r in bench.results:
        if r.failure:
            say(f"FAILED {r.scenario} {r.role}: {r.failure}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
