"""A durable message buffer on SQLite (WAL), written by one dedicated thread.

Why a thread: sqlite3 calls block, and a commit with synchronous=FULL waits for fsync. All
database work happens on one thread that owns the connection; the event loop only enqueues
commands and awaits futures, so polling never stalls on the disk.

Group commit: inserts and deletes are gathered for up to `flush_interval` or `flush_messages`
and committed in one transaction. A message is *buffered* once that transaction committed;
the publisher reads only committed rows, and deletes a row only after the broker's PUBACK.

Sequence numbers: the last `seq` of each device is stored in the same transaction as the
message that carries it, so a restart continues the numbering and never reuses a number
that may have reached the platform.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..readings import Message

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS seqs (device TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT NULL, topic TEXT NOT NULL,
    qos INTEGER NOT NULL, retain INTEGER NOT NULL, payload BLOB NOT NULL,
    created_ms INTEGER NOT NULL, reason TEXT NOT NULL, failed_ms INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: int
    message: Message


@dataclass
class BufferStats:
    depth: int = 0  # messages waiting
    committed: int = 0
    acked: int = 0
    dead_lettered: int = 0
    commits: int = 0
    commit_seconds: float = 0.0  # total, for the mean commit latency
    io_errors: int = 0
    quarantined: list[str] = field(default_factory=list)


class BufferUnavailable(Exception):
    """The buffer cannot be used (its directory is not writable, say)."""


class _Stop:
    pass


class SqliteBuffer:
    def __init__(
        self,
        path: Path,
        *,
        sync: str = "full",
        flush_interval: float = 0.05,
        flush_messages: int = 200,
    ) -> None:
        self.path = Path(path)
        self.sync = sync
        self.flush_interval = flush_interval
        self.flush_messages = flush_messages
        self.stats = BufferStats()
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._seqs: dict[str, int] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[Callable[[], None]] = []
        self._death: asyncio.Future[BaseException] | None = None

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

    def dead_letter(self, row_id: int, reason: str) -> None:
        self._q.put(("dead", row_id, reason))

    async def fetch(self, after_id: int, limit: int) -> list[StoredMessage]:
        """Committed messages with id > after_id, oldest first."""
        fut: concurrent.futures.Future[list[StoredMessage]] = concurrent.futures.Future()
        self._q.put(("fetch", after_id, limit, fut))
        return await asyncio.wrap_future(fut)

    async def flush(self) -> None:
        """Return once everything queued so far has been committed."""
        fut: concurrent.futures.Future[list[StoredMessage]] = concurrent.futures.Future()
        self._q.put(("fetch", 0, 0, fut))
        await asyncio.wrap_future(fut)

    async def close(self) -> None:
        if self._thread is None:
            return
        fut: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._q.put((_Stop, fut))
        await asyncio.wrap_future(fut)
        self._thread.join()
        self._thread = None

    async def watch(self) -> None:
        """Raise BufferUnavailable if the buffer thread dies: the agent must then exit (and be
        restarted by systemd) rather than poll into a buffer that no longer commits."""
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
            db = self._open_db()
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

    def _open_db(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise BufferUnavailable(
                f"cannot use buffer directory {self.path.parent}: "
                f"{err.strerror or err}; fix buffer.path"
            ) from err
        if not os.access(self.path.parent, os.W_OK):
            raise BufferUnavailable(
                f"cannot use buffer directory {self.path.parent}: not writable "
                "by this user; fix its owner or buffer.path"
            )
        db: sqlite3.Connection | None = None
        try:
            db = self._connect()
            ok = db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
            if ok:
                db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            ok, reason = False, str(err)
        else:
            reason = "integrity check failed"
        if not ok or db is None:
            if db is not None:
                db.close()
            self._quarantine(reason)
            db = self._connect()
            db.executescript(_SCHEMA)
        self._seqs = dict(db.execute("SELECT device, seq FROM seqs").fetchall())
        self.stats.depth = db.execute("SELECT count(*) FROM messages").fetchone()[0]
        return db

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.sync == 'full' else 'NORMAL'}")
        return db

    def _quarantine(self, reason: str) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                dst = Path(f"{self.path}.corrupt-{stamp}{suffix}")
                src.rename(dst)
                if not suffix:
                    self.stats.quarantined.append(str(dst))
        log.error(
            "buffer %s is unreadable (%s): moved aside to %s.corrupt-%s, starting a fresh "
            "one; recover data from the old file with sqlite3 if needed",
            self.path,
            reason,
            self.path,
            stamp,
        )

    def _serve(self, db: sqlite3.Connection) -> None:
        while True:
            inserts: list[Message] = []
            acks: list[int] = []
            dead: list[tuple[int, str]] = []
            after: list[Any] = []  # fetches and stop: answered after the commit
            item = self._q.get()
            deadline = time.monotonic() + self.flush_interval
            while True:
                if isinstance(item, Message):
                    inserts.append(item)
                elif item[0] == "ack":
                    acks.extend(item[1])
                elif item[0] == "dead":
                    dead.append((item[1], item[2]))
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
            if inserts or acks or dead:
                self._commit(db, inserts, acks, dead)
            for cmd in after:
                if cmd[0] is _Stop:
                    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    cmd[1].set_result(None)
                    return
                _, after_id, limit, fut = cmd
                if not fut.set_running_or_notify_cancel():
                    continue  # the asker was cancelled (a publisher that lost its connection)
                try:
                    fut.set_result(self._fetch(db, after_id, limit) if limit else [])
                except sqlite3.Error as err:
                    self.stats.io_errors += 1
                    fut.set_exception(err)

    def _commit(
        self,
        db: sqlite3.Connection,
        inserts: list[Message],
        acks: list[int],
        dead: list[tuple[int, str]],
    ) -> None:
        started = time.monotonic()
        now = time.time_ns() // 1_000_000
        seqs: dict[str, int] = {}
        for m in inserts:
            if m.seq and m.seq > seqs.get(m.device, 0):
                seqs[m.device] = m.seq
        try:
            db.execute("BEGIN")
            if inserts:
                db.executemany(
                    "INSERT INTO messages (device, seq, topic, qos, retain, payload, created_ms)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (m.device, m.seq, m.topic, m.qos, int(m.retain), m.payload, now)
                        for m in inserts
                    ],
                )
                db.executemany(
                    "INSERT INTO seqs (device, seq) VALUES (?, ?) ON CONFLICT(device) DO UPDATE "
                    "SET seq = max(seq, excluded.seq)",
                    list(seqs.items()),
                )
            for row_id, reason in dead:
                db.execute(
                    "INSERT OR REPLACE INTO dead_letters SELECT id, device, seq, topic, qos, "
                    "retain, payload, created_ms, ?, ? FROM messages WHERE id = ?",
                    (reason, now, row_id),
                )
                acks.append(row_id)
            if acks:
                db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in acks])
            db.execute("COMMIT")
        except sqlite3.Error as err:
            self.stats.io_errors += 1
            if db.in_transaction:
                db.execute("ROLLBACK")
            log.error("buffer commit failed (%d messages not buffered): %s", len(inserts), err)
            return
        self.stats.commits += 1
        self.stats.commit_seconds += time.monotonic() - started
        self.stats.committed += len(inserts)
        self.stats.acked += len(acks) - len(dead)
        self.stats.dead_lettered += len(dead)
        self.stats.depth += len(inserts) - len(acks)
        for device, seq in seqs.items():
            self._seqs[device] = max(seq, self._seqs.get(device, 0))
        if inserts and self._loop is not None:
            self._loop.call_soon_threadsafe(self._notify)

    def _fetch(self, db: sqlite3.Connection, after_id: int, limit: int) -> list[StoredMessage]:
        rows = db.execute(
            "SELECT id, device, seq, topic, qos, retain, payload FROM messages WHERE id > ? "
            "ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [
            StoredMessage(r[0], Message(r[3], r[6], r[4], r[1], r[2], bool(r[5]))) for r in rows
        ]
