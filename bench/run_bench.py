"""bench.run's scenarios: the floor and the agent against the same simulators, then idle."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import spy
from bench.agent import log_record
from bench.children import Children, simulator_port, spawn_agent, start_broker, start_simulator
from bench.common import PY, read_line, say, tail
from bench.proc import memory_kib
from bench.run_counter import TelemetryCounter
from bench.run_measure import Result, measure, sub_window_length, sub_windows
from bench.run_setup import (
    DEVICES_PER_SIM,
    IDLE_INTERVAL,
    IDLE_POINTS,
    IDLE_SECONDS,
    INTERVAL,
    POINTS,
    WARMUP,
    agent_config,
)

Sims = list[subprocess.Popen[bytes]]


def start_simulators(children: Children, count: int, logdir: Path) -> Sims:
    return [
        start_simulator(children, logdir / f"sim-{i}.log", ["--deterministic"])
        for i in range(count)
    ]


def scan_log(
    path: Path, start: int = 0, end: int | None = None
) -> tuple[dict[str, int], list[str]]:
    """Lines per level, and the distinct WARNING/ERROR/CRITICAL messages (and tracebacks),
    in bytes start..end of the log."""
    counts: dict[str, int] = {}
    problems: list[str] = []
    for line in path.read_bytes()[start:end].decode(errors="replace").splitlines():
        level, message = log_record(line)
        if level:
            counts[level] = counts.get(level, 0) + 1
            if level in ("WARNING", "ERROR", "CRITICAL"):
                text = line if message is None else message
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
        self.broker = start_broker(self.workdir / "mosquitto")
        say(f"mosquitto on port {self.broker.port} (pid {self.broker.pid})")

    def close(self) -> None:
        self.children.stop_all()
        if self.broker is not None:
            self.broker.close()

    def helpers(self, sims: Sims) -> dict[str, list[int]]:
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

    def run_floor(self, label: str, devices: int, ports: list[int], sims: Sims) -> Result:
        result = Result(label, "floor", devices, POINTS, INTERVAL)
        say(f"[{label}] floor: bare pymodbus loop, warm-up {WARMUP:g} s, window {self.seconds:g} s")
        outfile = self.workdir / f"floor-{devices}.json"
        argv = [PY, "-m", "bench.run", "--floor", ",".join(map(str, ports)), str(devices)]
        argv.append(str(outfile))
        errlog = self.workdir / f"floor-{devices}.log"
        with errlog.open("wb") as err:
            proc = self.children.spawn(argv, stdout=subprocess.PIPE, stderr=err)
        try:
            if read_line(proc, 30.0) != "READY":
                result.failure = "floor process did not start: " + tail(errlog, 15)
                return result
            time.sleep(WARMUP)
            window = measure(self.seconds, proc.pid, self.helpers(sims))
            result.rss_kib, result.hwm_kib = memory_kib(proc.pid)
        finally:
            result.stop_s = self.children.stop(proc)
        result.exit_code = proc.returncode
        if not outfile.exists():
            result.failure = "floor process wrote no result: " + tail(errlog, 15)
            return result
        data = json.loads(outfile.read_text())
        times = sorted(t for per_device in data["done"] for t in per_device)

        def count(a: float, b: float) -> int:
            return POINTS * sum(1 for t in times if a <= t < b)

        result.window = window
        result.judge_polls(
            {
                str(i): [t for t in per_device if window.t0 <= t < window.t1]
                for i, per_device in enumerate(data["done"])
            }
        )
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
        sims: Sims,
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
        proc = spawn_agent(self.children, config, logpath)
        try:
            if not counter.wait_devices(names, 30.0):
                result.failure = "not every device delivered within 30 s: " + tail(logpath, 15)
                return result
            time.sleep(WARMUP)
            counter.timing = True
            window = measure(seconds, proc.pid, self.helpers(sims))
            counter.timing = False
            # Delivery is judged up to here: a profile taken next pauses the agent.
            tallies = {name: replace(t, skips=list(t.skips)) for name, t in counter.tallies.items()}
            log_end = logpath.stat().st_size
            if proc.poll() is not None:
                result.failure = f"agent exited ({proc.returncode}): " + tail(logpath, 15)
                return result
            result.rss_kib, result.hwm_kib = memory_kib(proc.pid)
            if self.args.profile and not label.startswith("idle"):
                out = Path(self.args.profile) / f"agent-{devices}x{points}.txt"
                say(spy.record(proc.pid, out, min(seconds, 20.0)))
        finally:
            result.stop_s = self.children.stop(proc, on_overrun=self._hung(result))
            result.exit_code = proc.returncode
            counter.close()
        result.window = window
        result.judge_polls(counter.poll_times(window.wall0, window.wall1))
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
            result.hang = spy.dump(pid)
            say(f"agent {pid} still running 10 s after SIGTERM; its stacks:\n{result.hang}")

        return dump

    @property
    def chunk(self) -> float:
        return sub_window_length(self.seconds)

    @staticmethod
    def _line(r: Result) -> str:
        w = r.window
        assert w is not None
        return (
            f"    {r.role}: {r.readings:,} / {r.expected:,.0f} readings, CPU {w.cpu_s:.2f} s "
            f"({100 * w.cpu_s / w.seconds:.1f} % of a core) = {r.us_per_reading:.2f} us/reading "
            f"(schedstat {r.sched_us_per_reading:.2f}), RSS {r.rss_kib / 1024:.1f} MiB"
        )
