"""`edge-agent buffer stats|export`: for a technician at a gateway that lost its uplink."""

from __future__ import annotations

import sys
import time
from datetime import datetime

import orjson

from .buffer.inspect import export, stats
from .config.models import Config
from .config.units import format_size, parse_duration


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    ago = time.time() - ms / 1000
    stamp = datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
    if ago < 120:
        return f"{stamp} ({ago:.0f} s ago)"
    if ago < 7200:
        return f"{stamp} ({ago / 60:.0f} min ago)"
    return f"{stamp} ({ago / 3600:.1f} h ago)"


def print_stats(cfg: Config) -> None:
    s = stats(cfg.buffer.path)
    b = cfg.buffer
    print(f"buffer        {b.path} ({format_size(s.file_bytes)} on disk)")
    print(
        f"waiting       {s.waiting} messages, {format_size(s.stored_bytes)} stored "
        f"(cap {format_size(b.max_size)}, when full: {b.when_full})"
    )
    print(f"oldest        {_when(s.oldest_ms)}")
    print(f"dropped       {s.dropped} (since the file was created)")
    print(f"dead letters  {s.dead} (refused by the broker; retried once a minute)")
    if s.devices:
        width = max(len("DEVICE"), *(len(d) for d in s.devices))
        print(
            f"\n{'DEVICE':<{width}}  {'WAITING':>8}  {'LAST SEQ':>9}  {'DROPPED':>8}  "
            f"{'DEAD':>5}  OLDEST"
        )
        for name, d in s.devices.items():
            print(
                f"{name:<{width}}  {d.waiting:>8}  {d.last_seq:>9}  {d.dropped:>8}  "
                f"{d.dead:>5}  {_when(d.oldest_ms)}"
            )


def parse_since(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int((time.time() - parse_duration(text)) * 1000)
    except ValueError:
        pass
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise SystemExit(
            f"edge-agent: --since {text!r}: give a time such as "
            "2026-11-29T08:00 (local time) or a duration such as 2h"
        ) from None


def print_export(cfg: Config, since: str | None) -> int:
    since_ms = parse_since(since)
    out = sys.stdout.buffer
    n = 0
    for item in export(cfg.buffer.path, since_ms):
        out.write(orjson.dumps(item) + b"\n")
        n += 1
    out.flush()
    print(f"exported {n} messages", file=sys.stderr)
    return 0
