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
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.buffer_bench import Bench
from bench.buffer_drain import drain
from bench.buffer_report import judge, report
from bench.buffer_setup import (
    MODES,
    SCENARIOS,
    SITE,
    SYNCS,
    TARGET_BYTES,
    TARGET_RSS_MIB,
    TARGET_SPEEDUP,
    say,
)
from bench.buffer_telemetry import telemetry
from bench.buffer_throughput import throughput
from bench.buffer_writes import disk_writes
from bench.common import ROOT, run_scenarios
from bench.report import publish


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

    def scenarios() -> str:
        bench.start()
        if "writes" in args.only:
            for sync in SYNCS:
                for link in ("up", "cut"):
                    bench.writes.append(disk_writes(bench, sync, link, args.seconds))
        if "throughput" in args.only:
            pool: list[Any] = []
            first_ts = time.time_ns() // 1_000_000
            prefix = f"maintenance4/{SITE}/gw-throughput"
            telemetry(prefix, 500, bench.fixed, first_ts, pool.append)
            for sync in SYNCS:
                for mode in MODES:
                    bench.throughputs.append(throughput(bench, sync, mode, throughput_s, pool))
        if "drain" in args.only:
            for sync in SYNCS:
                bench.drains.append(drain(bench, sync))
        # Before close(): the report names the file system the buffers are on.
        return report(bench, command, started, args.seconds)

    kept = "logs, configs and buffers" if args.keep else None
    doc = run_scenarios(scenarios, bench.close, workdir, kept, say)
    if doc is None:
        return 130
    publish(doc, Path(args.output), say)
    v = judge(bench)
    say(
        f"bytes written per reading (≤ {TARGET_BYTES:g}): {v.word(v.bytes_ok)}; "
        f"drain ≥ {TARGET_SPEEDUP:g}× real time: {v.word(v.speed_ok)}; "
        f"RSS flat within {TARGET_RSS_MIB:g} MiB: {v.word(v.rss_ok)}"
    )
    return 0 if v.measured else 1


if __name__ == "__main__":
    sys.exit(main())
