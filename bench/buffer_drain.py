"""bench.buffer's scenario 3: the agent drains a 10-minute backlog once the link is back."""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

from bench import spy
from bench.agent import wait_log
from bench.buffer_bench import Bench
from bench.buffer_disk import file_bytes
from bench.buffer_runs import DrainRun
from bench.buffer_setup import BACKLOG_MESSAGES, BACKLOG_SECONDS, DEVICE, RSS_EVERY, WARMUP, say
from bench.buffer_telemetry import TelemetrySubscriber
from bench.buffer_throughput import prefill
from bench.common import run_async, tail
from bench.proc import cpu_seconds, machine_load, machine_sample, maybe_cpu, memory_kib, proc_io


def drain(bench: Bench, sync: str) -> DrainRun:
    """Prefill the backlog, start the agent on it with the link cut, restore the link, and
    follow the drain to the last backlog message at the subscriber."""
    from tests.support.proxy import CuttableProxy

    run = DrainRun(sync)
    scn = bench.scenario(f"drain-{sync}")
    say(f"[drain, sync: {sync}] prefilling {BACKLOG_MESSAGES:,} messages")
    started = time.monotonic()
    run_async(prefill(scn.db, sync, scn.prefix, bench.fixed))
    run.prefill_s = time.monotonic() - started
    run.backlog_bytes = file_bytes(scn.db)
    say(f"  prefilled in {run.prefill_s:.1f} s: {run.backlog_bytes / 2**20:.1f} MiB on disk")
    proxy = CuttableProxy(bench.broker.port).start()
    proxy.cut()
    sub = TelemetrySubscriber(bench.broker.port, f"{scn.prefix}/+/telemetry")
    sub.expect_backlog(DEVICE, BACKLOG_MESSAGES)
    sub.start()
    proc: subprocess.Popen[bytes] | None = None
    recorder: subprocess.Popen[bytes] | None = None
    raw = Path(bench.args.profile or ".") / f"drain-{sync}.txt"
    try:
        proc = bench.start_agent(scn, proxy.url, sync, fast_reconnect=True)
        if not wait_log(scn.log, "running", proc, 30.0):
            run.failure = "the agent did not start: " + tail(scn.log, 5, " | ")
            return run
        time.sleep(WARMUP)
        pid = proc.pid
        run.rss.append((0.0, memory_kib(pid)[0]))
        conns = proxy.connections
        t_restore, wall_restore = time.monotonic(), time.time()
        proxy.restore()
        if bench.args.profile:
            recorder = spy.start(bench.children, pid, raw)
            if recorder is None:
                say("py-spy not found (pip install py-spy): no profile")
        timeout = BACKLOG_SECONDS / 2  # slower than 2x real time: give up
        next_rss = t_restore + RSS_EVERY
        t_connect: float | None = None
        cpu0 = io0 = broker0 = bench0 = None
        m0 = machine_sample()
        tally = sub.tally()
        while tally.complete_at is None and time.monotonic() - t_restore < timeout:
            now = time.monotonic()
            if t_connect is None and proxy.connections > conns:
                t_connect = now
                cpu0, io0 = cpu_seconds(pid), proc_io(pid)["write_bytes"]
                m0 = machine_sample()
                broker0, bench0 = maybe_cpu(bench.broker.pid), cpu_seconds()
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
                run.machine = machine_load(m0, machine_sample())
                run.write_bytes = proc_io(pid)["write_bytes"] - io0
                run.broker_cpu_s = maybe_cpu(bench.broker.pid) - (broker0 or 0.0)
                run.bench_cpu_s = cpu_seconds() - (bench0 or 0.0)
        if recorder is not None:
            spy.stop(bench.children, recorder)
            recorder = None
            run.profile = spy.summarize(raw)
        if t_connect is not None:
            run.restore_to_connect_s = t_connect - t_restore
            if tally.complete_at is not None:
                run.drain_s = tally.complete_at - t_connect
                run.caught_up_s = caught_up(sub, tally.complete_at) - t_connect
        if tally.complete_at is None:
            run.failure = (
                f"only {tally.target_got:,} of {BACKLOG_MESSAGES:,} backlog messages arrived "
                f"in {t_end - t_restore:.0f} s"
                + ("" if t_connect is not None else "; the agent never reconnected")
            )
        with sub.lock:
            run.extra_messages = sum(
                1
                for _, _, _, seq, ts, _ in sub.arrivals
                if seq > BACKLOG_MESSAGES and ts < wall_restore * 1000
            )
    finally:
        if recorder is not None:
            spy.stop(bench.children, recorder)
        if proc is not None:
            run.log = bench.finish_agent(proc, scn.log)
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
    bench.discard(scn.buffers)
    return run


def caught_up(sub: TelemetrySubscriber, after: float, timeout: float = 30.0) -> float:
    """When the first message polled after the drain arrived less than 1 s old: the live
    readings no longer wait behind the backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sub.lock:
            for t, wall, _, _, ts, _ in sub.arrivals[-50:]:
                if t >= after and wall * 1000 - ts < 1000:
                    return t
        time.sleep(0.05)
    return math.nan
