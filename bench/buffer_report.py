"""bench.buffer's report: docs/performance-buffer.md, a section per function, and the verdicts."""

from __future__ import annotations

import datetime as dt
import math
import platform
import sqlite3
from dataclasses import dataclass

from bench.buffer_bench import Bench
from bench.buffer_disk import mount_of
from bench.buffer_interpret import busy_cores, fmt, interpretation, mib
from bench.buffer_setup import (
    BACKLOG_MESSAGES,
    DEPTH_CAP,
    POINTS,
    RSS_EVERY,
    TARGET_BYTES,
    TARGET_RSS_MIB,
    TARGET_SPEEDUP,
    WARMUP,
    buffer_defaults,
)
from bench.buffer_telemetry import payload_sizes
from bench.common import verdict
from bench.proc import mem_total_mib
from bench.report import document, head, mosquitto_version, package_versions, section


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
    raw, stored = payload_sizes(bench.fixed)
    flush_interval, flush_messages = buffer_defaults()
    telemetry = (
        "Telemetry: 1 device × 100 float32 every 100 ms = 1,000 readings/s, one message of "
        f"100 readings per poll: {raw:,.0f} bytes of JSON, {stored:,.0f} bytes stored "
        f"(zlib, {raw / stored:.1f}×), with the simulator's "
        + ("constant values (`--deterministic`)." if bench.fixed else "slowly drifting values.")
        + f" Buffer defaults: group commit every {flush_interval * 1000:g} ms or "
        f"{flush_messages} messages, 1 KiB pages, WAL."
    )
    return document(
        "Performance of the buffer",
        command,
        "What each figure is and how it is taken: the docstring of "
        "[bench/buffer.py](../bench/buffer.py); the buffer itself: [buffer.md](buffer.md).",
        _machine(bench),
        started,
        ["", telemetry],
        section("Verdict", *_verdict(bench)),
        _writes(bench, window),
        _throughputs(bench, flush_messages),
        _drains(bench),
        _logs(bench),
        section("Interpretation", *interpretation(bench, stored), ""),
    )


def _machine(bench: Bench) -> list[tuple[str, str]]:
    v = package_versions(("paho-mqtt", "orjson", "uvloop", "edge-agent"))
    fs = (
        f"a private ext4 file system ({mount_of(bench.data).split(', ', 1)[1]} in a "
        f"{bench.disk.size / 2**30:g} GiB image, loop-mounted, on {mount_of(bench.workdir)}"
        if bench.disk.mounted
        else mount_of(bench.data)
    )
    return [
        ("Memory", f"{mem_total_mib() / 1024:.1f} GiB"),
        ("Buffer's file system", fs),
        ("Kernel", platform.release()),
        ("Python / SQLite", f"{platform.python_version()} / {sqlite3.sqlite_version}"),
        ("paho-mqtt / orjson / uvloop", f"{v['paho-mqtt']} / {v['orjson']} / {v['uvloop']}"),
        ("mosquitto", f"{mosquitto_version() or '?'} (private, on a free port)"),
        ("edge-agent", v["edge-agent"]),
    ]


def _verdict(bench: Bench) -> list[str]:
    doc = []
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
    return doc


def _writes(bench: Bench, window: float) -> list[str]:
    doc = section(
        f"1. Disk writes at 1,000 readings/s ({window:g} s windows)",
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
        *head(
            [
                "run",
                "warm-up",
                "readings / expected",
                "**write_bytes per reading**",
                "write_bytes/s",
                "wchar per reading",
                "write calls/s",
                "device per reading",
                "journal commits/s",
                "agent CPU",
                "RSS",
                "buffer on disk",
                "machine busy (steal), cores",
            ],
            "l" + "r" * 12,
        ),
    )
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
    return doc


def _throughputs(bench: Bench, flush_messages: int) -> list[str]:
    doc = section(
        "2. Throughput: how fast the buffer commits and delivers",
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
        *head(
            [
                "run",
                "committed msg/s",
                "**committed readings/s**",
                "delivered msg/s",
                "**delivered readings/s**",
                "commits/s (mean ms)",
                "buffer thread CPU",
                "process CPU",
                "mosquitto CPU",
                "write_bytes per reading",
                "backlog at the end",
                "machine busy (steal), cores",
            ],
            "l" + "r" * 11,
        ),
    )
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
    return doc


def _drains(bench: Bench) -> list[str]:
    doc = section(
        "3. Drain of a 10-minute backlog (6,000 messages, 600,000 readings)",
        "The backlog is committed through SqliteBuffer (the agent's settings and payloads), "
        "then the agent starts on it with the link cut, polls the same device live for "
        f"{WARMUP:g} s, and the link is restored. Drain time: from the agent's reconnection "
        "to the arrival of the last of seq 1..6,000 at the subscriber (every seq checked). "
        "Caught up: the first live message less than 1 s old. RSS every "
        f"{RSS_EVERY:g} s from before the restore to the end of the drain; CPU and writes of "
        "the agent over the drain.",
        "",
        *head(
            [
                "sync",
                "backlog on disk",
                "restore → connected",
                "**drain time**",
                "**× real time**",
                "readings/s drained",
                "caught up",
                "**RSS min–max (Δ)**",
                "agent CPU",
                "mosquitto / subscriber CPU",
                "write_bytes per reading drained",
                "machine busy (steal), cores",
            ],
            "l" + "r" * 11,
        ),
    )
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
            *head(
                [
                    "sync",
                    "backlog messages at the subscriber",
                    "live messages polled during the cut",
                    "messages in all",
                    "seq missing / repeated",
                    "peak RSS (VmHWM)",
                    "log warnings, errors",
                    "SIGTERM → exit",
                ],
                "l" + "r" * 7,
            ),
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
    return doc


def _logs(bench: Bench) -> list[str]:
    doc = section(
        "Agent logs",
        *head(["run", "warnings", "errors", "unexpected problems", "SIGTERM → exit"], "lrrlr"),
    )
    runs = [(f"writes, {w.label}", w.log, w.link == "cut") for w in bench.writes]
    runs += [(f"drain, sync: {d.sync}", d.log, True) for d in bench.drains]
    for label, log, cut in runs:
        bad = log.unexpected(link_cut=cut)
        doc.append(
            f"| {label} | {log.warnings} | {log.errors} | "
            f"{'; '.join(f'`{p[:120]}`' for p in bad[:3]) or 'none'} | "
            f"{log.stop_s:.1f} s, exit {log.exit_code} |"
        )
    doc += [
        "",
        "Expected with the link cut, and not counted as unexpected: `MQTT: cannot connect …` "
        "when the agent finds the broker unreachable, and, at the stop of a disk-write run, "
        "`stopping before the broker took everything: the rest stays buffered`.",
    ]
    return doc
