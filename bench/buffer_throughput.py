"""bench.buffer's scenario 2, in this process: how fast one SqliteBuffer commits and delivers;
and, with the same producer, the prefill of scenario 3's backlog."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.buffer_bench import Bench
from bench.buffer_runs import ThroughputRun
from bench.buffer_setup import (
    BACKLOG_MESSAGES,
    BACKLOG_SECONDS,
    DEPTH_CAP,
    POINTS,
    SITE,
    THROUGHPUT_MAX_SIZE,
    buffer_defaults,
    say,
)
from bench.buffer_telemetry import telemetry
from bench.common import run_async
from bench.proc import (
    cpu_seconds,
    machine_load,
    machine_sample,
    maybe_cpu,
    proc_io,
    thread_cpu_seconds,
)


def throughput(
    bench: Bench, sync: str, mode: str, seconds: float, pool: Sequence[Any]
) -> ThroughputRun:
    """Scenario 2, one run: a buffer of its own on the measured file system, 2 s of warm-up."""
    b = bench.data / f"throughput-{sync}-{mode}"
    b.mkdir()
    label = ThroughputRun(sync, mode).label
    say(f"[throughput, {label}] warm-up 2 s, window {seconds:g} s")
    run = run_async(
        measure_throughput(b / "buffer.db", sync, mode, 2.0, seconds, bench.broker, pool)
    )
    bench.discard(b)
    say(
        f"  committed {run.rate(run.committed):,.0f} msg/s "
        f"({run.rate(run.committed) * POINTS:,.0f} readings/s), delivered "
        f"{run.rate(run.delivered):,.0f} msg/s; {run.commits} commits"
    )
    return run


async def fill(buffer: Any, messages: Sequence[Any], keep_queued: int) -> None:
    """Put `messages`, keeping at most `keep_queued` not yet committed (put() never blocks,
    so a producer faster than the commits would only grow the queue)."""
    committed = asyncio.Event()
    buffer.on_commit(committed.set)
    base = buffer.stats.committed
    for i, m in enumerate(messages):
        while i - (buffer.stats.committed - base) - buffer.stats.lost >= keep_queued:
            committed.clear()
            await wait_event(committed, 1.0)
        buffer.put(m)
    await buffer.flush()


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for `event` at most `timeout` seconds. asyncio.timeout rather than wait_for: on
    Python 3.11 wait_for may swallow a cancellation that coincides with the event
    (CPython gh-86296), and a loop around it would then never end."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


async def measure_throughput(
    path: Path,
    sync: str,
    mode: str,
    warmup: float,
    seconds: float,
    broker: Any,
    pool: Sequence[Any],
) -> ThroughputRun:
    """One throughput run (see ThroughputRun.mode). The producer keeps at most two group
    commits' worth of messages queued: put() never blocks, so an unbounded producer would
    only measure the queue. With a consumer it also keeps the backlog under DEPTH_CAP, so
    that committed and delivered settle at the sustainable rate."""
    from edge_agent.buffer import SqliteBuffer
    from edge_agent.config.models import Mqtt
    from edge_agent.publisher import MqttPublisher
    from edge_agent.readings import Message

    result = ThroughputRun(sync, mode)
    flush_interval, flush_messages = buffer_defaults()
    buf = SqliteBuffer(
        path,
        sync=sync,
        flush_interval=flush_interval,
        flush_messages=flush_messages,
        max_size=THROUGHPUT_MAX_SIZE,  # the commit-only run must not reach the cap
    )
    await buf.open()
    tid = next(t.native_id for t in threading.enumerate() if t.name == "buffer" and t.native_id)
    produced = asyncio.Event()
    consumed = asyncio.Event()
    buf.on_commit(produced.set)
    buf.on_commit(consumed.set)
    keep_queued = 2 * flush_messages
    depth_cap = DEPTH_CAP if mode != "commit" else 1 << 62
    running = True
    puts = 0

    async def produce() -> None:
        nonlocal puts
        while running:
            st = buf.stats
            if st.depth >= depth_cap:  # commits of acks alone do not notify: poll
                await asyncio.sleep(0.005)
                continue
            if puts - st.committed - st.lost >= keep_queued:
                produced.clear()
                await wait_event(produced, 0.2)
                continue
            m = pool[puts % len(pool)]
            puts += 1
            buf.put(Message(m.topic, m.payload, m.qos, m.device, puts))
            if puts % 50 == 0:
                await asyncio.sleep(0)

    async def consume() -> None:
        cursor = 0
        while running:
            consumed.clear()
            rows = await buf.fetch(cursor, flush_messages)
            if rows:
                cursor = rows[-1].id
                buf.ack([r.id for r in rows])
            else:
                await wait_event(consumed, 0.5)

    publisher: Any = None
    tasks: list[asyncio.Task[None]] = []
    try:
        if mode == "mqtt":
            publisher = MqttPublisher(
                Mqtt(url=broker.url),  # type: ignore[call-arg]
                f"bench-throughput-{sync}",
                f"maintenance4/{SITE}/gw-throughput-{sync}",
                buf,
                version="bench",
            )
            tasks.append(asyncio.create_task(publisher.run()))
            for _ in range(200):
                if publisher.connected:
                    break
                await asyncio.sleep(0.05)
            else:
                result.failure = "the publisher did not connect to the broker within 10 s"
                return result
        elif mode == "local":
            tasks.append(asyncio.create_task(consume()))
        tasks.append(asyncio.create_task(produce()))

        def delivered() -> int:
            return publisher.published if publisher is not None else buf.stats.acked

        def sample() -> tuple[float, int, int, int, float, float, float, float, int]:
            st = buf.stats
            return (
                time.monotonic(),
                st.committed,
                delivered(),
                st.commits,
                st.commit_seconds,
                cpu_seconds(),
                thread_cpu_seconds(tid),
                maybe_cpu(broker.pid),
                proc_io()["write_bytes"],
            )

        await asyncio.sleep(warmup)
        s0, m0 = sample(), machine_sample()
        await asyncio.sleep(seconds)
        s1, m1 = sample(), machine_sample()
        result.machine = machine_load(m0, m1)
        result.seconds = s1[0] - s0[0]
        result.committed = s1[1] - s0[1]
        result.delivered = s1[2] - s0[2]
        result.commits = s1[3] - s0[3]
        result.commit_s = s1[4] - s0[4]
        result.cpu_s = s1[5] - s0[5]
        result.buffer_cpu_s = s1[6] - s0[6]
        result.broker_cpu_s = s1[7] - s0[7]
        result.write_bytes = s1[8] - s0[8]
        result.depth_end = buf.stats.depth
        st = buf.stats
        if st.lost or st.io_errors or st.dropped:
            result.failure = (
                f"{st.lost} messages lost, {st.dropped} dropped, {st.io_errors} I/O errors"
            )
    finally:
        running = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if publisher is not None:
            await publisher.close()
        await buf.close()
    return result


async def prefill(path: Path, sync: str, prefix: str, fixed: bool) -> None:
    """The 10-minute backlog: BACKLOG_MESSAGES agent-shaped messages of DEVICE (seq
    1..6,000, poll timestamps of the last 10 minutes), committed through SqliteBuffer with
    the agent's settings, so the file is what the agent would have left after the outage."""
    from edge_agent.buffer import SqliteBuffer

    flush_interval, flush_messages = buffer_defaults()
    messages: list[Any] = []
    first = time.time_ns() // 1_000_000 - round(BACKLOG_SECONDS * 1000)
    telemetry(prefix, BACKLOG_MESSAGES, fixed, first, messages.append)
    buf = SqliteBuffer(
        path, sync=sync, flush_interval=flush_interval, flush_messages=flush_messages
    )
    await buf.open()
    try:
        await fill(buf, messages, 2 * flush_messages)
        if buf.stats.depth != BACKLOG_MESSAGES:
            raise RuntimeError(f"prefill: {buf.stats.depth} messages buffered, not 6,000")
    finally:
        await buf.close()
