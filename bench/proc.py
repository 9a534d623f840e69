"""What /proc says about a process and about the machine, for the benchmarks' figures.

CPU comes from the kernel's own accounting rather than from inside the measured process, so
that measuring costs it nothing: utime+stime (10 ms ticks) and, finer, the threads'
scheduler runtime (ns).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_ticks(stat: Path) -> int:
    """utime + stime, clock ticks, of a /proc/…/stat file (the name may hold spaces and
    parentheses: fields are counted after the last ')')."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_ticks(pid: int | str) -> int:
    """utime + stime of a process (all threads), clock ticks."""
    return _stat_ticks(Path(f"/proc/{pid}/stat"))


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all threads), seconds."""
    return cpu_ticks(pid) / CLK_TCK


def thread_cpu_seconds(tid: int) -> float:
    """utime + stime of one thread of this process, seconds."""
    return _stat_ticks(Path(f"/proc/self/task/{tid}/stat")) / CLK_TCK


def maybe_cpu(pid: int | None) -> float:
    """cpu_seconds of a process that may be absent or gone (0.0 then)."""
    if pid is None:
        return 0.0
    try:
        return cpu_seconds(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


@dataclass(frozen=True)
class ProcSample:
    """One look at a process: CPU (two ways) and context switches, all threads together."""

    ticks: int  # utime + stime, clock ticks
    sched_ns: int  # sum of the threads' scheduler runtime (ns); threads that ended are lost
    main_ns: int  # the main thread's (the agent's event loop) scheduler runtime (ns)
    switches: int  # voluntary + involuntary context switches of the live threads


def proc_sample(pid: int) -> ProcSample:
    ticks = cpu_ticks(pid)
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
    values = {"VmRSS": 0, "VmHWM": 0}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key = line.split(":", 1)[0]
        if key in values:
            values[key] = int(line.split()[1])
    return values["VmRSS"], values["VmHWM"]


def proc_io(pid: int | str = "self") -> dict[str, int]:
    """/proc/PID/io: rchar, wchar, syscr, syscw, read_bytes, write_bytes,
    cancelled_write_bytes; for the whole process (every thread, live or ended)."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = int(value)
    return out


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


def machine_load(a: MachineSample, b: MachineSample) -> tuple[float, float]:
    """(busy, steal) between two samples, in cores (2.0 = both cores of a 2-core machine):
    everything that ran, the bench's own processes and other tenants alike."""
    total = max(1, b.total - a.total)
    n = cores()
    return (b.busy - a.busy) / total * n, (b.steal - a.steal) / total * n


def cores() -> int:
    """Logical processors listed in /proc/cpuinfo."""
    text = Path("/proc/cpuinfo").read_text()
    return sum(1 for line in text.splitlines() if line.startswith("processor")) or (
        os.cpu_count() or 1
    )


def cpu_model(unknown: str = "unknown") -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or unknown


def mem_total_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    return math.nan
