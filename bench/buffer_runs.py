"""bench.buffer's results: what each run of each scenario measured, and the agent's log."""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.agent import log_record
from bench.buffer_setup import BACKLOG_MESSAGES, BACKLOG_SECONDS, EXPECTED_WHEN_CUT, RATE


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


def scan_log(path: Path) -> tuple[Counter[str], list[str]]:
    """Lines per level, and the distinct WARNING/ERROR/CRITICAL messages and tracebacks."""
    counts: Counter[str] = Counter()
    problems: list[str] = []
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(errors="replace").splitlines():
            level, message = log_record(line)
            if level:
                counts[level] += 1
                if level != "INFO" and level != "DEBUG":
                    text = f"{level} {message or ''}"
                    if text not in problems:
                        problems.append(text)
            elif line.startswith("Traceback"):
                counts["traceback"] += 1
                problems.append(line)
    return counts, problems


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
