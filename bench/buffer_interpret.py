"""bench.buffer's report, continued: what the figures say, in sentences built from them."""

from __future__ import annotations

import math

from bench.buffer_bench import Bench
from bench.buffer_setup import BACKLOG_MESSAGES, POINTS, RATE, buffer_defaults
from bench.proc import cores


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


def busy_cores(machine: tuple[float, float]) -> str:
    """Machine busy (steal) in cores."""
    busy, steal = machine
    return "–" if math.isnan(busy) else f"{busy:.2f} ({steal:.2f})"


def fmt(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def interpretation(bench: Bench, stored: float) -> list[str]:
    """What the figures say, in sentences built from them (no figure is typed in here)."""
    out: list[str] = []
    flush_interval, flush_messages = buffer_defaults()
    payload = stored / POINTS  # stored bytes per reading
    by = {(w.sync, w.link): w for w in bench.writes if w.failure is None and w.readings}
    full_up, full_cut = by.get(("full", "up")), by.get(("full", "cut"))
    normal_up = by.get(("normal", "up"))
    if full_up is not None:
        w = full_up
        per_s = w.write_bytes / w.seconds
        per_txn = w.wchar / w.seconds * flush_interval
        out.append(
            f"- Disk writes, `sync: full`, link up: {w.bytes_per_reading:.0f} bytes per reading "
            f"({per_s / 1024:,.0f} KiB/s, {per_s * 86400 / 2**30:.1f} GiB a day) for "
            f"{payload:.1f} bytes of stored (compressed) payload per reading. SQLite hands "
            f"{w.per_reading(w.wchar):.0f} bytes per reading to write(): the group commit makes "
            f"a transaction at most every {flush_interval * 1000:g} ms, and each appends to the "
            f"WAL the 1 KiB pages it changed (about {per_txn / 1024:.1f} KiB: the new rows, the "
            "B-tree pages that inserting them and deleting the acknowledged ones touch, the "
            "`seqs` row). write_bytes counts whole 4 KiB pages of the page cache, and each "
            "fsync cleans the WAL's last, partly written page, which the next transaction "
            f"dirties again: hence {w.write_bytes / w.wchar:.1f}× wchar."
        )
        journal = w.journal_commits / w.seconds if w.journal_commits >= 0 else math.nan
        if bench.disk.mounted and w.device_bytes <= 1.25 * w.write_bytes:
            out.append(
                f"- At the device the same run wrote {w.per_reading(w.device_bytes):.0f} bytes "
                "per reading, about what write_bytes says: with the WAL at its full size and "
                "rewritten in place, an fdatasync needs no commit of ext4's journal "
                f"({journal:.1f} a second, its own 5 s timer). The warm-up waits for that "
                "steady state; while the WAL still grows (the first half minute after a start) "
                "every fsync commits the journal too and the device receives about twice as "
                "much."
            )
        elif bench.disk.mounted:
            out.append(
                f"- At the device the same run wrote {w.per_reading(w.device_bytes):.0f} bytes "
                f"per reading, {w.device_bytes / w.write_bytes:.1f}× write_bytes: ext4 "
                f"committed its journal {journal:.1f} times a second (metadata: the files' size "
                "or blocks changed)."
            )
    if full_cut is not None:
        w = full_cut
        line = (
            f"- With the link cut (a backlog growing, nothing deleted), `sync: full` writes "
            f"{w.bytes_per_reading:.0f} bytes per reading"
            + (
                ": less than with the link up, since no acknowledged rows are deleted."
                if full_up is not None and w.bytes_per_reading < full_up.bytes_per_reading
                else "."
            )
        )
        if bench.disk.mounted and w.journal_commits >= 0:
            line += (
                f" The database file grows with the backlog ({w.db_bytes / 2**20:.1f} MiB after "
                f"the window); ext4 committed its journal {w.journal_commits / w.seconds:.1f} "
                f"times a second and the device received {w.per_reading(w.device_bytes):.0f} "
                "bytes per reading."
            )
        out.append(line)
    if full_up is not None and normal_up is not None:
        w = normal_up
        line = (
            f"- `sync: normal` writes {w.bytes_per_reading:.0f} bytes per reading "
            f"({w.bytes_per_reading / full_up.bytes_per_reading:.0%} of `full`): without an "
            "fsync per transaction, each 4 KiB page of the WAL is dirtied once (write_bytes ≈ "
            "wchar)."
        )
        if bench.disk.mounted and w.device_bytes < 0.8 * w.write_bytes:
            line += (
                f" The device received only {w.per_reading(w.device_bytes):.0f} bytes per "
                "reading in the window: dirty pages wait in the page cache until a checkpoint "
                "syncs the WAL or for up to 30 s (vm.dirty_expire_centisecs), and a WAL page "
                "rewritten meanwhile reaches the disk once. That is the SD card's saving, paid "
                "for with the last commits on a power cut (docs/buffer.md)."
            )
        out.append(line)
    tp = {(t.sync, t.mode): t for t in bench.throughputs if t.seconds}
    commit, local, mqtt = (
        tp.get(("full", "commit")),
        tp.get(("full", "local")),
        tp.get(("full", "mqtt")),
    )
    normal_commit = tp.get(("normal", "commit"))
    if commit is not None:
        line = (
            f"- The buffer commits {commit.rate(commit.committed) * POINTS:,.0f} readings/s "
            f"({commit.rate(commit.committed):,.0f} messages/s) with `sync: full`"
        )
        if normal_commit is not None:
            line += f", {normal_commit.rate(normal_commit.committed) * POINTS:,.0f} with `normal`"
        line += (
            f": {commit.rate(commit.committed) * POINTS / RATE:,.0f}× what 1,000 readings/s "
            f"need. Under load a group commit takes {flush_messages} messages and the fsync "
            "is shared by them; the buffer's thread is then busy "
            f"{commit.buffer_cpu_s / commit.seconds:.0%} of the time (compressing and "
            "inserting), so the sync setting hardly matters at that rate."
        )
        out.append(line)
    if local is not None:
        out.append(
            f"- Committed and taken out again at once (fetch, decompress, ack, delete), the "
            f"buffer alone sustains {local.rate(local.delivered) * POINTS:,.0f} readings/s "
            f"with `sync: full`; its one thread does all of it "
            f"({local.buffer_cpu_s / local.seconds:.0%} busy)."
        )
    if mqtt is not None:
        out.append(
            "- Through the agent's MqttPublisher to mosquitto, in one process with the "
            f"producer, {mqtt.rate(mqtt.delivered) * POINTS:,.0f} readings/s are delivered with "
            f"`sync: full` (the process at {mqtt.cpu_s / mqtt.seconds:.0%} of a core, the "
            f"buffer thread at {mqtt.buffer_cpu_s / mqtt.seconds:.0%}, mosquitto at "
            f"{mqtt.broker_cpu_s / mqtt.seconds:.0%}): the Python side of delivery sets the "
            "pace, not the broker or the disk."
        )
    for d in bench.drains:
        if not d.drain_s > 0:
            continue
        out.append(
            f"- Drain (`sync: {d.sync}`): {d.drain_s:.1f} s for 10 minutes of data, "
            f"{d.speed:.0f}× real time, {BACKLOG_MESSAGES / d.drain_s:,.0f} messages/s. Over "
            f"the drain the agent used {d.cpu_s / d.drain_s:.0%} of one core (event loop and "
            f"buffer thread), the subscriber {d.bench_cpu_s / d.drain_s:.0%} and mosquitto "
            f"{d.broker_cpu_s / d.drain_s:.0%}, of {cores()} cores. RSS stayed within "
            f"{d.rss_delta_mib:.1f} MiB while 600,000 readings went through: the publisher "
            "holds only its in-flight window in memory, the backlog stays on disk."
            + (
                f" py-spy's busiest function (own time): `{d.profile[1].strip()}`."
                if len(d.profile) > 1
                else ""
            )
        )
    for d in bench.drains:
        bad = d.log.unexpected(link_cut=True)
        if bad:
            out.append(
                f"- During the drain with `sync: {d.sync}` the agent logged `{bad[0][:160]}`"
                + (
                    f"; the {d.seq_repeated} seq(s) that arrived twice are the messages it "
                    "sent again after reconnecting (at most `mqtt.inflight`, docs/buffer.md)."
                    if d.seq_repeated
                    else "."
                )
                + " Nothing was lost, but a drain should not need to reconnect."
            )
    loads = [r.machine[0] for r in bench.runs() if not math.isnan(r.machine[0])]
    out.append(
        "- This machine is shared (other tenants' load varies"
        + (
            f": everything together kept {min(loads):.1f} to {max(loads):.1f} of its "
            f"{cores()} cores busy during the windows"
            if loads
            else ""
        )
        + ") and its disk is virtual: the figures vary from run to run, the throughput ones "
        "by tens of per cent. An SD card's controller may write more than it receives (its "
        "erase blocks are larger than 4 KiB): what is measured here is what the gateway asks "
        "of it."
    )
    return out
