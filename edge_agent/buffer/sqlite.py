"""A durable, bounded message buffer on SQLite (WAL), written by one dedicated thread.

Why a thread: sqlite3 calls block, and a commit with synchronous=FULL waits for fsync. All
database work happens on one thread that owns the connection; the event loop only enqueues
commands and awaits futures, so polling never stalls on the disk.

Definitions (docs/buffer.md):
- A message is *buffered* once the transaction holding it has committed. The publisher reads
  only committed rows, and a row is deleted only after the broker's successful PUBACK.
- Group commit: inserts, acks and dead letters are gathered for up to `flush_interval` or
  `flush_messages` and committed in one transaction.
- Sequence numbers: each device's last `seq` is stored in the same transaction as the message
  that carries it, so a restart continues the numbering and never reuses a number.

Disk writes: SD cards wear out, so payloads are stored zlib-compressed (JSON telemetry shrinks
about 8x) in 1 KiB pages (a small transaction rewrites fewer bytes).

Bounds: when the stored payloads would exceed `max_size`, or the file system would have less
than `min_free` left, the oldest messages are dropped (or the newest are refused:
`when_full`); messages older than `max_age` are dropped. Every drop is counted per device in
the database and warned about once per episode. SQLite's own `max_page_count` backs the cap,
so that a full disk cannot wedge the database (in WAL mode even a DELETE needs space).

Opening (checks, quarantine of a corrupt file, the in-memory fallback) is opening.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..readings import Message
from .bounds import Bounds
from .opening import open_file, open_memory
from .store import (
    ROW_OVERHEAD,
    BufferStats,
    BufferUnavailable,
    StoredMessage,
    Txn,
    decode,
    encode,
)

log = logging.getLogger(__name__)

AGE_SWEEP_SECONDS = 10.0


class _Stop:
    pass


class SqliteBuffer(Bounds):
    def __init__(
        self,
        path: Path,
        *,
        sync: str = "full",
        flush_interval: float = 0.2,
        flush_messages: int = 200,
        max_size: int = 512 * 2**20,
        max_age: float | None = None,
        when_full: str = "drop_oldest",
        min_free: int = 64 * 2**20,
    ) -> None:
        self.path = Path(path)
        self.sync = sync
        self.flush_interval = flush_interval
        self.flush_messages = flush_messages
        self.max_size = max_size
        self.max_age = max_age
        self.when_full = when_full
        self.min_free = min_free
        self.stats = BufferStats()
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._seqs: dict[str, int] = {}
        self._states: dict[str, bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[], None]] = []
        self._death: asyncio.Future[BaseException] | None = None
        self._full_episode = 0  # messages dropped in the current full episode
        # Rows handed to the publisher since its last rewind are in flight: a full buffer
        # drops around them, or a message could be counted as dropped and still delivered.
        self._handed_upto = 0
        self.degraded: str | None = None  # why the buffer runs in memory, if it does
        self.seq_floor = 0  # first seq - 1 for a device without a stored seq
        self._failed_commits = 0
        self._lost_in_failures = 0
        self._statvfs_at = -1e9
        self._free = 0
        self._stored_at_statvfs = 0
        self._next_sweep = 0.0

    # ---- event-loop side -------------------------------------------------------------
    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._main, args=(ready,), name="buffer", daemon=True
        )
        self._thread.start()
        await asyncio.wrap_future(ready)

    def last_seqs(self) -> dict[str, int]:
        return dict(self._seqs)

    def on_commit(self, callback: Callable[[], None]) -> None:
        """`callback` runs on the event loop after each commit that added messages."""
        self._listeners.append(callback)

    def put(self, message: Message) -> None:
        """Queue a message for the next group commit. Never blocks."""
        self._q.put(message)

    def ack(self, ids: list[int]) -> None:
        """The broker acknowledged these: delete them in the next commit."""
        if ids:
            self._q.put(("ack", ids))

    def states(self) -> dict[str, bytes]:
        """The states stored with save_state(), the latest of each key."""
        return dict(self._states)

    def save_state(self, key: str, value: bytes) -> None:
        """Keep `value` under `key` (running hours, counters...): written with the next
        group commit, so it is as durable as the messages around it."""
        self._states[key] = value
        self._q.put(("state", key, value))

    def dead_letter(self, row_id: int, reason: str) -> None:
        self._q.put(("dead", row_id, reason))

    async def fetch(self, after_id: int, limit: int) -> list[StoredMessage]:
        """Committed messages with id > after_id, oldest first."""
        return await self._ask("fetch", after_id, limit)

    async def requeue_dead_letters(self) -> int:
        """Give refused messages another chance: back at the end of the queue."""
        return await self._ask("requeue")

    async def flush(self) -> None:
        """Return once everything queued so far has been committed."""
        await self._ask("flush")

    async def _ask(self, *cmd: Any) -> Any:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._q.put((*cmd, fut))
        return await asyncio.wrap_future(fut)

    async def close(self) -> None:
        if self._thread is None:
            return
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._q.put((_Stop, fut))
        await asyncio.wrap_future(fut)
        self._thread.join()
        self._thread = None

    async def watch(self) -> None:
        """Raise BufferUnavailable if the buffer thread dies: the agent must then exit (and
        be restarted by systemd) rather than poll into a buffer that no longer commits."""
        assert self._loop is not None
        self._death = self._loop.create_future()
        err = await self._death
        raise BufferUnavailable(f"the buffer thread died: {err!r}")

    def _died(self, err: BaseException) -> None:
        if self._death is not None and not self._death.done():
            self._death.set_result(err)

    def _notify(self) -> None:
        for cb in self._listeners:
            cb()

    # ---- buffer thread -----------------------------------------------------------------
    def _main(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            db = self._open()
        except Exception as err:  # reported to open()'s caller
            ready.set_exception(err)
            return
        ready.set_result(None)
        try:
            self._serve(db)
        except BaseException as err:
            log.critical("buffer thread failed: nothing more can be buffered", exc_info=True)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._died, err)
            raise
        finally:
            db.close()

    def _open(self) -> sqlite3.Connection:
        try:
            opened = open_file(self.path, self.sync, self.max_size)
        except (BufferUnavailable, sqlite3.Error, OSError) as err:
            self.degraded = str(err)
            opened = open_memory(self.path, err)
        self._seqs, self._states = opened.seqs, opened.states
        self.seq_floor = opened.seq_floor
        self.stats.depth, self.stats.stored_bytes = opened.depth, opened.stored_bytes
        self.stats.dropped = opened.dropped
        if opened.quarantined:
            self.stats.quarantined.append(opened.quarantined)
        return opened.db

    def _serve(self, db: sqlite3.Connection) -> None:
        while True:
            inserts: list[Message] = []
            acks: list[int] = []
            dead: list[tuple[int, str]] = []
            states: dict[str, bytes] = {}
            after: list[Any] = []  # flush and stop: answered after the commit
            item = self._q.get()
            deadline = time.monotonic() + self.flush_interval
            while True:
                if isinstance(item, Message):
                    inserts.append(item)
                elif item[0] == "ack":
                    acks.extend(item[1])
                elif item[0] == "dead":
                    dead.append((item[1], item[2]))
                elif item[0] == "state":
                    states[item[1]] = item[2]
                elif item[0] in ("fetch", "requeue"):
                    # Answered at once from what is committed: a fetch must not cut a group
                    # commit short (that would mean a transaction, and an fsync, per message).
                    self._answer(db, item, pending={*acks, *(d[0] for d in dead)})
                else:
                    after.append(item)
                    break
                if len(inserts) >= self.flush_messages:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._q.get(timeout=remaining)
                except queue.Empty:
                    break
            if inserts or acks or dead or states:
                self._commit(db, inserts, acks, dead, states)
            if self.max_age and time.monotonic() >= self._next_sweep:
                self._next_sweep = time.monotonic() + AGE_SWEEP_SECONDS
                self._sweep_old(db)
            for cmd in after:
                if cmd[0] is _Stop:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    cmd[1].set_result(None)
                    return
                if cmd[-1].set_running_or_notify_cancel():  # flush: all before it committed
                    cmd[-1].set_result(None)

    def _answer(self, db: sqlite3.Connection, cmd: tuple[Any, ...], pending: set[int]) -> None:
        fut: concurrent.futures.Future[Any] = cmd[-1]
        if not fut.set_running_or_notify_cancel():
            return  # the asker was cancelled (a publisher that lost its connection)
        try:
            if cmd[0] == "fetch":
                rows = self._fetch(db, cmd[1], cmd[2], pending)
                if cmd[2]:
                    if cmd[1] < self._handed_upto:  # a rewind: nothing before is in flight
                        self._handed_upto = cmd[1]
                    if rows:
                        self._handed_upto = max(self._handed_upto, rows[-1].id)
                fut.set_result(rows)
            elif cmd[0] == "requeue":
                fut.set_result(self._requeue(db))
        except sqlite3.Error as err:
            self.stats.io_errors += 1
            fut.set_exception(err)

    def _commit(
        self,
        db: sqlite3.Connection,
        inserts: list[Message],
        acks: list[int],
        dead: list[tuple[int, str]],
        states: dict[str, bytes] | None = None,
    ) -> None:
        started = time.monotonic()
        now = time.time_ns() // 1_000_000
        rows = []
        for m in inserts:
            enc, blob = encode(m.payload)
            rows.append((m.device, m.seq, m.topic, m.qos, int(m.retain), enc, blob, now))
        for attempt in (1, 2):
            txn = Txn()
            try:
                db.execute("BEGIN IMMEDIATE")
                self._delete(db, acks, dead, now, txn)  # first: what was sent makes room
                kept = self._make_room(db, rows, txn, force=attempt == 2)
                self._insert(db, kept, txn)
                if states:
                    db.executemany(
                        "INSERT INTO state (key, value, updated_ms) VALUES (?, ?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value, "
                        "updated_ms = excluded.updated_ms",
                        [(k, v, now) for k, v in states.items()],
                    )
                db.execute("COMMIT")
                break
            except sqlite3.Error as err:
                self.stats.io_errors += 1
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if attempt == 1 and "full" in str(err).lower():
                    continue  # SQLITE_FULL: make room by force and try once more
                self._commit_failed(err, len(inserts))
                return
        if self._failed_commits:
            log.warning(
                "buffer commits work again after %d failed; %d messages were not buffered",
                self._failed_commits,
                self._lost_in_failures,
            )
            self._failed_commits = self._lost_in_failures = 0
        st = self.stats
        row = db.execute("SELECT created_ms FROM messages ORDER BY id LIMIT 1").fetchone()
        st.oldest_ms = row[0] if row else None
        if kept:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'messages'").fetchone()
            st.last_id = row[0] if row else st.last_id
        st.commits += 1
        st.commit_seconds += time.monotonic() - started
        st.committed += len(kept)
        st.acked += txn.deleted - len(dead)
        st.dead_lettered += len(dead)
        st.depth += len(kept) - txn.deleted - txn.dropped_rows
        st.stored_bytes += sum(len(r[6]) + ROW_OVERHEAD for r in kept) - txn.freed
        self._note_drops(txn)
        for r in kept:
            if r[1] > self._seqs.get(r[0], 0):
                self._seqs[r[0]] = r[1]
        if kept and self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify)

    def _commit_failed(self, err: sqlite3.Error, lost: int) -> None:
        """Logged once per episode (disk full, read-only): a line per commit would flood."""
        self.stats.lost += lost
        self._lost_in_failures += lost
        self._failed_commits += 1
        if self._failed_commits == 1:
            log.error(
                "buffer commit failed: %s; new readings are NOT buffered until this is fixed "
                "(disk full? read-only?); the agent keeps polling and retrying",
                err,
            )

    def _delete(
        self,
        db: sqlite3.Connection,
        acks: list[int],
        dead: list[tuple[int, str]],
        now: int,
        txn: Txn,
    ) -> None:
        ids = list(acks)
        for row_id, reason in dead:
            db.execute(
                "INSERT OR REPLACE INTO dead_letters SELECT id, device, seq, topic, qos, "
                "retain, enc, payload, created_ms, ?, ? FROM messages WHERE id = ?",
                (reason, now, row_id),
            )
            ids.append(row_id)
        for row_id in ids:
            gone = db.execute(
                "DELETE FROM messages WHERE id = ? RETURNING length(payload)", (row_id,)
            ).fetchone()
            if gone is not None:  # a message dropped while in flight is acked for nothing
                txn.deleted += 1
                txn.freed += gone[0] + ROW_OVERHEAD

    def _insert(self, db: sqlite3.Connection, rows: list[tuple[Any, ...]], txn: Txn) -> None:
        if rows:
            db.executemany(
                "INSERT INTO messages (device, seq, topic, qos, retain, enc, payload, "
                "created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            seqs: dict[str, int] = {}
            for r in rows:
                if r[1] > seqs.get(r[0], 0):
                    seqs[r[0]] = r[1]
            db.executemany(
                "INSERT INTO seqs (device, seq) VALUES (?, ?) ON CONFLICT(device) DO UPDATE "
                "SET seq = max(seq, excluded.seq)",
                list(seqs.items()),
            )
        if txn.dropped:
            db.executemany(
                "INSERT INTO drops (device, dropped) VALUES (?, ?) ON CONFLICT(device) DO "
                "UPDATE SET dropped = dropped + excluded.dropped",
                list(txn.dropped.items()),
            )

    # ---- reads -------------------------------------------------------------------------
    def _fetch(
        self, db: sqlite3.Connection, after_id: int, limit: int, pending: set[int]
    ) -> list[StoredMessage]:
        """Up to `limit` committed messages after `after_id`, without those whose ack or
        dead-lettering is pending in the transaction being gathered. Rows are filtered and
        cut to `limit` before their payloads are decompressed."""
        extra = sum(1 for i in pending if i > after_id)
        rows = db.execute(
            "SELECT id, device, seq, topic, qos, retain, enc, payload FROM messages "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit + extra),
        ).fetchall()
        kept = [r for r in rows if r[0] not in pending][:limit]
        return [
            StoredMessage(r[0], Message(r[3], decode(r[6], r[7]), r[4], r[1], r[2], bool(r[5])))
            for r in kept
        ]

    def _requeue(self, db: sqlite3.Connection) -> int:
        db.execute("BEGIN IMMEDIATE")
        moved = db.execute(
            "INSERT INTO messages (device, seq, topic, qos, retain, enc, payload, created_ms) "
            "SELECT device, seq, topic, qos, retain, enc, payload, created_ms FROM dead_letters "
            "ORDER BY id"
        ).rowcount
        db.execute("DELETE FROM dead_letters")
        db.execute("COMMIT")
        if moved:
            self.stats.depth += moved
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._notify)
        return moved
