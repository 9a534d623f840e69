"""The SQLite buffer's contract: committed means stored, ack means gone, seqs survive."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from edge_agent.buffer import SqliteBuffer
from edge_agent.readings import Message


def msg(device: str, seq: int) -> Message:
    return Message(f"p/{device}/telemetry", f'{{"seq":{seq}}}'.encode(), 1, device, seq)


async def opened(path: Path) -> SqliteBuffer:
    buf = SqliteBuffer(path, flush_interval=0.01)
    await buf.open()
    return buf


async def test_put_fetch_ack_in_order(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    for i in range(1, 6):
        buf.put(msg("a", i))
    await buf.flush()
    rows = await buf.fetch(0, 10)
    assert [r.message.seq for r in rows] == [1, 2, 3, 4, 5]
    assert [r.message for r in rows] == [msg("a", i) for i in range(1, 6)]
    assert [r.message.seq for r in await buf.fetch(rows[1].id, 2)] == [3, 4]
    buf.ack([rows[0].id, rows[1].id])
    await buf.flush()
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [3, 4, 5]
    assert buf.stats.depth == 3
    await buf.close()


async def test_messages_and_seqs_survive_a_reopen(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    for i in range(1, 4):
        buf.put(msg("a", i))
    buf.put(msg("b", 7))
    await buf.close()
    buf = await opened(tmp_path / "b.db")
    assert buf.last_seqs() == {"a": 3, "b": 7}
    assert [(r.message.device, r.message.seq) for r in await buf.fetch(0, 10)] == [
        ("a", 1),
        ("a", 2),
        ("a", 3),
        ("b", 7),
    ]
    await buf.close()


async def test_seq_is_kept_after_its_message_was_delivered(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    buf.put(msg("a", 41))
    await buf.flush()
    buf.ack([r.id for r in await buf.fetch(0, 10)])
    await buf.close()
    buf = await opened(tmp_path / "b.db")
    assert await buf.fetch(0, 10) == []
    assert buf.last_seqs() == {"a": 41}  # the next message is 42, never 1 again
    await buf.close()


async def test_commit_notifies_listeners(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    committed = asyncio.Event()
    buf.on_commit(committed.set)
    buf.put(msg("a", 1))
    await asyncio.wait_for(committed.wait(), 5)
    await buf.close()


async def test_dead_letter_leaves_the_queue_and_is_kept(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    buf.put(msg("a", 1))
    buf.put(msg("a", 2))
    await buf.flush()
    first = (await buf.fetch(0, 1))[0]
    buf.dead_letter(first.id, "Not authorized")
    await buf.flush()
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [2]
    assert buf.stats.dead_lettered == 1
    await buf.close()
    with sqlite3.connect(tmp_path / "b.db") as db:
        assert db.execute("SELECT seq, reason FROM dead_letters").fetchall() == [
            (1, "Not authorized")
        ]


async def test_a_cancelled_fetch_does_not_kill_the_buffer(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    buf.put(msg("a", 1))
    await buf.flush()
    for _ in range(20):
        task = asyncio.create_task(buf.fetch(0, 10))
        await asyncio.sleep(0)
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [1]
    await buf.close()


def quarantined(folder: Path) -> list[Path]:
    return [p for p in folder.glob("b.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
async def test_a_corrupt_file_is_moved_aside_and_a_fresh_one_used(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "b.db"
    buf = await opened(path)
    for i in range(1, 200):
        buf.put(msg("a", i))
    await buf.close()
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a database" * 100)
    else:
        path.write_bytes(data[: 4096 + 2048])  # a torn copy: half of the second page
    buf = await opened(path)
    buf.put(msg("a", 200))
    await buf.flush()
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [200]
    await buf.close()
    assert buf.stats.quarantined == [str(p) for p in quarantined(tmp_path)]
    assert len(buf.stats.quarantined) == 1


async def test_an_unusable_path_falls_back_to_memory_and_keeps_numbering_ahead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("")
    buf = SqliteBuffer(tmp_path / "file" / "b.db")
    await buf.open()  # never refuses to start because of its buffer
    assert buf.degraded is not None
    assert "cannot use buffer directory" in caplog.text
    assert "NOT kept across a restart" in caplog.text
    assert buf.seq_floor > 1_700_000_000_000  # no stored seq readable: continue from the clock
    buf.put(msg("a", buf.seq_floor + 1))
    await buf.flush()
    assert len(await buf.fetch(0, 10)) == 1
    await buf.close()


def big(device: str, seq: int, size: int = 2000) -> Message:
    """A payload that does not compress: random-looking bytes of `size`."""
    import hashlib

    body = b"".join(
        hashlib.sha256(f"{device}{seq}{i}".encode()).digest() for i in range(size // 32)
    )
    return Message(f"p/{device}/telemetry", body, 1, device, seq)


async def test_large_payloads_are_stored_compressed_and_come_back_identical(
    tmp_path: Path,
) -> None:
    buf = await opened(tmp_path / "b.db")
    payload = b'{"readings": [' + b'{"point": "p", "v": 1.0, "q": "good"},' * 200 + b"]}"
    buf.put(Message("t", payload, 1, "a", 1))
    await buf.flush()
    assert (await buf.fetch(0, 1))[0].message.payload == payload
    assert buf.stats.stored_bytes < len(payload) / 5
    await buf.close()


async def test_full_buffer_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    buf = SqliteBuffer(tmp_path / "b.db", flush_interval=0.01, max_size=50_000)
    await buf.open()
    for i in range(1, 101):
        buf.put(big("a" if i % 2 else "b", i))
        if i % 10 == 0:
            await buf.flush()
    await buf.flush()
    kept = [r.message.seq for r in await buf.fetch(0, 1000)]
    assert buf.stats.stored_bytes <= 50_000
    assert kept == list(range(101 - len(kept), 101))  # the newest, without holes
    assert buf.stats.dropped == 100 - len(kept)
    await buf.close()
    buf = await opened(tmp_path / "b.db")  # the count is kept in the file
    assert buf.stats.dropped == 100 - len(kept)
    await buf.close()
    with sqlite3.connect(tmp_path / "b.db") as db:
        per_device = dict(db.execute("SELECT device, dropped FROM drops").fetchall())
    dropped_seqs = set(range(1, 101)) - set(kept)
    assert per_device == {
        "a": sum(1 for s in dropped_seqs if s % 2),
        "b": sum(1 for s in dropped_seqs if not s % 2),
    }


async def test_full_buffer_can_refuse_the_newest_instead(tmp_path: Path) -> None:
    buf = SqliteBuffer(
        tmp_path / "b.db", flush_interval=0.01, max_size=50_000, when_full="drop_newest"
    )
    await buf.open()
    for i in range(1, 101):
        buf.put(big("a", i))
        if i % 10 == 0:
            await buf.flush()
    await buf.flush()
    kept = [r.message.seq for r in await buf.fetch(0, 1000)]
    assert kept == list(range(1, len(kept) + 1))  # the oldest, without holes
    assert buf.stats.dropped == 100 - len(kept)
    # Once the publisher takes some away, new messages fit again.
    buf.ack([r.id for r in await buf.fetch(0, 10)])
    buf.put(big("a", 101))
    await buf.flush()
    assert (await buf.fetch(0, 1000))[-1].message.seq == 101
    await buf.close()


async def test_messages_older_than_max_age_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import edge_agent.buffer.sqlite as impl

    monkeypatch.setattr(impl, "AGE_SWEEP_SECONDS", 0.0)
    buf = SqliteBuffer(tmp_path / "b.db", flush_interval=0.01, max_age=0.2)
    await buf.open()
    buf.put(msg("a", 1))
    await buf.flush()
    await asyncio.sleep(0.4)
    buf.put(msg("a", 2))
    await buf.flush()
    await buf.flush()
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [2]
    assert buf.stats.dropped == 1
    await buf.close()


async def test_dead_letters_can_be_requeued(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    buf.put(msg("a", 1))
    await buf.flush()
    buf.dead_letter((await buf.fetch(0, 1))[0].id, "Quota exceeded")
    await buf.flush()
    assert await buf.fetch(0, 10) == []
    assert await buf.requeue_dead_letters() == 1
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [1]
    assert await buf.requeue_dead_letters() == 0
    await buf.close()


async def test_fetch_sees_only_committed_messages_and_does_not_force_a_commit(
    tmp_path: Path,
) -> None:
    buf = SqliteBuffer(tmp_path / "b.db", flush_interval=0.5)
    await buf.open()
    buf.put(msg("a", 1))
    assert await buf.fetch(0, 10) == []  # not buffered yet: the group commit is still open
    await buf.flush()
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [1]
    assert buf.stats.commits == 1
    await buf.close()


async def test_a_pending_ack_hides_the_message_from_fetch(tmp_path: Path) -> None:
    buf = SqliteBuffer(tmp_path / "b.db", flush_interval=0.5)
    await buf.open()
    buf.put(msg("a", 1))
    buf.put(msg("a", 2))
    await buf.flush()
    first = (await buf.fetch(0, 1))[0]
    buf.ack([first.id])  # not committed yet, but must not be handed out again
    assert [r.message.seq for r in await buf.fetch(0, 10)] == [2]
    await buf.close()


async def test_state_is_kept_across_a_reopen(tmp_path: Path) -> None:
    buf = await opened(tmp_path / "b.db")
    assert buf.states() == {}
    buf.save_state("pump-101/pump_hours", b'{"seconds": 3600}')
    buf.save_state("pump-101/pump_hours", b'{"seconds": 3700}')  # the last one wins
    await buf.close()
    buf = await opened(tmp_path / "b.db")
    assert buf.states() == {"pump-101/pump_hours": b'{"seconds": 3700}'}
    await buf.close()
