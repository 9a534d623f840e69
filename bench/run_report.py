"""bench.run's report: docs/performance.md, a section per function."""

from __future__ import annotations

import datetime as dt
import math
import platform
import subprocess

from bench.common import ROOT, verdict
from bench.proc import cores
from bench.report import document, head, mosquitto_version, package_versions, section
from bench.run_imports import ImportCheck
from bench.run_interpret import (
    fmt_us,
    imports_section,
    interpretation,
    method_section,
    pct,
    rate_why,
)
from bench.run_measure import Result, sub_window_length
from bench.run_setup import TARGET_US, buffer_defaults


def report(
    results: list[Result], imports: ImportCheck, command: str, seconds: float, started: dt.datetime
) -> tuple[str, bool, bool]:
    """The markdown document, and whether the CPU and the rate targets were met."""
    main = [r for r in results if not r.scenario.startswith("idle")]
    agents = [r for r in main if r.role == "agent"]
    idle = next((r for r in results if r.scenario.startswith("idle")), None)
    cpu_met = bool(agents) and all(r.us_per_reading <= TARGET_US for r in agents)
    rate_met = bool(agents) and all(r.rate_ok for r in agents)
    doc = document(
        "Performance",
        command,
        "What it measures and how: [bench/README.md](../bench/README.md).",
        _machine(),
        started,
        section("Verdict", *_verdict(results, agents, idle, imports)),
        _figures(main, seconds),
        _idle(idle),
        _delivery(results, main),
        _others(results),
        imports_section(imports),
        section("Interpretation", *interpretation(results, imports)),
        method_section(seconds),
    )
    return doc, cpu_met, rate_met


def _machine() -> list[tuple[str, str]]:
    v = package_versions(("pymodbus", "paho-mqtt", "uvloop", "orjson", "edge-agent"))
    loop = "uvloop " + v["uvloop"] if v["uvloop"] != "not installed" else "asyncio"
    return [
        ("Python", f"{platform.python_version()}, event loop {loop}"),
        ("pymodbus", v["pymodbus"]),
        ("paho-mqtt / orjson", f"{v['paho-mqtt']} / {v['orjson']}"),
        ("mosquitto", mosquitto_version() or "not found"),
        ("edge-agent", f"{v['edge-agent']}, {code_version()}"),
    ]


def _verdict(
    results: list[Result], agents: list[Result], idle: Result | None, imports: ImportCheck
) -> list[str]:
    doc = []
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
    return doc


def _figures(main: list[Result], seconds: float) -> list[str]:
    doc = section(
        f"Figures ({seconds:g} s windows)",
        "CPU is utime+stime of the process (all threads) over the window. Per reading, it is "
        "divided by the readings delivered in the window: for the agent, those whose message "
        "arrived at the subscriber; for the floor, those decoded. Readings per second is the "
        "slowest device's, from its poll times (mean period over the window), so drift shows "
        "and the window's edges do not. Spread: min–max over "
        f"{sub_window_length(seconds):g} s sub-windows (scheduler runtime, ns resolution). "
        "Event loop: the agent's main thread's share of its CPU (the rest is the SQLite "
        "buffer thread).",
        "",
        *head(
            [
                "scenario",
                "process",
                "readings delivered / expected",
                "readings/s per device",
                "CPU, % of one core",
                "CPU per reading",
                "spread",
                "event loop",
                "RSS (peak)",
            ],
            "llrrrrrrr",
        ),
    )
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
    return doc


def _idle(idle: Result | None) -> list[str]:
    if idle is None or idle.window is None:
        return []
    w = idle.window
    return section(
        f"Idle ({idle.scenario.split(': ')[1]}, {w.seconds:.0f} s)",
        *head(
            [
                "CPU, % of one core",
                "wake-ups per second (context switches, all threads)",
                "RSS (peak)",
            ],
            "rrr",
        ),
        f"| {pct(w.cpu_s / w.seconds, 2)} (scheduler: {pct(w.sched_s / w.seconds, 2)}) | "
        f"{w.switches / w.seconds:.0f} | "
        f"{idle.rss_kib / 1024:.1f} MiB ({idle.hwm_kib / 1024:.1f}) |",
    )


def _delivery(results: list[Result], main: list[Result]) -> list[str]:
    doc = section(
        "Delivery (agent)",
        "Checked at the subscriber from the messages' `seq` and poll `ts`, over the whole "
        "run (warm-up included) unless marked window; the agent counts its skipped polls "
        "but does not log them. Skipped polls: slots of the 100 ms grid between a device's "
        "first and last poll in the window that have no poll. Late or skipped: gaps of 1.5 "
        "intervals or more between consecutive polls of a device (a poll that starts more "
        "than half an interval late also makes one). Latency: arrival minus the poll's "
        f"`ts`, in the window; it includes the buffer's group commit ({buffer_defaults()}).",
        "",
        *head(
            [
                "scenario",
                "messages",
                "seq missing / repeated",
                "skipped polls (window)",
                "late or skipped polls (run)",
                "bad readings",
                "latency p50 / p99 / max",
                "log warnings, errors",
                "SIGTERM → exit",
            ],
            "lrrrrrrrr",
        ),
    )
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
    return doc


def _others(results: list[Result]) -> list[str]:
    ncores = cores()
    doc = section(
        "The rest of the machine in each window",
        f"Everything below shares the {ncores} cores with the measured process; percentages "
        "are of one core. `others` is the machine's busy time minus the processes listed "
        "(other tenants of this machine, the kernel); `steal` is time the hypervisor gave to "
        "other virtual machines.",
        "",
        *head(
            [
                "scenario",
                "measured",
                "simulators",
                "mosquitto",
                "bench (subscriber)",
                "machine busy",
                "others",
                "steal",
                "measured: context switches/s",
            ],
            "llrrrrrrr",
        ),
    )
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
    return doc


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


def code_version() -> str:
    """The commit measured, and whether edge_agent/ differed from it (others edit it)."""
    try:
        commit = subprocess.run(
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
    return f"commit {commit}" + (" + uncommitted changes in edge_agent/" if dirty else "")
