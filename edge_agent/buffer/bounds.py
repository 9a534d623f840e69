"""The buffer's bounds: max_size, min_free, max_age, when_full. Runs on the buffer thread,
inside the transaction that needs the room (see sqlite.py)."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import Counter
from typing import Any

from .store import ROW_OVERHEAD, BufferStats, Txn

log = logging.getLogger("edge_agent.buffer.sqlite")


class Bounds:
    """Mixed into SqliteBuffer: these methods use its settings and statistics."""

    max_size: int
    max_age: float | None
    when_full: str
    min_free: int
    stats: BufferStats
    path: Any
    _full_episode: int
    _handed_upto: int
    _statvfs_at: float
    _free: int
    _stored_at_statvfs: int

    def _limit(self) -> int:
        """Bytes the stored messages may take now: max_size, less if the disk runs out.
        The free space is looked up at most once a second, and then reduced by what this
        buffer stored since (nothing else is assumed to write much in between)."""
        now = time.monotonic()
        if now >= self._statvfs_at + 1.0:
            try:
                st = os.statvfs(self.path.parent)
                self._free = st.f_bavail * st.f_frsize
            except OSError:
                self._free = 1 << 62
            self._statvfs_at, self._stored_at_statvfs = now, self.stats.stored_bytes
        free = self._free - max(0, self.stats.stored_bytes - self._stored_at_statvfs)
        return min(self.max_size, self.stats.stored_bytes + max(0, free - self.min_free))

    def _make_room(
        self, db: sqlite3.Connection, rows: list[tuple[Any, ...]], txn: Txn, force: bool
    ) -> list[tuple[Any, ...]]:
        """Drop what must go for `rows` to fit; returns the rows to insert."""
        limit = self._limit()
        txn.limit = limit
        incoming = sum(len(r[6]) + ROW_OVERHEAD for r in rows)
        stored = self.stats.stored_bytes - txn.freed  # acks of this transaction made room
        excess = stored + incoming - limit
        if force:  # SQLite itself said full: free a tenth whatever the policy
            excess = max(excess, stored // 10 + incoming)
        if excess <= 0:
            return rows
        if self.when_full == "drop_newest" and not force:
            room = max(0, limit - stored)
            kept: list[tuple[Any, ...]] = []
            for r in rows:
                size = len(r[6]) + ROW_OVERHEAD
                if size > room:
                    break  # keep the oldest of the incoming, in order: no holes in seq
                kept.append(r)
                room -= size
            for r in rows[len(kept) :]:
                txn.dropped[r[0]] += 1
            return kept
        skip = 0 if force else self._handed_upto
        while txn.freed_by_drop < excess:
            batch = db.execute(
                "SELECT id, device, length(payload) FROM messages WHERE id > ? ORDER BY id "
                "LIMIT 500",
                (skip,),
            ).fetchall()
            if not batch:
                break
            take = []
            for row_id, device, size in batch:
                take.append((row_id,))
                txn.dropped[device] += 1
                txn.dropped_rows += 1
                txn.freed_by_drop += size + ROW_OVERHEAD
                if txn.freed_by_drop >= excess:
                    break
            db.executemany("DELETE FROM messages WHERE id = ?", take)
            skip = take[-1][0]
        txn.freed += txn.freed_by_drop
        return rows

    def _note_drops(self, txn: Txn) -> None:
        n = sum(txn.dropped.values())
        if not n:
            if self._full_episode:
                log.info("buffer has room again; %d messages were dropped", self._full_episode)
                self._full_episode = 0
            return
        self.stats.dropped += n
        if not self._full_episode:
            why = "max_size" if txn.limit >= self.max_size else "min_free on the file system"
            log.warning(
                "buffer full (%s reached): dropping the %s messages (%s so far); counted per "
                "device in `edge-agent buffer stats`",
                why,
                "oldest" if self.when_full == "drop_oldest" else "newest",
                ", ".join(f"{d}: {c}" for d, c in sorted(txn.dropped.items())),
            )
        self._full_episode += n

    def _sweep_old(self, db: sqlite3.Connection) -> None:
        assert self.max_age is not None
        cutoff = time.time_ns() // 1_000_000 - int(self.max_age * 1000)
        try:
            db.execute("BEGIN IMMEDIATE")
            gone = db.execute(
                "DELETE FROM messages WHERE created_ms < ? RETURNING device, length(payload)",
                (cutoff,),
            ).fetchall()
            dropped = Counter(g[0] for g in gone)
            if dropped:
                db.executemany(
                    "INSERT INTO drops (device, dropped) VALUES (?, ?) ON CONFLICT(device) "
                    "DO UPDATE SET dropped = dropped + excluded.dropped",
                    list(dropped.items()),
                )
            db.execute("COMMIT")
        except sqlite3.Error as err:
            self.stats.io_errors += 1
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.error("buffer: dropping messages older than max_age failed: %s", err)
            return
        if gone:
            self.stats.dropped += len(gone)
            self.stats.depth -= len(gone)
            self.stats.stored_bytes -= sum(g[1] + ROW_OVERHEAD for g in gone)
            log.warning(
                "buffer: dropped %d messages older than max_age (%s)",
                len(gone),
                ", ".join(f"{d}: {c}" for d, c in sorted(dropped.items())),
            )
