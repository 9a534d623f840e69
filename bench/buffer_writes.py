"""bench.buffer's scenario 1: what the agent's buffer writes to disk per reading."""

from __future__ import annotations

import subprocess
import time

from bench.agent import wait_log
from bench.buffer_bench import Bench
from bench.buffer_disk import (
    committed_between,
    device_stat,
    device_written,
    file_bytes,
    journal_commits,
    journal_info,
    wait_wal_full,
)
from bench.buffer_runs import WriteRun
from bench.buffer_setup import WAL_WAIT, WARMUP, say
from bench.buffer_telemetry import TelemetrySubscriber
from bench.common import tail
from bench.proc import cpu_seconds, machine_load, machine_sample, memory_kib, proc_io


def disk_writes(bench: Bench, sync: str, link: str, seconds: float) -> WriteRun:
    """The agent at 1,000 readings/s with the link up (everything delivered and deleted) or
    cut (the backlog grows), measured once the WAL is at its full size."""
    from tests.support.proxy import CuttableProxy

    run = WriteRun(sync, link)
    scn = bench.scenario(f"writes-{sync}-{link}")
    say(
        f"[disk writes, {run.label}] warm-up until the WAL is full + {WARMUP:g} s, "
        f"window {seconds:g} s"
    )
    proxy = CuttableProxy(bench.broker.port).start()
    sub = TelemetrySubscriber(bench.broker.port, f"{scn.prefix}/+/telemetry").start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        if link == "cut":
            proxy.cut()
        proc = bench.start_agent(scn, proxy.url, sync, fast_reconnect=False)
        started = time.monotonic()
        if not wait_log(scn.log, "running", proc, 30.0):
            run.failure = "the agent did not start: " + tail(scn.log, 5, " | ")
            return run
        if link == "up" and not sub.wait_first(30.0):
            run.failure = "nothing reached the subscriber within 30 s: " + tail(scn.log, 5, " | ")
            return run
        if not wait_wal_full(scn.db, proc, WAL_WAIT):
            run.failure = f"the WAL did not reach its full size within {WAL_WAIT:g} s"
            return run
        time.sleep(WARMUP)
        run.warmup_s = time.monotonic() - started
        stat, journal = device_stat(scn.buffers), journal_info(scn.buffers)
        io0, cpu0, dev0 = proc_io(proc.pid), cpu_seconds(proc.pid), device_written(stat)
        m0 = machine_sample()
        j0 = journal_commits(journal)
        t0, wall0 = time.monotonic(), time.time()
        time.sleep(seconds)
        io1, cpu1, dev1 = proc_io(proc.pid), cpu_seconds(proc.pid), device_written(stat)
        run.machine = machine_load(m0, machine_sample())
        j1 = journal_commits(journal)
        t1, wall1 = time.monotonic(), time.time()
        run.journal_commits = j1 - j0 if journal is not None else -1
        run.seconds = t1 - t0
        run.rss_kib = memory_kib(proc.pid)[0]
        run.db_bytes = file_bytes(scn.db)
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
            run.log = bench.finish_agent(proc, scn.log)
        sub.close()
        proxy.close()
    if link == "cut" and run.failure is None:
        run.readings = committed_between(scn.db, wall0, wall1)[1]
    bench.discard(scn.buffers)
    t = sub.tally()
    run.messages_total, run.seq_missing, run.seq_repeated = t.messages, t.missing, t.repeated
    say(
        f"  {run.readings:,} readings ({run.expected:,.0f} expected): write_bytes "
        f"{run.bytes_per_reading:.1f} B/reading, wchar {run.per_reading(run.wchar):.1f}, "
        f"device {run.per_reading(run.device_bytes):.1f}; "
        f"log: {run.log.warnings} warnings, {run.log.errors} errors"
    )
    return run
