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
import datetime as dt
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.common import ROOT, run_scenarios, say
from bench.report import publish
from bench.run_bench import Bench
from bench.run_floor import floor_main
from bench.run_imports import ImportCheck, import_check
from bench.run_report import report
from bench.run_setup import INTERVAL, POINTS, TARGET_US, agent_config


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

    def scenarios() -> ImportCheck:
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
        return imports

    kept = "logs and configs" if args.keep else None
    imports = run_scenarios(scenarios, bench.close, workdir, kept)
    if imports is None:
        return 130
    failed = any(r.failure for r in bench.results)
    doc, cpu_met, rate_met = report(bench.results, imports, command, args.seconds, started)
    publish(doc, Path(args.output))
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
