"""The store-and-forward buffer under load: disk writes, throughput, a 10-minute backlog's drain.

    python -m bench.buffer [--quick] [--seconds 60] [--values drifting|fixed] [--profile DIR]
                           [--only writes|throughput|drain] [--dir DIR] [--keep] [--output F]

Issue 3's benchmark. Figures are printed and written to docs/performance-buffer.md; targets
are judged, never asserted: the command exits 0 when one is missed and says so, and 1 only
when a measurement could not be taken. Every party is real: a private mosquitto on a free
port (never the shared 1883), the Modbus simulator, the agent as a process
(``python -m edge_agent run``) and, in this process, a paho subscriber that checks `seq`.

The buffers live on a private ext4 file system in a loop-mounted image (root needed; else in
the temp dir, or `--dir`): its block device's counters then show what the buffer's writes
cost the disk, ext4's journal included, without the other tenants of this shared machine.

1. Disk writes per reading. The agent polls 1 device x 100 float32 every 100 ms (1,000
   readings/s), with `sync: full` and `normal`, once with the broker reachable (everything
   delivered and deleted) and once with the link cut (the backlog grows, nothing is
   deleted). The warm-up lasts until the WAL has reached its full size (the first
   checkpoint: a gateway that runs for months is in that state), then the window opens.
   write_bytes of /proc/<agent>/io over the window is divided by the readings delivered
   (link up: counted at the subscriber) or committed (link cut: rows of the buffer file
   whose commit time falls in the window). write_bytes is what the process made the kernel
   write to storage: it is counted when a page-cache page is dirtied, so it is page-granular
   (4 KiB, again after each fsync cleaned the page), unlike wchar, the bytes handed to
   write(). The journal ext4 writes for an fsync is not charged to the process: the device
   column has it.
2. Throughput. In this process, a SqliteBuffer (the agent's defaults but `sync`) takes
   agent-shaped telemetry messages as fast as it commits them (the producer keeps at most
   two group commits' worth queued, since put() never blocks): with no consumer (commit
   only), with a consumer that fetches and acks directly (the buffer alone), and with the
   agent's own MqttPublisher talking to the broker (delivered = successful PUBACKs). With a
   consumer the backlog is kept under DEPTH_CAP, so committed and delivered settle at the
   sustainable rate. Messages and readings per second over a window after a warm-up.
3. Drain. A buffer file is filled with 6,000 messages of 100 readings (10 minutes at
   1,000 readings/s, `seq` 1..6,000, timestamps of the last 10 minutes) through SqliteBuffer
   itself, with payloads made by the agent's Pipeline. The agent starts on it with the link
   cut (tests.support.proxy.CuttableProxy) and keeps polling the same device live; after a
   warm-up the link is restored. Drain time: from the agent's reconnection to the arrival at
   the subscriber of the last of seq 1..6,000 (every one checked). Drain speed = 600 s / drain
   time. RSS is sampled every 0.5 s from before the restore to the end of the drain.

Values: by default the simulator runs its slowly drifting bench bank (`--seed 1`), so the
payloads carry values such as 100.1274 that zlib compresses like real measurements (about
6x); `--values fixed` uses `--deterministic`, whose constant values compress much better and
flatter the disk figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import os
import platform
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from bench.common import read_line, terminated_as_interrupt, verdict

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")

SITE = "bench"
DEVICE = "d0"
POINTS = 100  # float32 points of the one device (the first half of the bench bank)
BANK = 1000  # first holding register of the simulator's bench bank
INTERVAL = 0.1  # poll interval, seconds
RATE = POINTS / INTERVAL  # readings per second: 1,000
BACKLOG_SECONDS = 600.0  # the outage the drain scenario replays: 10 minutes
BACKLOG_MESSAGES = round(BACKLOG_SECONDS / INTERVAL)  # 6,000 messages, 600,000 readings
WARMUP = 5.0  # seconds after the agent is up (and, link up, has delivered) before a window
WAL_AUTOCHECKPOINT = 1000  # SQLite's default: a checkpoint when the WAL holds this many pages
WAL_WAIT = 180.0  # seconds at most for the WAL to reach its full size
RSS_EVERY = 0.5  # seconds between RSS samples during the drain
SYNCS = ("full", "normal")
TARGET_SPEEDUP = 20.0  # drain at least this many times faster than real time
TARGET_RSS_MIB = 20.0  # RSS flat within this during the drain
TARGET_BYTES = 150.0  # bytes written per reading at 1,000 readings/s with sync: full, at most
DEPTH_CAP = 2000  # throughput with a consumer: the producer keeps the backlog under this
THROUGHPUT_MAX_SIZE = 2**32  # throughput: a cap the commit-only run cannot reach
MODES = ("commit", "local", "mqtt")
SCENARIOS = ("writes", "throughput", "drain")
EXPECTED_WHEN_CUT = (
    "WARNING edge_agent.publisher: MQTT: cannot connect",
    "WARNING edge_agent: stopping before the broker took everything",
)

T = TypeVar("T")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# ---- /proc and /sys ---------------------------------------------------------------------


def proc_io(pid: int | str = "self") -> dict[str, int]:
    """/proc/PID/io: rchar, wchar, syscr, syscw, read_bytes, write_bytes,
    cancelled_write_bytes; for the whole process (every thread, live or ended)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu_seconds(tid: int) -> float:
    """utime + stime of one thread of this process, seconds."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) in KiB: resident now, and the peak."""
    values = {"VmRSS": 0, "VmHWM": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in values:
            values[key] = int(line.split()[1])
    return values["VmRSS"], values["VmHWM"]


def maybe_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def machine_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of all cores together, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = parts
    total = user + nice + system + idle + iowait + irq + softirq + steal
    return total - idle - iowait - steal, steal, total


def machine_load(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[float, float]:
    """(busy, steal) between two samples, in cores (2.0 = both cores of a 2-core machine):
    everything that ran, the bench's own processes and other tenants alike."""
    total = max(1, b[2] - a[2])
    n = cores()
    return (b[0] - a[0]) / total * n, (b[1] - a[1]) / total * n


def device_stat(path: Path) -> Path | None:
    """The block device statistics file of the file system that holds `path`."""
    st = os.stat(path)
    stat = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/stat")
    return stat if stat.exists() else None


def device_written(stat: Path | None) -> int:
    """Bytes written to the device so far (sectors written x 512), by everybody."""
    if stat is None:
        return 0
    return int(stat.read_text().split()[6]) * 512


def journal_info(path: Path) -> Path | None:
    """/proc/fs/jbd2/<dev>-<n>/info of the ext4 file system that holds `path`."""
    real = os.path.realpath(path)
    best = ("", "")
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, point = line.split()[:2]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best[1]):
            best = (dev, point)
    name = Path(os.path.realpath(best[0])).name if best[0] else ""
    found = sorted(Path("/proc/fs/jbd2").glob(f"{name}-*/info")) if name else []
    return found[0] if found else None


def journal_commits(info: Path | None) -> int:
    """Transactions the ext4 journal committed since the mount (first line of the info)."""
    if info is None:
        return 0
    return int(info.read_text().split(None, 1)[0])


def wait_wal_full(db: Path, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the WAL has reached its full size: at the first checkpoint (after
    wal_autocheckpoint pages) SQLite starts writing it again from the top, and it no
    longer grows. Until then every fsync also commits ext4's journal (the file's size
    changes), which a gateway running for months does not pay: it is not steady state."""
    from edge_agent.buffer.store import PAGE_SIZE

    full = WAL_AUTOCHECKPOINT * (PAGE_SIZE + 24)
    wal = Path(f"{db}-wal")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            if wal.stat().st_size >= full:
                return True
        time.sleep(0.2)
    return False


def file_bytes(db: Path) -> int:
    """The buffer's size on disk: the database and its WAL."""
    total = 0
    for suffix in ("", "-wal"):
        with contextlib.suppress(FileNotFoundError):
            total += Path(f"{db}{suffix}").stat().st_size
    return total


def cores() -> int:
    return os.cpu_count() or 1


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return math.nan


def mount_of(path: Path) -> str:
    """'/dev/vda on / (ext4, rw,relatime,...)' for the file system that holds `path`."""
    best: tuple[str, str, str, str] | None = None
    real = os.path.realpath(path)
    for line in Path("/proc/mounts").read_text().splitlines():
        dev, point, fstype, opts = line.split()[:4]
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) > len(best[1])):
            best = (dev, point, fstype, opts)
    if best is None:
        return "unknown"
    dev, point, fstype, opts = best
    return f"{dev} on {point} ({fstype}, {opts})"


class ScratchDisk:
    """A private ext4 file system in a loop-mounted image, for the buffers.

    Its block device's statistics then count exactly what the buffer's writes cost the
    disk (data, metadata and the ext4 journal that an fsync forces), and nothing of the
    other tenants of this shared machine, whose writes land on /dev/vda too. The inode
    tables and the journal are initialised by mkfs, so that no lazy-init thread writes in
    the background during a window. Without root or loop devices the buffers go to the
    temp dir and the device column then shows the whole disk.
    """

    def __init__(self, workdir: Path, size: int = 3 * 2**30) -> None:
        self.image = workdir / "scratch.img"
        self.mnt = workdir / "scratch"
        self.size = size
        self.mounted = False
        self.why_not = ""

    def mount(self) -> bool:
        def sh(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(argv, capture_output=True, text=True, check=False)

        if os.geteuid() != 0 or not all(shutil.which(t) for t in ("mkfs.ext4", "mount")):
            self.why_not = "mounting an ext4 image needs root, mkfs.ext4 and mount"
            return False
        self.mnt.mkdir()
        with self.image.open("wb") as f:
            f.truncate(self.size)
        mkfs = sh(
            "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0", str(self.image)
        )
        if mkfs.returncode:
            self.why_not = f"mkfs.ext4 failed: {mkfs.stderr.strip()}"
            return False
        mount = sh("mount", "-o", "loop", str(self.image), str(self.mnt))
        if mount.returncode:
            self.why_not = f"cannot loop-mount an ext4 image: {mount.stderr.strip()}"
            return False
        self.mounted = True
        return True

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.mnt)], capture_output=True, check=False)
            self.mounted = False
        with contextlib.suppress(FileNotFoundError):
            self.image.unlink()


# ---- child processes --------------------------------------------------------------------


class Children:
    """Every process the bench starts (but the broker), each in a session of its own, so
    that Ctrl-C reaches the bench only (which then stops them in its `finally`) and one
    killpg ends a child with whatever it spawned."""

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

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> float:
        """SIGTERM the process group, SIGKILL after `timeout`; returns the seconds taken."""
        started = time.monotonic()
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
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


def run_async(coro: Awaitable[T]) -> T:
    """Run on the agent's event loop (uvloop where installed), as the agent does."""

    async def main() -> T:
        return await coro

    try:
        import uvloop
    except ImportError:
        return asyncio.run(main())
    return uvloop.run(main())


# ---- telemetry like the agent's ---------------------------------------------------------


def shortest_float32(value: float) -> float:
    """The value as the agent's Modbus driver publishes a float32: the shortest decimal that
    is the same float32 (edge_agent/drivers/modbus/decode.py)."""
    exact = struct.pack(">f", value)
    wide = struct.unpack(">f", exact)[0]
    for digits in (7, 8):
        candidate = float(f"{wide:.{digits}g}")
        if struct.pack(">f", candidate) == exact:
            return candidate
    return float(wide)


def bank_values(elapsed: float, fixed: bool) -> list[float]:
    """What the simulator serves in the first POINTS floats of its bench bank."""
    from simulators.register_map import bench_values

    raw = bench_values(None if fixed else elapsed)[:POINTS]
    return [shortest_float32(v) for v in raw]


def telemetry(
    prefix: str, count: int, fixed: bool, first_ts_ms: int, sink: Callable[[Any], None]
) -> None:
    """`count` telemetry messages of DEVICE, one per poll slot from `first_ts_ms`, made by
    the agent's own Pipeline (seq, JSON) from the simulator's values; handed to `sink`."""
    from edge_agent.pipeline import Pipeline
    from edge_agent.readings import Batch, Quality, Reading

    pipeline = Pipeline(prefix, 1, sink, {})
    names = [f"v{i:03d}" for i in range(POINTS)]
    step = round(INTERVAL * 1000)
    for n in range(count):
        ts = first_ts_ms + n * step
        values = bank_values(n * INTERVAL, fixed)
        pipeline.emit(
            Batch(
                DEVICE,
                ts,
                [Reading(name, v, Quality.GOOD, ts) for name, v in zip(names, values, strict=True)],
            )
        )


def payload_sizes(fixed: bool) -> tuple[float, float]:
    """Mean JSON size and mean stored (zlib) size of a telemetry message, bytes."""
    from edge_agent.buffer.store import encode

    out: list[Any] = []
    telemetry(f"maintenance4/{SITE}/gw", 50, fixed, 1_790_000_000_000, out.append)
    raw = sum(len(m.payload) for m in out) / len(out)
    stored = sum(len(encode(m.payload)[1]) for m in out) / len(out)
    return raw, stored


# ---- the subscriber -----------------------------------------------------------------------


@dataclass
class Tally:
    """What arrived of one device's telemetry."""

    messages: int = 0
    readings: int = 0
    seqs: set[int] = field(default_factory=set)
    repeated: int = 0  # a seq seen again
    target: int = 0  # seq 1..target is the backlog being drained
    target_got: int = 0
    complete_at: float | None = None  # monotonic: the last of seq 1..target arrived

    @property
    def missing(self) -> int:
        """Numbers absent between 1 (or the first seen) and the highest seen."""
        if not self.seqs:
            return self.target
        low = 1 if self.target else min(self.seqs)
        return max(self.seqs) - low + 1 - len(self.seqs)


class TelemetrySubscriber:
    """A paho subscriber (QoS 1, its own network thread) that checks every telemetry message
    (orjson, as the agent uses) and keeps (arrival, device, seq, poll ts, readings)."""

    def __init__(self, port: int, topic: str) -> None:
        import orjson
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self._loads = orjson.loads
        self.port = port
        self.topic = topic
        self.tallies: dict[str, Tally] = {}
        self.arrivals: list[tuple[float, float, str, int, int, int]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-buffer-sub-{os.getpid()}-{time.monotonic_ns()}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def expect_backlog(self, device: str, upto: int) -> None:
        self.tallies.setdefault(device, Tally()).target = upto

    def start(self) -> TelemetrySubscriber:
        self._client.connect("127.0.0.1", self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("subscriber: no SUBACK within 10 s")
        return self

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def tally(self) -> Tally:
        with self._lock:
            return self.tallies.setdefault(DEVICE, Tally())

    def readings_between(self, t0: float, t1: float) -> int:
        with self._lock:
            return sum(n for t, _, _, _, _, n in self.arrivals if t0 <= t < t1)

    def wait_first(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.arrivals:
                return True
            time.sleep(0.05)
        return False

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now, wall = time.monotonic(), time.time()
        try:
            data = self._loads(msg.payload)
            device, seq, ts, n = data["device"], data["seq"], data["ts"], len(data["readings"])
        except (ValueError, KeyError, TypeError) as err:
            self.errors.append(f"{msg.topic}: {err!r}")
            return
        with self._lock:
            t = self.tallies.setdefault(device, Tally())
            t.messages += 1
            t.readings += n
            if seq in t.seqs:
                t.repeated += 1
            else:
                t.seqs.add(seq)
                if seq <= t.target:
                    t.target_got += 1
                    if t.target_got == t.target:
                        t.complete_at = now
            self.arrivals.append((now, wall, device, seq, ts, n))


# ---- the agent as a process -----------------------------------------------------------------


def write_config(
    path: Path,
    *,
    gateway: str,
    url: str,
    buffer: Path,
    sync: str,
    sim_port: int,
    fast_reconnect: bool,
) -> None:
    """A config with the one device: POINTS float32 every 100 ms; buffer defaults but path
    and sync. `fast_reconnect`: the drain must not wait for a long backoff after the
    restore (the default caps it at 60 s)."""
    import yaml  # type: ignore[import-untyped]

    mqtt: dict[str, Any] = {"url": url}
    if fast_reconnect:
        mqtt |= {"reconnect_delay": "100ms", "reconnect_delay_max": "500ms"}
    cfg = {
        "gateway": {"id": gateway, "site": SITE},
        "mqtt": mqtt,
        "buffer": {"path": str(buffer), "sync": sync},
        "log_level": "info",
        "devices": [
            {
                "name": DEVICE,
                "protocol": "modbus-tcp",
                "host": "127.0.0.1",
                "port": sim_port,
                "unit_id": 1,
                "poll_interval": f"{round(INTERVAL * 1000)}ms",
                "timeout": f"{round(INTERVAL * 1000)}ms",
                "points": [
                    {"name": f"v{i:03d}", "address": BANK + 2 * i, "type": "float32"}
                    for i in range(POINTS)
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def wait_log(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(FileNotFoundError):
            if text in path.read_text(errors="replace"):
                return True
        time.sleep(0.05)
    return False


def scan_log(path: Path) -> tuple[Counter[str], list[str]]:
    """Lines per level, and the distinct WARNING/ERROR/CRITICAL messages and tracebacks.
    The agent logs `date time LEVEL logger: message`."""
    counts: Counter[str] = Counter()
    problems: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split(" ", 3)
            level = parts[2] if len(parts) > 2 else ""
            if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
                counts[level] += 1
                if level != "INFO" and level != "DEBUG":
                    text = f"{level} {parts[3] if len(parts) > 3 else ''}"
                    if text not in problems:
                        problems.append(text)
            elif line.startswith("Traceback"):
                counts["traceback"] += 1
                problems.append(line)
    return counts, problems


def committed_between(db: Path, wall0: float, wall1: float) -> tuple[int, int]:
    """(messages, readings) of the rows committed between two wall-clock instants, from a
    stopped agent's buffer file (`created_ms` is the commit time). Every telemetry message
    of the bench carries POINTS readings."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        n = con.execute(
            "SELECT count(*) FROM messages WHERE created_ms >= ? AND created_ms < ? "
            "AND topic LIKE '%/telemetry'",
            (round(wall0 * 1000), round(wall1 * 1000)),
        ).fetchone()[0]
    finally:
        con.close()
    return n, n * POINTS


# ---- results ------------------------------------------------------------------------------


@dataclass
class LogSummary:
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    exit_code: int | None = None
    stop_s: float = 0.0

    @property
    def warnings(self) -> int:
        return self.counts["WARNING"]

    @property
    def errors(self) -> int:
        return self.counts["ERROR"] + self.counts["CRITICAL"] + self.counts["traceback"]

    def unexpected(self, link_cut: bool) -> list[str]:
        """Problems other than those the cut link causes on purpose: the broker is
        unreachable, and at the stop what is buffered stays buffered."""
        return [p for p in self.problems if not (link_cut and p.startswith(EXPECTED_WHEN_CUT))]


@dataclass
class WriteRun:
    """Scenario 1: the agent at 1,000 readings/s, link up or cut."""

    sync: str
    link: str  # "up" or "cut"
    seconds: float = 0.0
    readings: int = 0  # delivered (up) or committed (cut) in the window
    messages_total: int = 0  # telemetry messages at the subscriber over the whole run
    seq_missing: int = 0
    seq_repeated: int = 0
    write_bytes: int = 0
    wchar: int = 0
    cancelled: int = 0
    syscw: int = 0
    device_bytes: int = 0  # the buffer's block device (the whole disk without the scratch one)
    journal_commits: int = 0  # ext4 journal transactions in the window; -1: unknown
    warmup_s: float = 0.0  # agent start -> window
    machine: tuple[float, float] = (math.nan, math.nan)  # busy, steal: cores
    cpu_s: float = 0.0
    rss_kib: int = 0
    db_bytes: int = 0  # database + WAL at the end of the window
    log: LogSummary = field(default_factory=LogSummary)
    failure: str | None = None

    @property
    def label(self) -> str:
        return f"sync: {self.sync}, " + ("link up" if self.link == "up" else "link cut")

    @property
    def expected(self) -> float:
        return RATE * self.seconds

    def per_reading(self, value: float) -> float:
        return value / self.readings if self.readings else math.nan

    @property
    def bytes_per_reading(self) -> float:
        return self.per_reading(self.write_bytes)

    @property
    def delivery_ok(self) -> bool:
        return self.link == "cut" or (self.seq_missing == 0 and self.seq_repeated == 0)


@dataclass
class ThroughputRun:
    """Scenario 2: one SqliteBuffer in this process, as fast as it commits."""

    sync: str
    mode: str  # "commit": no consumer; "local": fetch + ack here; "mqtt": MqttPublisher
    seconds: float = 0.0
    committed: int = 0  # messages in the window
    delivered: int = 0  # acked (local) or PUBACKed (mqtt) in the window
    commits: int = 0
    commit_s: float = 0.0
    cpu_s: float = 0.0  # this process, all threads
    buffer_cpu_s: float = 0.0  # the buffer's thread
    broker_cpu_s: float = 0.0
    write_bytes: int = 0
    depth_end: int = 0
    machine: tuple[float, float] = (math.nan, math.nan)  # busy, steal: cores
    failure: str | None = None

    @property
    def label(self) -> str:
        what = {
            "commit": "commit only",
            "local": "commit, fetch + ack",
            "mqtt": "commit, MqttPublisher → mosquitto",
        }
        return f"sync: {self.sync}, {what[self.mode]}"

    def rate(self, n: int) -> float:
        return n / self.seconds if self.seconds else math.nan


@dataclass
class DrainRun:
    """Scenario 3: the agent drains a 10-minute backlog."""

    sync: str
    prefill_s: float = 0.0
    backlog_bytes: int = 0  # database + WAL with the backlog, before the agent starts
    restore_to_connect_s: float = math.nan
    drain_s: float = math.nan  # reconnection -> last backlog message at the subscriber
    caught_up_s: float = math.nan  # reconnection -> first live message under 1 s old
    extra_messages: int = 0  # polled live during the cut, queued behind the backlog
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s since restore, KiB)
    hwm_kib: int = 0
    cpu_s: float = 0.0  # agent, over the drain
    broker_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0  # this process: the subscriber
    write_bytes: int = 0  # agent, over the drain (the deletes)
    backlog_got: int = 0
    messages_total: int = 0
    seq_missing: int = 0
    seq_repeated: int = 0
    log: LogSummary = field(default_factory=LogSummary)
    profile: list[str] = field(default_factory=list)
    machine: tuple[float, float] = (math.nan, math.nan)  # busy, steal: cores
    failure: str | None = None

    @property
    def label(self) -> str:
        return f"drain, sync: {self.sync}"

    @property
    def speed(self) -> float:
        return BACKLOG_SECONDS / self.drain_s if self.drain_s > 0 else math.nan

    @property
    def complete(self) -> bool:
        return self.backlog_got == BACKLOG_MESSAGES

    def rss_during(self) -> list[int]:
        return [kib for _, kib in self.rss]

    @property
    def rss_delta_mib(self) -> float:
        values = self.rss_during()
        return (max(values) - min(values)) / 1024 if values else math.nan


# ---- scenario 2: throughput, in this process --------------------------------------------------


def buffer_defaults() -> tuple[float, int]:
    """flush_interval and flush_messages as the agent's config defaults them."""
    from edge_agent.config.models import Buffer

    defaults = Buffer()  # type: ignore[call-arg]
    return float(defaults.flush_interval), int(defaults.flush_messages)


async def fill(buffer: Any, messages: Sequence[Any], keep_queued: int) -> None:
    """Put `messages`, keeping at most `keep_queued` not yet committed (put() never blocks,
    so a producer faster than the commits would only grow the queue)."""
    committed = asyncio.Event()
    buffer.on_commit(committed.set)
    base = buffer.stats.committed
    for i, m in enumerate(messages):
        while i - (buffer.stats.committed - base) - buffer.stats.lost >= keep_queued:
            committed.clear()
            await wait_event(committed, 1.0)
        buffer.put(m)
    await buffer.flush()


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for `event` at most `timeout` seconds. asyncio.timeout rather than wait_for: on
    Python 3.11 wait_for may swallow a cancellation that coincides with the event
    (CPython gh-86296), and a loop around it would then never end."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


async def throughput(
    path: Path,
    sync: str,
    mode: str,
    warmup: float,
    seconds: float,
    broker: Any,
    pool: Sequence[Any],
) -> ThroughputRun:
    """One throughput run (see ThroughputRun.mode). The producer keeps at most two group
    commits' worth of messages queued: put() never blocks, so an unbounded producer would
    only measure the queue. With a consumer it also keeps the backlog under DEPTH_CAP, so
    that committed and delivered settle at the sustainable rate."""
    from edge_agent.buffer import SqliteBuffer
    from edge_agent.config.models import Mqtt
    from edge_agent.publisher import MqttPublisher
    from edge_agent.readings import Message

    result = ThroughputRun(sync, mode)
    flush_interval, flush_messages = buffer_defaults()
    buf = SqliteBuffer(
        path,
        sync=sync,
        flush_interval=flush_interval,
        flush_messages=flush_messages,
        max_size=THROUGHPUT_MAX_SIZE,  # the commit-only run must not reach the cap
    )
    await buf.open()
    tid = next(t.native_id for t in threading.enumerate() if t.name == "buffer" and t.native_id)
    produced = asyncio.Event()
    consumed = asyncio.Event()
    buf.on_commit(produced.set)
    buf.on_commit(consumed.set)
    keep_queued = 2 * flush_messages
    depth_cap = DEPTH_CAP if mode != "commit" else 1 << 62
    running = True
    puts = 0

    async def produce() -> None:
        nonlocal puts
        while running:
            st = buf.stats
            if st.depth >= depth_cap:  # commits of acks alone do not notify: poll
                await asyncio.sleep(0.005)
                continue
            if puts - st.committed - st.lost >= keep_queued:
                produced.clear()
                await wait_event(produced, 0.2)
                continue
            m = pool[puts % len(pool)]
            puts += 1
            buf.put(Message(m.topic, m.payload, m.qos, m.device, puts))
            if puts % 50 == 0:
                await asyncio.sleep(0)

    async def consume() -> None:
        cursor = 0
        while running:
            consumed.clear()
            rows = await buf.fetch(cursor, flush_messages)
            if rows:
                cursor = rows[-1].id
                buf.ack([r.id for r in rows])
            else:
                await wait_event(consumed, 0.5)

    publisher: Any = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if mode == "mqtt":
            publisher = MqttPublisher(
                Mqtt(url=broker.url),  # type: ignore[call-arg]
                f"bench-throughput-{sync}",
                f"maintenance4/{SITE}/gw-throughput-{sync}",
                buf,
                version="bench",
            )
            tasks.append(asyncio.create_task(publisher.run()))
            for _ in range(200):
                if publisher.connected:
                    break
                await asyncio.sleep(0.05)
            else:
                result.failure = "the publisher did not connect to the broker within 10 s"
                return result
        elif mode == "local":
            tasks.append(asyncio.create_task(consume()))
        tasks.append(asyncio.create_task(produce()))

        def delivered() -> int:
            return publisher.published if publisher is not None else buf.stats.acked

        def sample() -> tuple[float, int, int, int, float, float, float, float, int]:
            st = buf.stats
            return (
                time.monotonic(),
                st.committed,
                delivered(),
                st.commits,
                st.commit_seconds,
                cpu_seconds(),
                thread_cpu_seconds(tid),
                maybe_cpu(broker.pid),
                proc_io()["write_bytes"],
            )

        await asyncio.sleep(warmup)
        s0, m0 = sample(), machine_jiffies()
        await asyncio.sleep(seconds)
        s1, m1 = sample(), machine_jiffies()
        result.machine = machine_load(m0, m1)
        result.seconds = s1[0] - s0[0]
        result.committed = s1[1] - s0[1]
        result.delivered = s1[2] - s0[2]
        result.commits = s1[3] - s0[3]
        result.commit_s = s1[4] - s0[4]
        result.cpu_s = s1[5] - s0[5]
        result.buffer_cpu_s = s1[6] - s0[6]
        result.broker_cpu_s = s1[7] - s0[7]
        result.write_bytes = s1[8] - s0[8]
        result.depth_end = buf.stats.depth
        st = buf.stats
        if st.lost or st.io_errors or st.dropped:
            result.failure = (
                f"{st.lost} messages lost, {st.dropped} dropped, {st.io_errors} I/O errors"
            )
    finally:
        running = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if publisher is not None:
            await publisher.close()
        await buf.close()
    return result


async def prefill(path: Path, sync: str, prefix: str, fixed: bool) -> None:
    """The 10-minute backlog: BACKLOG_MESSAGES agent-shaped messages of DEVICE (seq
    1..6,000, poll timestamps of the last 10 minutes), committed through SqliteBuffer with
    the agent's settings, so the file is what the agent would have left after the outage."""
    from edge_agent.buffer import SqliteBuffer

    flush_interval, flush_messages = buffer_defaults()
    messages: list[Any] = []
    first = time.time_ns() // 1_000_000 - round(BACKLOG_SECONDS * 1000)
    telemetry(prefix, BACKLOG_MESSAGES, fixed, first, messages.append)
    buf = SqliteBuffer(
        path, sync=sync, flush_interval=flush_interval, flush_messages=flush_messages
    )
    await buf.open()
    try:
        await fill(buf, messages, 2 * flush_messages)
        if buf.stats.depth != BACKLOG_MESSAGES:
            raise RuntimeError(f"prefill: {buf.stats.depth} messages buffered, not 6,000")
    finally:
        await buf.close()


# ---- py-spy ------------------------------------------------------------------------------------


def summarize_profile(raw: Path, top: int = 14) -> list[str]:
    """Top functions of py-spy's collapsed stacks: own time (the leaf frame) and, per
    thread, the share of the samples."""
    own: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for line in raw.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            n = int(count)
            total += n
            threads[frames[0]] += n
            own[frames[-1]] += n
    if not total:
        return []
    out = [f"{total} samples; by thread: "]
    out[0] += ", ".join(f"{name} {n / total:.0%}" for name, n in threads.most_common(4))
    out += [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(top)]
    return out


# ---- the bench ---------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.disk = ScratchDisk(workdir)
        self.data = workdir / "buffers"  # where the buffers are: see start()
        self.fixed: bool = args.values == "fixed"
        self.children = Children()
        self.broker: Any = None
        self.sim: subprocess.Popen[bytes] | None = None
        self.sim_port = 0
        self.writes: list[WriteRun] = []
        self.throughputs: list[ThroughputRun] = []
        self.drains: list[DrainRun] = []

    def runs(self) -> list[WriteRun | ThroughputRun | DrainRun]:
        return [*self.writes, *self.throughputs, *self.drains]

    # -- infrastructure --
    def start(self) -> None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.support.broker import Broker

        if self.args.dir:
            self.data = Path(tempfile.mkdtemp(prefix="edge-bench-buffer-", dir=self.args.dir))
        elif self.disk.mount():
            self.data = self.disk.mnt
        else:
            say(f"buffers in the temp dir: {self.disk.why_not}")
            self.data.mkdir()
        say(f"buffers on {mount_of(self.data)}")
        # The subscriber must never lose a message while the backlog floods in: no cap on
        # the broker's queue towards it (mosquitto drops QoS 1 beyond 1,000 by default).
        self.broker = Broker(
            workdir=self.workdir / "mosquitto", extra_config="max_queued_messages 0"
        ).start()
        say(f"mosquitto on port {self.broker.port} (pid {self.broker.pid})")
        argv = [PY, "-m", "simulators", "modbus", "--port", "0"]
        argv += ["--deterministic"] if self.fixed else ["--seed", "1"]
        with (self.workdir / "simulator.log").open("wb") as log:
            self.sim = self.children.spawn(argv, stdout=subprocess.PIPE, stderr=log)
        line = read_line(self.sim, 20.0)
        if not line.startswith("READY modbus "):
            raise RuntimeError(f"simulator did not report READY (got {line!r})")
        self.sim_port = int(line.rsplit(":", 1)[1])
        say(f"simulator on port {self.sim_port} ({'fixed' if self.fixed else 'drifting'} values)")

    def close(self) -> None:
        self.children.stop_all()
        if self.broker is not None:
            self.broker.close()
        if self.args.dir and not self.args.keep:
            shutil.rmtree(self.data, ignore_errors=True)
        if self.args.keep and self.disk.mounted:
            subprocess.run(["umount", str(self.disk.mnt)], capture_output=True, check=False)
            say(f"the buffers are kept in the ext4 image {self.disk.image}")
        else:
            self.disk.close()

    def scenario_dirs(self, name: str) -> tuple[Path, Path]:
        """(logs and config, buffer): the buffer on the measured file system."""
        d, b = self.workdir / name, self.data / name
        d.mkdir()
        b.mkdir()
        return d, b

    def discard(self, buffers: Path) -> None:
        """The scratch file system is sized for one scenario's buffer at a time."""
        if not self.args.keep:
            shutil.rmtree(buffers, ignore_errors=True)

    def spawn_agent(self, config: Path, log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as err:
            return self.children.spawn([PY, "-m", "edge_agent", "run", str(config)], stderr=err)

    def finish_agent(self, proc: subprocess.Popen[bytes], log: Path) -> LogSummary:
        stop_s = self.children.stop(proc)
        counts, problems = scan_log(log)
        return LogSummary(counts, problems, proc.returncode, stop_s)

    # -- scenario 1 --
    def disk_writes(self, sync: str, link: str, seconds: float) -> WriteRun:
        from tests.support.proxy import CuttableProxy

        run = WriteRun(sync, link)
        name = f"writes-{sync}-{link}"
        d, b = self.scenario_dirs(name)
        db, log, config = b / "buffer.db", d / "agent.log", d / "agent.yaml"
        gateway = f"gw-{name}"
        prefix = f"maintenance4/{SITE}/{gateway}"
        say(
            f"[disk writes, {run.label}] warm-up until the WAL is full + {WARMUP:g} s, "
            f"window {seconds:g} s"
        )
        proxy = CuttableProxy(self.broker.port).start()
        sub = TelemetrySubscriber(self.broker.port, f"{prefix}/+/telemetry").start()
        proc: subprocess.Popen[bytes] | None = None
        try:
            if link == "cut":
                proxy.cut()
            write_config(
                config,
                gateway=gateway,
                url=proxy.url,
                buffer=db,
                sync=sync,
                sim_port=self.sim_port,
                fast_reconnect=False,
            )
            proc = self.spawn_agent(config, log)
            started = time.monotonic()
            if not wait_log(log, "running", proc, 30.0):
                run.failure = "the agent did not start: " + tail(log)
                return run
            if link == "up" and not sub.wait_first(30.0):
                run.failure = "nothing reached the subscriber within 30 s: " + tail(log)
                return run
            if not wait_wal_full(db, proc, WAL_WAIT):
                run.failure = f"the WAL did not reach its full size within {WAL_WAIT:g} s"
                return run
            time.sleep(WARMUP)
            run.warmup_s = time.monotonic() - started
            stat, journal = device_stat(b), journal_info(b)
            io0, cpu0, dev0 = proc_io(proc.pid), cpu_seconds(proc.pid), device_written(stat)
            m0 = machine_jiffies()
            j0 = journal_commits(journal)
            t0, wall0 = time.monotonic(), time.time()
            time.sleep(seconds)
            io1, cpu1, dev1 = proc_io(proc.pid), cpu_seconds(proc.pid), device_written(stat)
            run.machine = machine_load(m0, machine_jiffies())
            j1 = journal_commits(journal)
            t1, wall1 = time.monotonic(), time.time()
            run.journal_commits = j1 - j0 if journal is not None else -1
            run.seconds = t1 - t0
            run.rss_kib = memory_kib(proc.pid)[0]
            run.db_bytes = file_bytes(db)
            run.write_bytes = io1["write_bytes"] - io0["write_bytes"]
            run.wchar = io1["wchar"] - io0["wchar"]
            run.syscw = io1["syscw"] - io0["syscw"]
            run.cancelled = io1["cancelled_write_bytes"] - io0["cancelled_write_bytes"]
            run.device_bytes = dev1 - dev0
            run.cpu_s = cpu1 - cpu0
            if link == "up":
                time.sleep(1.0)  # messages of the window still on their way (group commit)
                run.readings = sub.readings_between(t0, t1)
        finally:
            if proc is not None:
                run.log = self.finish_agent(proc, log)
            sub.close()
            proxy.close()
        if link == "cut" and run.failure is None:
            run.readings = committed_between(db, wall0, wall1)[1]
        self.discard(b)
        t = sub.tally()
        run.messages_total, run.seq_missing, run.seq_repeated = t.messages, t.missing, t.repeated
        say(
            f"  {run.readings:,} readings ({run.expected:,.0f} expected): write_bytes "
            f"{run.bytes_per_reading:.1f} B/reading, wchar {run.per_reading(run.wchar):.1f}, "
            f"device {run.per_reading(run.device_bytes):.1f}; "
            f"log: {run.log.warnings} warnings, {run.log.errors} errors"
        )
        return run

    # -- scenario 2 --
    def throughput(
        self, sync: str, mode: str, seconds: float, pool: Sequence[Any]
    ) -> ThroughputRun:
        b = self.data / f"throughput-{sync}-{mode}"
        b.mkdir()
        label = ThroughputRun(sync, mode).label
        say(f"[throughput, {label}] warm-up 2 s, window {seconds:g} s")
        run = run_async(throughput(b / "buffer.db", sync, mode, 2.0, seconds, self.broker, pool))
        self.discard(b)
        say(
            f"  committed {run.rate(run.committed):,.0f} msg/s "
            f"({run.rate(run.committed) * POINTS:,.0f} readings/s), delivered "
            f"{run.rate(run.delivered):,.0f} msg/s; {run.commits} commits"
        )
        return run

    # -- scenario 3 --
    def drain(self, sync: str) -> DrainRun:
        from tests.support.proxy import CuttableProxy

        run = DrainRun(sync)
        name = f"drain-{sync}"
        d, b = self.scenario_dirs(name)
        db, log, config = b / "buffer.db", d / "agent.log", d / "agent.yaml"
        gateway = f"gw-{name}"
        prefix = f"maintenance4/{SITE}/{gateway}"
        say(f"[drain, sync: {sync}] prefilling {BACKLOG_MESSAGES:,} messages")
        started = time.monotonic()
        run_async(prefill(db, sync, prefix, self.fixed))
        run.prefill_s = time.monotonic() - started
        run.backlog_bytes = file_bytes(db)
        say(f"  prefilled in {run.prefill_s:.1f} s: {run.backlog_bytes / 2**20:.1f} MiB on disk")
        proxy = CuttableProxy(self.broker.port).start()
        proxy.cut()
        sub = TelemetrySubscriber(self.broker.port, f"{prefix}/+/telemetry")
        sub.expect_backlog(DEVICE, BACKLOG_MESSAGES)
        sub.start()
        proc: subprocess.Popen[bytes] | None = None
        spy: subprocess.Popen[bytes] | None = None
        try:
            write_config(
                config,
                gateway=gateway,
                url=proxy.url,
                buffer=db,
                sync=sync,
                sim_port=self.sim_port,
                fast_reconnect=True,
            )
            proc = self.spawn_agent(config, log)
            if not wait_log(log, "running", proc, 30.0):
                run.failure = "the agent did not start: " + tail(log)
                return run
            time.sleep(WARMUP)
            pid = proc.pid
            run.rss.append((0.0, memory_kib(pid)[0]))
            conns = proxy.connections
            t_restore, wall_restore = time.monotonic(), time.time()
            proxy.restore()
            if self.args.profile:
                spy = self.start_spy(pid, Path(self.args.profile) / f"drain-{sync}.txt")
            timeout = BACKLOG_SECONDS / 2  # slower than 2x real time: give up
            next_rss = t_restore + RSS_EVERY
            t_connect: float | None = None
            cpu0 = io0 = broker0 = bench0 = None
            m0 = machine_jiffies()
            tally = sub.tally()
            while tally.complete_at is None and time.monotonic() - t_restore < timeout:
                now = time.monotonic()
                if t_connect is None and proxy.connections > conns:
                    t_connect = now
                    cpu0, io0 = cpu_seconds(pid), proc_io(pid)["write_bytes"]
                    m0 = machine_jiffies()
                    broker0, bench0 = maybe_cpu(self.broker.pid), cpu_seconds()
                if now >= next_rss:
                    run.rss.append((now - t_restore, memory_kib(pid)[0]))
                    next_rss += RSS_EVERY
                if proc.poll() is not None:
                    break
                time.sleep(0.005)
            t_end = time.monotonic()
            if proc.poll() is None:
                run.rss.append((t_end - t_restore, memory_kib(pid)[0]))
                run.hwm_kib = memory_kib(pid)[1]
                if cpu0 is not None and io0 is not None:
                    run.cpu_s = cpu_seconds(pid) - cpu0
                    run.machine = machine_load(m0, machine_jiffies())
                    run.write_bytes = proc_io(pid)["write_bytes"] - io0
                    run.broker_cpu_s = maybe_cpu(self.broker.pid) - (broker0 or 0.0)
                    run.bench_cpu_s = cpu_seconds() - (bench0 or 0.0)
            if spy is not None:
                self.stop_spy(spy)
                spy = None
                run.profile = summarize_profile(Path(self.args.profile) / f"drain-{sync}.txt")
            if t_connect is not None:
                run.restore_to_connect_s = t_connect - t_restore
                if tally.complete_at is not None:
                    run.drain_s = tally.complete_at - t_connect
                    run.caught_up_s = self.caught_up(sub, tally.complete_at) - t_connect
            if tally.complete_at is None:
                run.failure = (
                    f"only {tally.target_got:,} of {BACKLOG_MESSAGES:,} backlog messages arrived "
                    f"in {t_end - t_restore:.0f} s"
                    + ("" if t_connect is not None else "; the agent never reconnected")
                )
            with sub._lock:
                run.extra_messages = sum(
                    1
                    for _, _, _, seq, ts, _ in sub.arrivals
                    if seq > BACKLOG_MESSAGES and ts < wall_restore * 1000
                )
        finally:
            if spy is not None:
                self.stop_spy(spy)
            if proc is not None:
                run.log = self.finish_agent(proc, log)
            sub.close()
            proxy.close()
        t = sub.tally()
        run.backlog_got, run.messages_total = t.target_got, t.messages
        run.seq_missing, run.seq_repeated = t.missing, t.repeated
        say(
            f"  drain {run.drain_s:.1f} s ({run.speed:.1f}x real time), RSS "
            f"{min(run.rss_during(), default=0) / 1024:.1f}–"
            f"{max(run.rss_during(), default=0) / 1024:.1f} MiB, agent CPU "
            f"{run.cpu_s / run.drain_s if run.drain_s > 0 else math.nan:.0%}; "
            f"seq missing {run.seq_missing}, repeated {run.seq_repeated}; "
            f"log: {run.log.warnings} warnings, {run.log.errors} errors"
        )
        self.discard(b)
        return run

    @staticmethod
    def caught_up(sub: TelemetrySubscriber, after: float, timeout: float = 30.0) -> float:
        """When the first message polled after the drain arrived less than 1 s old: the live
        readings no longer wait behind the backlog."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with sub._lock:
                for t, wall, _, _, ts, _ in sub.arrivals[-50:]:
                    if t >= after and wall * 1000 - ts < 1000:
                        return t
            time.sleep(0.05)
        return math.nan

    def start_spy(self, pid: int, out: Path) -> subprocess.Popen[bytes] | None:
        spy = shutil.which("py-spy") or str(Path(PY).with_name("py-spy"))
        if not Path(spy).exists():
            say("py-spy not found (pip install py-spy): no profile")
            return None
        out.parent.mkdir(parents=True, exist_ok=True)
        argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(out)]
        argv += ["--rate", "200", "--threads", "--nonblocking"]
        return self.children.spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_spy(self, spy: subprocess.Popen[bytes]) -> None:
        """SIGINT makes py-spy write what it sampled."""
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)
        try:
            spy.wait(15)
        except subprocess.TimeoutExpired:
            self.children.stop(spy)
        self.children.stop(spy)


def tail(log: Path, lines: int = 5) -> str:
    with contextlib.suppress(FileNotFoundError):
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    return "(no log)"


# ---- the report ----------------------------------------------------------------------------


def versions(broker: Any) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    for pkg in ("paho-mqtt", "orjson", "uvloop", "edge-agent"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    out["mosquitto"] = "?"
    mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if Path(mosq).exists():
        proc = subprocess.run([mosq, "-h"], capture_output=True, text=True, check=False)
        first = (proc.stdout or proc.stderr).splitlines()[:1]
        out["mosquitto"] = first[0].split("version", 1)[-1].strip() if first else "?"
    return out


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def busy_cores(machine: tuple[float, float]) -> str:
    """Machine busy (steal) in cores."""
    busy, steal = machine
    return "–" if math.isnan(busy) else f"{busy:.2f} ({steal:.2f})"


def fmt(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


@dataclass
class Verdicts:
    """Each target: met, missed, or None when its scenario did not run (`--only`). A drain
    that never completed counts as missed (slower than 2x real time)."""

    bytes_ok: bool | None
    speed_ok: bool | None
    rss_ok: bool | None
    measured: bool  # every measurement was taken

    @staticmethod
    def word(ok: bool | None) -> str:
        return "not measured" if ok is None else "MET" if ok else "MISSED"


def judge(bench: Bench) -> Verdicts:
    full = [w for w in bench.writes if w.sync == "full"]
    drains = bench.drains
    return Verdicts(
        bytes_ok=all(w.bytes_per_reading <= TARGET_BYTES for w in full) if full else None,
        speed_ok=all(d.speed >= TARGET_SPEEDUP for d in drains) if drains else None,
        rss_ok=all(d.rss_delta_mib <= TARGET_RSS_MIB for d in drains) if drains else None,
        measured=not any(r.failure for r in bench.runs()),
    )


def report(bench: Bench, command: str, started: dt.datetime, window: float) -> str:
    v = versions(bench.broker)
    raw, stored = payload_sizes(bench.fixed)
    flush_interval, flush_messages = buffer_defaults()
    load = os.getloadavg()
    doc = [
        "# Performance of the buffer",
        "",
        f"Generated by `{command}` (from the repository root); do not edit by hand, run it "
        "again. What each figure is and how it is taken: the docstring of "
        "[bench/buffer.py](../bench/buffer.py); the buffer itself: [buffer.md](buffer.md).",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {cpu_model()}, {cores()} cores (shared virtual machine) |",
        f"| Memory | {mem_total_mib() / 1024:.1f} GiB |",
        (
            f"| Buffer's file system | a private ext4 file system "
            f"({mount_of(bench.data).split(', ', 1)[1]} in a {bench.disk.size / 2**30:g} GiB "
            f"image, loop-mounted, on {mount_of(bench.workdir)} |"
            if bench.disk.mounted
            else f"| Buffer's file system | {mount_of(bench.data)} |"
        ),
        f"| Kernel | {platform.release()} |",
        f"| Python / SQLite | {v['Python']} / {v['SQLite']} |",
        f"| paho-mqtt / orjson / uvloop | {v['paho-mqtt']} / {v['orjson']} / {v['uvloop']} |",
        f"| mosquitto | {v['mosquitto']} (private, on a free port) |",
        f"| edge-agent | {v['edge-agent']} |",
        f"| Date | {started:%Y-%m-%d %H:%M} UTC |",
        f"| Load average at the end | {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} |",
        "",
        "Telemetry: 1 device × 100 float32 every 100 ms = 1,000 readings/s, one message of "
        f"100 readings per poll: {raw:,.0f} bytes of JSON, {stored:,.0f} bytes stored "
        f"(zlib, {raw / stored:.1f}×), with the simulator's "
        + ("constant values (`--deterministic`)." if bench.fixed else "slowly drifting values.")
        + f" Buffer defaults: group commit every {flush_interval * 1000:g} ms or "
        f"{flush_messages} messages, 1 KiB pages, WAL.",
        "",
        "## Verdict",
        "",
    ]
    for w in bench.writes:
        if w.sync == "full" and w.failure is None:
            doc.append(
                f"- Bytes written per reading at 1,000 readings/s, {w.label}: "
                f"{fmt(w.bytes_per_reading)} (target ≤ {TARGET_BYTES:g}: "
                f"{verdict(w.bytes_per_reading <= TARGET_BYTES)})."
            )
    for w in bench.writes:
        if w.sync == "full" and w.failure is None and bench.disk.mounted:
            doc.append(
                f"- For information, what the file system wrote to its device, ext4's journal "
                f"included (what an SD card receives), {w.label}: "
                f"{fmt(w.per_reading(w.device_bytes))} bytes per reading"
                + (
                    f" (also within {TARGET_BYTES:g})."
                    if w.per_reading(w.device_bytes) <= TARGET_BYTES
                    else "."
                )
            )
    for d in bench.drains:
        if d.failure is None:
            doc.append(
                f"- Drain of a 10-minute backlog (600,000 readings), sync: {d.sync}: "
                f"{fmt(d.drain_s)} s, {fmt(d.speed)}× real time (target ≥ {TARGET_SPEEDUP:g}×: "
                f"{verdict(d.speed >= TARGET_SPEEDUP)}); RSS within {fmt(d.rss_delta_mib)} MiB "
                f"during the drain (target ≤ {TARGET_RSS_MIB:g} MiB: "
                f"{verdict(d.rss_delta_mib <= TARGET_RSS_MIB)})."
            )
    for r in bench.runs():
        if r.failure:
            doc.append(f"- {r.label}: **measurement failed**: {r.failure}")
    delivered_ok = all(w.delivery_ok for w in bench.writes) and all(
        d.complete and d.seq_missing == 0 for d in bench.drains
    )
    repeated = sum(w.seq_repeated for w in bench.writes) + sum(d.seq_repeated for d in bench.drains)
    unexpected = [(w.label, p) for w in bench.writes for p in w.log.unexpected(w.link == "cut")]
    unexpected += [(d.label, p) for d in bench.drains for p in d.log.unexpected(link_cut=True)]
    doc.append(
        "- Delivery: "
        + (
            "every seq arrived, none lost, in every run"
            if delivered_ok
            else "**seqs were lost**, see the tables"
        )
        + (
            f"; {repeated} arrived twice (a resend after a reconnection, docs/buffer.md)."
            if repeated
            else "; none twice."
        )
    )
    for label, problem in unexpected:
        doc.append(f"- **Unexpected in the agent's log** ({label}): `{problem[:200]}`")

    # -- scenario 1
    doc += [
        "",
        f"## 1. Disk writes at 1,000 readings/s ({window:g} s windows)",
        "",
        "The agent as a process against the simulator. Warm-up: until the WAL has reached "
        f"its full size (its first checkpoint), then {WARMUP:g} s. Per reading: the agent's "
        "bytes over the window ÷ readings delivered in the window (link up: arrived at the "
        "subscriber) or committed (link cut: rows of the buffer committed in the window). "
        "write_bytes: what the process made the "
        "kernel write to storage (page-granular); wchar: bytes the process passed to write() "
        "(the WAL, the database and its log; MQTT goes through send(), not counted); "
        + (
            "device: what the buffer's file system wrote to its (private) block device in the "
            "window, ext4's journal and metadata included: what an SD card would receive."
            if bench.disk.mounted
            else "device: the whole disk in the window, every process of this shared machine "
            "and the file system's journal included (an upper bound, noisy)."
        ),
        "",
        "| run | warm-up | readings / expected | **write_bytes per reading** | write_bytes/s | "
        "wchar per reading | write calls/s | device per reading | journal commits/s | "
        "agent CPU | RSS | buffer on disk | machine busy (steal), cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for w in bench.writes:
        if w.failure:
            doc.append(f"| {w.label} | failed: {w.failure} | | | | | | | | | | | |")
            continue
        journal = f"{w.journal_commits / w.seconds:.2f}" if w.journal_commits >= 0 else "–"
        doc.append(
            f"| {w.label} | {w.warmup_s:.0f} s | {w.readings:,} / {w.expected:,.0f} | "
            f"**{fmt(w.bytes_per_reading)}** | {w.write_bytes / w.seconds / 1024:,.1f} KiB | "
            f"{fmt(w.per_reading(w.wchar))} | {w.syscw / w.seconds:,.0f} | "
            f"{fmt(w.per_reading(w.device_bytes))} | {journal} | {w.cpu_s / w.seconds:.1%} | "
            f"{mib(w.rss_kib)} | {w.db_bytes / 2**20:,.1f} MiB | {busy_cores(w.machine)} |"
        )

    # -- scenario 2
    doc += [
        "",
        "## 2. Throughput: how fast the buffer commits and delivers",
        "",
        "In the bench process, one SqliteBuffer with the agent's defaults (but `sync`) takes "
        "agent-shaped telemetry (100 readings a message) as fast as it commits it, keeping "
        f"at most {2 * flush_messages} messages queued. *Commit only*: nothing is taken out. "
        "*Fetch + ack*: a consumer fetches what is committed and acks it (deleted in the next "
        "commit). *MqttPublisher*: the agent's publisher sends it to mosquitto, QoS 1; "
        'delivered = successful PUBACKs (no subscriber: the broker acknowledges with "no '
        f'matching subscribers"). With a consumer the backlog is kept under {DEPTH_CAP:,} '
        "messages, so that committed and delivered settle at the rate that can be sustained. "
        "Buffer thread: the CPU of the thread that owns the SQLite connection (compression, "
        "SQL; waiting for an fsync is not CPU). Windows of "
        f"{bench.throughputs[0].seconds if bench.throughputs else 0:.0f} s after 2 s.",
        "",
        "| run | committed msg/s | **committed readings/s** | delivered msg/s | "
        "**delivered readings/s** | commits/s (mean ms) | buffer thread CPU | process CPU | "
        "mosquitto CPU | write_bytes per reading | backlog at the end | "
        "machine busy (steal), cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in bench.throughputs:
        if t.failure and not t.seconds:
            doc.append(f"| {t.label} | failed | | | | | | | | | | |")
            continue
        mean_ms = t.commit_s / t.commits * 1000 if t.commits else math.nan
        doc.append(
            f"| {t.label} | {t.rate(t.committed):,.0f} | **{t.rate(t.committed) * POINTS:,.0f}**"
            + (
                f" | {t.rate(t.delivered):,.0f} | **{t.rate(t.delivered) * POINTS:,.0f}** | "
                if t.mode != "commit"
                else " | – | – | "
            )
            + f"{t.rate(t.commits):,.1f} ({fmt(mean_ms)}) | {t.buffer_cpu_s / t.seconds:.0%} | "
            f"{t.cpu_s / t.seconds:.0%} | "
            + (f"{t.broker_cpu_s / t.seconds:.0%}" if t.mode == "mqtt" else "–")
            + f" | {fmt(t.write_bytes / (t.committed * POINTS) if t.committed else math.nan)} | "
            f"{t.depth_end:,} | {busy_cores(t.machine)} |"
        )

    # -- scenario 3
    doc += [
        "",
        "## 3. Drain of a 10-minute backlog (6,000 messages, 600,000 readings)",
        "",
        "The backlog is committed through SqliteBuffer (the agent's settings and payloads), "
        "then the agent starts on it with the link cut, polls the same device live for "
        f"{WARMUP:g} s, and the link is restored. Drain time: from the agent's reconnection "
        "to the arrival of the last of seq 1..6,000 at the subscriber (every seq checked). "
        "Caught up: the first live message less than 1 s old. RSS every "
        f"{RSS_EVERY:g} s from before the restore to the end of the drain; CPU and writes of "
        "the agent over the drain.",
        "",
        "| sync | backlog on disk | restore → connected | **drain time** | "
        "**× real time** | readings/s drained | caught up | **RSS min–max (Δ)** | "
        "agent CPU | mosquitto / subscriber CPU | write_bytes per reading drained | "
        "machine busy (steal), cores |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for d in bench.drains:
        rss = d.rss_during()
        if not rss or not d.drain_s > 0:
            doc.append(f"| {d.sync} | failed: {d.failure} | | | | | | | | | | |")
            continue
        doc.append(
            f"| {d.sync} | {d.backlog_bytes / 2**20:,.1f} MiB | "
            f"{d.restore_to_connect_s:.2f} s | **{d.drain_s:.1f} s** | **{d.speed:.1f}×** | "
            f"{BACKLOG_MESSAGES * POINTS / d.drain_s:,.0f} | {fmt(d.caught_up_s)} s | "
            f"**{mib(min(rss))}–{mib(max(rss))} ({d.rss_delta_mib:.1f} MiB)** | "
            f"{d.cpu_s / d.drain_s:.0%} | {d.broker_cpu_s / d.drain_s:.0%} / "
            f"{d.bench_cpu_s / d.drain_s:.0%} | "
            f"{fmt(d.write_bytes / (BACKLOG_MESSAGES * POINTS))} | {busy_cores(d.machine)} |"
        )
    if bench.drains:
        doc += [
            "",
            "| sync | backlog messages at the subscriber | live messages polled during the "
            "cut | messages in all | seq missing / repeated | peak RSS (VmHWM) | "
            "log warnings, errors | SIGTERM → exit |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for d in bench.drains:
            doc.append(
                f"| {d.sync} | {d.backlog_got:,} / {BACKLOG_MESSAGES:,} | {d.extra_messages} | "
                f"{d.messages_total:,} | {d.seq_missing} / {d.seq_repeated} | "
                f"{mib(d.hwm_kib)} | {d.log.warnings}, {d.log.errors} | "
                f"{d.log.stop_s:.1f} s, exit {d.log.exit_code} |"
            )
    for d in bench.drains:
        if len(d.rss) > 2:
            step = max(1, len(d.rss) // 12)
            doc += [
                "",
                f"RSS during the drain, sync: {d.sync} (s after the restore: MiB): "
                + ", ".join(f"{t:.1f}: {kib / 1024:.1f}" for t, kib in d.rss[::step])
                + ".",
            ]
    for d in bench.drains:
        if d.profile:
            doc += [
                "",
                f"py-spy during the drain, sync: {d.sync} (own time of the leaf function, "
                "all threads):",
                "",
                "```",
                *d.profile,
                "```",
            ]

    # -- logs
    doc += [
        "",
        "## Agent logs",
        "",
        "| run | warnings | errors | unexpected problems | SIGTERM → exit |",
        "|---|---:|---:|---|---:|",
    ]
    for w in bench.writes:
        bad = w.log.unexpected(link_cut=w.link == "cut")
        doc.append(
            f"| writes, {w.label} | {w.log.warnings} | {w.log.errors} | "
            f"{'; '.join(f'`{p[:120]}`' for p in bad[:3]) or 'none'} | "
            f"{w.log.stop_s:.1f} s, exit {w.log.exit_code} |"
        )
    for d in bench.drains:
        bad = d.log.unexpected(link_cut=True)
        doc.append(
            f"| drain, sync: {d.sync} | {d.log.warnings} | {d.log.errors} | "
            f"{'; '.join(f'`{p[:120]}`' for p in bad[:3]) or 'none'} | "
            f"{d.log.stop_s:.1f} s, exit {d.log.exit_code} |"
        )
    doc += [
        "",
        "Expected with the link cut, and not counted as unexpected: `MQTT: cannot connect …` "
        "when the agent finds the broker unreachable, and, at the stop of a disk-write run, "
        "`stopping before the broker took everything: the rest stays buffered`.",
        "",
        "## Interpretation",
        "",
        *interpretation(bench, stored),
        "",
    ]
    return "\n".join(doc) + "\n"


def interpretation(bench: Bench, stored: float) -> list[str]:
    """What the figures say, in sentences built from them (no figure is typed in here)."""
    out: list[str] = []
    flush_interval, flush_messages = buffer_defaults()
    payload = stored / POINTS  # stored bytes per reading
    by = {(w.sync, w.link): w for w in bench.writes if w.failure is None and w.readings}
    full_up, full_cut = by.get(("full", "up")), by.get(("full", "cut"))
    normal_up = by.get(("normal", "up"))
    if full_up is not None:
        w = full_up
        per_s = w.write_bytes / w.seconds
        per_txn = w.wchar / w.seconds * flush_interval
        out.append(
            f"- Disk writes, `sync: full`, link up: {w.bytes_per_reading:.0f} bytes per reading "
            f"({per_s / 1024:,.0f} KiB/s, {per_s * 86400 / 2**30:.1f} GiB a day) for "
            f"{payload:.1f} bytes of stored (compressed) payload per reading. SQLite hands "
            f"{w.per_reading(w.wchar):.0f} bytes per reading to write(): the group commit makes "
            f"a transaction at most every {flush_interval * 1000:g} ms, and each appends to the "
            f"WAL the 1 KiB pages it changed (about {per_txn / 1024:.1f} KiB: the new rows, the "
            "B-tree pages that inserting them and deleting the acknowledged ones touch, the "
            "`seqs` row). write_bytes counts whole 4 KiB pages of the page cache, and each "
            "fsync cleans the WAL's last, partly written page, which the next transaction "
            f"dirties again: hence {w.write_bytes / w.wchar:.1f}× wchar."
        )
        journal = w.journal_commits / w.seconds if w.journal_commits >= 0 else math.nan
        if bench.disk.mounted and w.device_bytes <= 1.25 * w.write_bytes:
            out.append(
                f"- At the device the same run wrote {w.per_reading(w.device_bytes):.0f} bytes "
                "per reading, about what write_bytes says: with the WAL at its full size and "
                "rewritten in place, an fdatasync needs no commit of ext4's journal "
                f"({journal:.1f} a second, its own 5 s timer). The warm-up waits for that "
                "steady state; while the WAL still grows (the first half minute after a start) "
                "every fsync commits the journal too and the device receives about twice as "
                "much."
            )
        elif bench.disk.mounted:
            out.append(
                f"- At the device the same run wrote {w.per_reading(w.device_bytes):.0f} bytes "
                f"per reading, {w.device_bytes / w.write_bytes:.1f}× write_bytes: ext4 "
                f"committed its journal {journal:.1f} times a second (metadata: the files' size "
                "or blocks changed)."
            )
    if full_cut is not None:
        w = full_cut
        line = (
            f"- With the link cut (a backlog growing, nothing deleted), `sync: full` writes "
            f"{w.bytes_per_reading:.0f} bytes per reading"
            + (
                ": less than with the link up, since no acknowledged rows are deleted."
                if full_up is not None and w.bytes_per_reading < full_up.bytes_per_reading
                else "."
            )
        )
        if bench.disk.mounted and w.journal_commits >= 0:
            line += (
                f" The database file grows with the backlog ({w.db_bytes / 2**20:.1f} MiB after "
                f"the window); ext4 committed its journal {w.journal_commits / w.seconds:.1f} "
                f"times a second and the device received {w.per_reading(w.device_bytes):.0f} "
                "bytes per reading."
            )
        out.append(line)
    if full_up is not None and normal_up is not None:
        w = normal_up
        line = (
            f"- `sync: normal` writes {w.bytes_per_reading:.0f} bytes per reading "
            f"({w.bytes_per_reading / full_up.bytes_per_reading:.0%} of `full`): without an "
            "fsync per transaction, each 4 KiB page of the WAL is dirtied once (write_bytes ≈ "
            "wchar)."
        )
        if bench.disk.mounted and w.device_bytes < 0.8 * w.write_bytes:
            line += (
                f" The device received only {w.per_reading(w.device_bytes):.0f} bytes per "
                "reading in the window: dirty pages wait in the page cache until a checkpoint "
                "syncs the WAL or for up to 30 s (vm.dirty_expire_centisecs), and a WAL page "
                "rewritten meanwhile reaches the disk once. That is the SD card's saving, paid "
                "for with the last commits on a power cut (docs/buffer.md)."
            )
        out.append(line)
    tp = {(t.sync, t.mode): t for t in bench.throughputs if t.seconds}
    commit, local, mqtt = (
        tp.get(("full", "commit")),
        tp.get(("full", "local")),
        tp.get(("full", "mqtt")),
    )
    normal_commit = tp.get(("normal", "commit"))
    if commit is not None:
        line = (
            f"- The buffer commits {commit.rate(commit.committed) * POINTS:,.0f} readings/s "
            f"({commit.rate(commit.committed):,.0f} messages/s) with `sync: full`"
        )
        if normal_commit is not None:
            line += f", {normal_commit.rate(normal_commit.committed) * POINTS:,.0f} with `normal`"
        line += (
            f": {commit.rate(commit.committed) * POINTS / RATE:,.0f}× what 1,000 readings/s "
            f"need. Under load a group commit takes {flush_messages} messages and the fsync "
            "is shared by them; the buffer's thread is then busy "
            f"{commit.buffer_cpu_s / commit.seconds:.0%} of the time (compressing and "
            "inserting), so the sync setting hardly matters at that rate."
        )
        out.append(line)
    if local is not None:
        out.append(
            f"- Committed and taken out again at once (fetch, decompress, ack, delete), the "
            f"buffer alone sustains {local.rate(local.delivered) * POINTS:,.0f} readings/s "
            f"with `sync: full`; its one thread does all of it "
            f"({local.buffer_cpu_s / local.seconds:.0%} busy)."
        )
    if mqtt is not None:
        out.append(
            "- Through the agent's MqttPublisher to mosquitto, in one process with the "
            f"producer, {mqtt.rate(mqtt.delivered) * POINTS:,.0f} readings/s are delivered with "
            f"`sync: full` (the process at {mqtt.cpu_s / mqtt.seconds:.0%} of a core, the "
            f"buffer thread at {mqtt.buffer_cpu_s / mqtt.seconds:.0%}, mosquitto at "
            f"{mqtt.broker_cpu_s / mqtt.seconds:.0%}): the Python side of delivery sets the "
            "pace, not the broker or the disk."
        )
    for d in bench.drains:
        if not d.drain_s > 0:
            continue
        out.append(
            f"- Drain (`sync: {d.sync}`): {d.drain_s:.1f} s for 10 minutes of data, "
            f"{d.speed:.0f}× real time, {BACKLOG_MESSAGES / d.drain_s:,.0f} messages/s. Over "
            f"the drain the agent used {d.cpu_s / d.drain_s:.0%} of one core (event loop and "
            f"buffer thread), the subscriber {d.bench_cpu_s / d.drain_s:.0%} and mosquitto "
            f"{d.broker_cpu_s / d.drain_s:.0%}, of {cores()} cores. RSS stayed within "
            f"{d.rss_delta_mib:.1f} MiB while 600,000 readings went through: the publisher "
            "holds only its in-flight window in memory, the backlog stays on disk."
            + (
                f" py-spy's busiest function (own time): `{d.profile[1].strip()}`."
                if len(d.profile) > 1
                else ""
            )
        )
    for d in bench.drains:
        bad = d.log.unexpected(link_cut=True)
        if bad:
            out.append(
                f"- During the drain with `sync: {d.sync}` the agent logged `{bad[0][:160]}`"
                + (
                    f"; the {d.seq_repeated} seq(s) that arrived twice are the messages it "
                    "sent again after reconnecting (at most `mqtt.inflight`, docs/buffer.md)."
                    if d.seq_repeated
                    else "."
                )
                + " Nothing was lost, but a drain should not need to reconnect."
            )
    loads = [r.machine[0] for r in bench.runs() if not math.isnan(r.machine[0])]
    out.append(
        "- This machine is shared (other tenants' load varies"
        + (
            f": everything together kept {min(loads):.1f} to {max(loads):.1f} of its "
            f"{cores()} cores busy during the windows"
            if loads
            else ""
        )
        + ") and its disk is virtual: the figures vary from run to run, the throughput ones "
        "by tens of per cent. An SD card's controller may write more than it receives (its "
        "erase blocks are larger than 4 KiB): what is measured here is what the gateway asks "
        "of it."
    )
    return out


# ---- entry point -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.buffer",
        description="The buffer under load: disk writes per reading, throughput, drain of a "
        "10-minute backlog.",
    )
    parser.add_argument("--quick", action="store_true", help="20 s disk windows, 5 s throughput")
    parser.add_argument("--seconds", type=float, default=None, help="disk-write window (60)")
    parser.add_argument(
        "--values",
        choices=("drifting", "fixed"),
        default="drifting",
        help="simulator values: drifting (realistic compression) or fixed (--deterministic)",
    )
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "performance-buffer.md"), help="markdown report"
    )
    parser.add_argument("--keep", action="store_true", help="keep logs, configs and buffers")
    parser.add_argument(
        "--dir",
        default=None,
        help="where the buffers are written: the file system measured (default: the temp dir)",
    )
    parser.add_argument(
        "--profile", metavar="DIR", help="sample the agent with py-spy during the drains"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        help="run only this scenario (repeatable); the report then has only its figures",
    )
    args = parser.parse_args(argv)
    if args.seconds is None:
        args.seconds = 20.0 if args.quick else 60.0
    args.only = args.only or list(SCENARIOS)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m bench.buffer" + (" --quick" if args.quick else "")
    if args.seconds != (20.0 if args.quick else 60.0):
        command += f" --seconds {args.seconds:g}"
    if args.values != "drifting":
        command += f" --values {args.values}"
    for only in args.only if len(args.only) < len(SCENARIOS) else []:
        command += f" --only {only}"
    started = dt.datetime.now(dt.UTC)
    workdir = Path(tempfile.mkdtemp(prefix="edge-bench-buffer-"))
    bench = Bench(args, workdir)
    throughput_s = 5.0 if args.quick else 10.0
    try:
        with terminated_as_interrupt():
            bench.start()
            if "writes" in args.only:
                for sync in SYNCS:
                    for link in ("up", "cut"):
                        bench.writes.append(bench.disk_writes(sync, link, args.seconds))
            if "throughput" in args.only:
                pool: list[Any] = []
                first_ts = time.time_ns() // 1_000_000
                prefix = f"maintenance4/{SITE}/gw-throughput"
                telemetry(prefix, 500, bench.fixed, first_ts, pool.append)
                for sync in SYNCS:
                    for mode in MODES:
                        bench.throughputs.append(bench.throughput(sync, mode, throughput_s, pool))
            if "drain" in args.only:
                for sync in SYNCS:
                    bench.drains.append(bench.drain(sync))
            doc = report(bench, command, started, args.seconds)
    except KeyboardInterrupt:
        say("interrupted: stopping everything")
        return 130
    finally:
        bench.close()
        if args.keep:
            say(f"logs, configs and buffers kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(doc)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(doc)
    say(f"written to {output}")
    v = judge(bench)
    say(
        f"bytes written per reading (≤ {TARGET_BYTES:g}): {v.word(v.bytes_ok)}; "
        f"drain ≥ {TARGET_SPEEDUP:g}× real time: {v.word(v.speed_ok)}; "
        f"RSS flat within {TARGET_RSS_MIB:g} MiB: {v.word(v.rss_ok)}"
    )
    return 0 if v.measured else 1


if __name__ == "__main__":
    sys.exit(main())
