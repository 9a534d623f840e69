"""Read-only views of a buffer file for `edge-agent buffer stats|export`: safe to run while
the agent is running (WAL lets a reader in beside the writer)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .store import decode


class NoBuffer(Exception):
    pass


@dataclass
class DeviceStats:
    waiting: int = 0
    oldest_ms: int | None = None
    last_seq: int = 0
    dropped: int = 0
    dead: int = 0


@dataclass
class Stats:
    file_bytes: int
    waiting: int
    stored_bytes: int
    oldest_ms: int | None
    dropped: int
    dead: int
    devices: dict[str, DeviceStats] = field(default_factory=dict)


def _open(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise NoBuffer(f"no buffer file at {path} (the agent has not run with this config yet?)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT count(*) FROM messages").fetchone()
    except sqlite3.Error as err:
        raise NoBuffer(f"cannot read buffer {path}: {err}") from err
    return db


def stats(path: Path) -> Stats:
    db = _open(path)
    try:
        devices: dict[str, DeviceStats] = {}

        def dev(name: str) -> DeviceStats:
            return devices.setdefault(name, DeviceStats())

        for name, n, oldest in db.execute(
            "SELECT device, count(*), min(created_ms) FROM messages GROUP BY device"
        ):
            dev(name).waiting, dev(name).oldest_ms = n, oldest
        for name, seq in db.execute("SELECT device, seq FROM seqs"):
            dev(name).last_seq = seq
        for name, n in db.execute("SELECT device, dropped FROM drops"):
            dev(name).dropped = n
        for name, n in db.execute("SELECT device, count(*) FROM dead_letters GROUP BY device"):
            dev(name).dead = n
        waiting, stored, oldest = db.execute(
            "SELECT count(*), coalesce(sum(length(payload)), 0), min(created_ms) FROM messages"
        ).fetchone()
    finally:
        db.close()
    size = sum(
        p.stat().st_size
        for p in path.parent.glob(path.name + "*")
        if p.is_file() and not p.name.startswith(path.name + ".corrupt")
    )
    return Stats(
        size,
        waiting,
        stored,
        oldest,
        sum(d.dropped for d in devices.values()),
        sum(d.dead for d in devices.values()),
        dict(sorted(devices.items())),
    )


def export(path: Path, since_ms: int | None = None) -> Iterator[dict[str, Any]]:
    """Waiting messages (then dead letters), oldest first, with their payload as JSON."""
    db = _open(path)
    try:
        for table in ("messages", "dead_letters"):
            rows = db.execute(
                f"SELECT device, seq, topic, created_ms, enc, payload FROM {table} "
                "WHERE created_ms >= ? ORDER BY id",
                (since_ms or 0,),
            )
            for device, seq, topic, created, enc, payload in rows:
                raw = decode(enc, payload)
                try:
                    body: Any = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    body = raw.decode("utf-8", "replace")
                yield {
                    "device": device,
                    "seq": seq,
                    "topic": topic,
                    "buffered_ms": created,
                    "dead_letter": table == "dead_letters",
                    "payload": body,
                }
    finally:
        db.close()
