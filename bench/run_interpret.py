"""bench.run's report, continued: the sections in prose (what the figures say, the import
check, the method) and the formats they share with the tables."""

from __future__ import annotations

import math

from bench import run_setup as setup
from bench.agent import BANK
from bench.report import section
from bench.run_imports import IMPORT_CHECK, ImportCheck
from bench.run_measure import Result
from bench.run_setup import TARGET_US


def fmt_us(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} µs"


def pct(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.{digits}f} %"


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


def imports_section(imports: ImportCheck) -> list[str]:
    doc = section(
        "Imports of a Modbus-only agent",
        "```",
        f'python -c "{IMPORT_CHECK}"',
        "```",
        "",
    )
    if imports.error:
        doc.append(f"Failed: `{imports.error}`")
        return doc
    doc.append(
        f"prints {imports.modules!r}: the Modbus driver, and pymodbus with it, is imported "
        "only when a config has a Modbus device (drivers/registry.py)."
        if not imports.modules
        else "prints "
        + ", ".join(f"{p}: {n}" for p, n in ImportCheck.packages(imports.modules).items())
        + " modules."
    )
    running = ImportCheck.packages(imports.running)
    doc += [
        "",
        "Once the drivers of a Modbus-only config are built, as in the running agent: "
        + ", ".join(f"{p}: {n} modules" for p, n in running.items())
        + f" ({imports.running_total} modules in all).",
    ]
    return doc


def method_section(seconds: float) -> list[str]:
    ms = round(setup.INTERVAL * 1000)
    return section(
        "Method",
        f"- One simulator process per {setup.DEVICES_PER_SIM} devices "
        "(`python -m simulators modbus --port 0 --deterministic`); each device is a config "
        "entry of its own with its own TCP connection, as with real PLCs. A private "
        "mosquitto on a free port; a paho subscriber (QoS 1) in the bench process counts "
        "and checks every telemetry message.",
        f"- Agent config: {setup.POINTS} float32 points per device at holding {BANK} + 2 i, "
        f"`poll_interval: {ms}ms`, `timeout: {ms}ms` "
        f"(it may not exceed the interval), buffer defaults ({setup.buffer_defaults()}), MQTT 5 at "
        "QoS 1, log level info. The planner makes 4 requests per poll (124 + 124 + 124 + 28 "
        "registers).",
        "- Floor: one `AsyncModbusTcpClient` per device on the agent's event loop (uvloop), "
        "the same 4 requests, `struct` decoding, deadline-scheduled like the agent's runner; "
        "nothing else (no reading objects, JSON, buffer or MQTT).",
        f"- Warm-up {setup.WARMUP:g} s (for the agent, after every device delivered its first "
        f"message), then a {seconds:g} s window. Expected readings = devices × points × "
        "window / interval. The rate counts as met when every device polled at ≥ 99.8 % of "
        "the nominal rate with no skipped slot in the window, and no seq was lost or "
        "repeated and no reading was bad in the whole run. (Arrivals in the window are "
        "bursty and may exceed or fall short of the expected count by a message per device "
        "at each edge; they are only the divisor of the CPU.)",
        f"- Idle: 1 device × {setup.IDLE_POINTS} points every {setup.IDLE_INTERVAL:g} s, "
        f"{setup.IDLE_SECONDS:g} s window.",
        "- `python -m bench.run --keep` keeps the configs and logs of a run; `--profile DIR` "
        "attaches py-spy to the agent after each measured window (figures unaffected).",
    )
