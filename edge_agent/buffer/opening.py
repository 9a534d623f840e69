"""Opening the buffer's database: checked, repaired by quarantine, or replaced by memory.

A file that fails SQLite's quick_check (or has an unknown format) is moved aside to
`<path>.corrupt-<time>` and a fresh one is started: a corrupt buffer must never stop the
agent. A directory that cannot be used at all (read-only, missing, not ours) gives an
in-memory database, so readings still flow live, without durability, logged critical.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .store import PAGE_SIZE, ROW_OVERHEAD, SCHEMA, BufferUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Opened:
    """A connection and what the buffer needs to know of its content."""

    db: sqlite3.Connection
    seqs: dict[str, int] = field(default_factory=dict)
    states: dict[str, bytes] = field(default_factory=dict)
    depth: int = 0
    stored_bytes: int = 0
    dropped: int = 0
    quarantined: str | None = None  # where a corrupt file was moved
    seq_floor: int = 0  # first seq - 1 for a device without a stored seq


def open_file(path: Path, sync: str, max_size: int) -> Opened:
    """The buffer file, checked; raises BufferUnavailable (or an OS/SQLite error) when its
    directory cannot be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise BufferUnavailable(
            f"cannot use buffer directory {path.parent}: {err.strerror or err}; fix buffer.path"
        ) from err
    if not os.access(path.parent, os.W_OK):
        raise BufferUnavailable(
            f"cannot use buffer directory {path.parent}: not writable "
            "by this user; fix its owner or buffer.path"
        )
    db: sqlite3.Connection | None = None
    reason = "integrity check failed"
    try:
        db = connect(path, sync, max_size)
        ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        if ok:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, 1):
                ok, reason = False, f"unknown buffer format version {version}"
            else:
                db.executescript(SCHEMA)
    except sqlite3.DatabaseError as err:
        ok, reason = False, str(err)
    quarantined = None
    if not ok or db is None:
        if db is not None:
            db.close()
        quarantined = quarantine(path, reason)
        db = connect(path, sync, max_size)
        db.executescript(SCHEMA)
    depth, stored = db.execute(
        "SELECT count(*), coalesce(sum(length(payload)), 0) FROM messages"
    ).fetchone()
    return Opened(
        db,
        seqs=dict(db.execute("SELECT device, seq FROM seqs").fetchall()),
        states=dict(db.execute("SELECT key, value FROM state").fetchall()),
        depth=depth,
        stored_bytes=stored + depth * ROW_OVERHEAD,
        dropped=db.execute("SELECT coalesce(sum(dropped), 0) FROM drops").fetchone()[0],
        quarantined=quarantined,
    )


def open_memory(path: Path, err: BaseException) -> Opened:
    """The file cannot be used: numbering goes on from the file's last seqs if it can still
    be read, else from the clock (a visible jump, never a reuse)."""
    opened = Opened(sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False))
    try:
        ro = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            opened.seqs = dict(ro.execute("SELECT device, seq FROM seqs").fetchall())
        finally:
            ro.close()
    except sqlite3.Error:
        opened.seq_floor = time.time_ns() // 1_000_000
    log.critical(
        "buffer %s cannot be used (%s): running with a buffer in memory; readings are NOT "
        "kept across a restart or power cut until this is fixed",
        path,
        err,
    )
    opened.db.executescript(SCHEMA)
    return opened


def connect(path: Path, sync: str, max_size: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # takes effect on a new file only
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    # A hard stop well above the soft cap: SQLITE_FULL instead of a full disk.
    db.execute(f"PRAGMA max_page_count={int(max_size * 1.5) // page + 4096}")
    return db


def quarantine(path: Path, reason: str) -> str:
    """Move the file (and its WAL and shared memory) aside; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(Path(f"{path}.corrupt-{stamp}{suffix}"))
    log.error(
        "buffer %s is unreadable (%s): moved aside to %s.corrupt-%s, starting a fresh "
        "one; recover data from the old file with sqlite3 if needed",
        path,
        reason,
        path,
        stamp,
    )
    return f"{path}.corrupt-{stamp}"
