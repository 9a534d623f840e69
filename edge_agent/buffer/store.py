"""What the buffer stores and how: the schema, payload encoding, statistics."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

from ..readings import Message

PAGE_SIZE = 1024
ROW_OVERHEAD = 48  # bytes a row costs beside its payload (ids, topic, varints), for the cap
ZLIB = 1

SCHEMA = """
PRAGMA user_version = 1;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, enc INTEGER NOT NULL,
    payload BLOB NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seqs (device TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS drops (device TEXT PRIMARY KEY, dropped INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, updated_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, enc INTEGER NOT NULL,
    payload BLOB NOT NULL, created_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    failed_ms INTEGER NOT NULL);
"""


def encode(payload: bytes) -> tuple[int, bytes]:
    if len(payload) < 128:
        return 0, payload
    packed = zlib.compress(payload, 1)
    return (ZLIB, packed) if len(packed) < len(payload) else (0, payload)


def decode(enc: int, payload: bytes) -> bytes:
    return zlib.decompress(payload) if enc == ZLIB else payload


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    message: Message


@dataclass
class BufferStats:
    depth: int = 0  # messages waiting
    stored_bytes: int = 0  # what counts against max_size
    committed: int = 0
    acked: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    lost: int = 0  # messages whose commit failed (disk full, I/O error): never buffered
    commits: int = 0
    commit_seconds: float = 0.0  # total, for the mean commit latency
    io_errors: int = 0
    oldest_ms: int | None = None  # when the oldest waiting message was buffered
    last_id: int = 0  # the newest message's row id
    quarantined: list[str] = field(default_factory=list)


@dataclass
class Txn:
    """What one transaction did, applied to the statistics only once it committed."""

    deleted: int = 0  # acked or dead-lettered rows deleted
    freed: int = 0  # bytes no longer stored (deleted and dropped)
    freed_by_drop: int = 0
    dropped_rows: int = 0  # stored rows dropped to make room
    dropped: Counter[str] = field(default_factory=Counter)  # per device, stored or refused
    limit: int = 0


class BufferUnavailable(Exception):
    """The buffer cannot be used (its directory is not writable, say)."""
