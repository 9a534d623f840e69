"""The health snapshot: counters of the runners, the buffer and the publisher, published
retained on `{prefix}/health` (a snapshot, not a reading: it is not buffered)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from .drivers.base import Counting
from .readings import now_ms


def health_payload(
    started: float, runners: Mapping[str, Any], buffer: Any, publisher: Any
) -> bytes:
    b = buffer.stats
    devices = {
        name: {
            "available": r.stats.available,
            "polls": r.stats.polls,
            "failed_polls": r.stats.failed_polls,
            "skipped_polls": r.stats.skipped,
            "readings": r.stats.readings,
            "bad_readings": r.stats.bad_readings,
            "last_poll_ms": round(r.stats.last_poll_seconds * 1000, 1),
            **(r.driver.counters() if isinstance(r.driver, Counting) else {}),
        }
        for name, r in runners.items()
    }
    now = now_ms()
    return orjson.dumps(
        {
            "ts": now,
            "uptime_s": round(time.monotonic() - started),
            "devices": devices,
            "buffer": {
                "depth": b.depth,
                "stored_bytes": b.stored_bytes,
                "oldest_age_s": round((now - b.oldest_ms) / 1000, 1) if b.oldest_ms else 0,
                "dropped": b.dropped,
                "dead_lettered": b.dead_lettered,
                "lost": b.lost,
                "io_errors": b.io_errors,
                "commits": b.commits,
                "commit_ms_mean": round(b.commit_seconds / b.commits * 1000, 2) if b.commits else 0,
                "in_memory": buffer.degraded is not None,
            },
            "mqtt": {
                "connected": publisher.connected if publisher else False,
                "published": publisher.published if publisher else 0,
                "replayed": publisher.replayed if publisher else 0,
                "refused": publisher.refused if publisher else 0,
                "connects": publisher.connects if publisher else 0,
            },
        }
    )
