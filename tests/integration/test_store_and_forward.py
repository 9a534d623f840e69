"""Store-and-forward under real faults: the uplink cut, the agent killed, the buffer full or
corrupt. Asserted on what a real subscriber receives. Soak versions are marked slow
(`./scripts/test -m slow`); CI runs the short ones."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent import AgentProcess, SimThread, modbus_device, write_config
from tests.support.broker import Broker
from tests.support.proxy import CuttableProxy
from tests.support.subscriber import Subscriber

PREFIX = "maintenance4/test/gw-test"
WINDOW = 50  # mqtt.inflight: the most a reconnect may send twice

AgentFactory = Callable[..., AgentProcess]
SubscriberFactory = Callable[..., Subscriber]


POINTS: list[dict[str, Any]] = [
    {"name": "discharge_pressure", "address": 0, "type": "float32"},
    {"name": "bearing_temp", "address": 5, "type": "int16", "scale": 0.1},
    {"name": "tag", "address": 20, "type": "string", "length": 16},
]


def device(name: str, port: int, interval: str = "100ms") -> dict[str, Any]:
    return modbus_device(port, POINTS, name, poll_interval=interval, timeout=interval)


def arrivals(sub: Subscriber, name: str) -> list[int]:
    topic = f"{PREFIX}/{name}/telemetry"
    return [m.json()["seq"] for m in sub.messages if m.topic == topic]


def check_complete(seqs: list[int], *, duplicates_at_most: int) -> int:
    """Every seq from 1 to the last arrived, first arrivals in order; returns the last."""
    firsts: list[int] = []
    seen: set[int] = set()
    for s in seqs:
        if s not in seen:
            seen.add(s)
            firsts.append(s)
    assert firsts == list(range(1, len(firsts) + 1)), "lost or reordered messages"
    dups = len(seqs) - len(firsts)
    assert dups <= duplicates_at_most, f"{dups} duplicates"
    return firsts[-1]


def buffer_db(config: Path) -> Path:
    return config.parent / "buffer.db"


@pytest.mark.parametrize(
    "outage", [pytest.param(5, id="5s"), pytest.param(60, id="60s", marks=pytest.mark.slow)]
)
def test_uplink_outage_with_two_devices_at_10_hz(
    outage: int,
    tmp_path: Path,
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sims = [sim_factory(), sim_factory()]
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml",
            link.url,
            [device("pump-101", sims[0].port), device("pump-102", sims[1].port)],
        )
        agent = agent_factory(config)
        sub.wait_for(lambda _: len(arrivals(sub, "pump-102")) >= 5)
        link.cut()
        time.sleep(outage)
        link.restore()
        reconnects = 1
        target = {n: max(arrivals(sub, n)) + outage * 10 for n in ("pump-101", "pump-102")}
        sub.wait_for(
            lambda _: all(max(arrivals(sub, n)) >= t for n, t in target.items()),
            timeout=30 + outage,
        )
        assert agent.terminate() == 0
    assert "0 messages remain buffered" in agent.log()
    for name in ("pump-101", "pump-102"):
        last = check_complete(arrivals(sub, name), duplicates_at_most=WINDOW * reconnects)
        assert last >= outage * 10  # polled on through the outage: ~10 per second


@pytest.mark.parametrize(
    "crashes", [pytest.param(5, id="5"), pytest.param(20, id="20", marks=pytest.mark.slow)]
)
def test_kill_9_at_random_moments_loses_nothing_buffered(
    crashes: int,
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    rng = random.Random(crashes)
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(tmp_path / "a.yaml", link.url, [device("pump-101", modbus_sim.port)])
        for _ in range(crashes):
            agent = agent_factory(config)
            agent.wait_log("running: 1 devices")
            if rng.random() < 0.5:
                link.cut()  # the broker away: the buffer grows
            time.sleep(rng.uniform(0.3, 1.5))
            agent.kill()
            link.cut()
            link.restore()
        agent = agent_factory(config)  # the final drain
        agent.wait_log("MQTT: connected")
        time.sleep(1)
        assert agent.terminate() == 0
    assert "0 messages remain buffered" in agent.log()
    with sqlite3.connect(buffer_db(config)) as db:
        (last_seq,) = db.execute("SELECT seq FROM seqs WHERE device = 'pump-101'").fetchone()
    sub.wait_for(lambda _: max(arrivals(sub, "pump-101")) >= last_seq)
    assert (
        check_complete(arrivals(sub, "pump-101"), duplicates_at_most=WINDOW * (crashes + 1))
        == last_seq
    )


def test_full_buffer_drops_the_oldest_counted_exactly_and_delivers_the_rest(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml",
            link.url,
            [device("pump-101", modbus_sim.port)],
            buffer={"max_size": "8KiB", "min_free": 0},
        )
        agent = agent_factory(config)
        sub.wait_for(lambda _: len(arrivals(sub, "pump-101")) >= 3)
        link.cut()
        agent.wait_log("buffer full \\(max_size reached\\): dropping the oldest", timeout=30)
        time.sleep(1)
        link.restore()
        agent.wait_log("MQTT: connected again")
        agent.wait_log("buffer has room again")
        time.sleep(0.5)
        assert agent.terminate() == 0
    with sqlite3.connect(buffer_db(config)) as db:
        (dropped,) = db.execute("SELECT dropped FROM drops WHERE device = 'pump-101'").fetchone()
        (last_seq,) = db.execute("SELECT seq FROM seqs WHERE device = 'pump-101'").fetchone()
    sub.wait_for(lambda _: max(arrivals(sub, "pump-101")) >= last_seq)
    got = set(arrivals(sub, "pump-101"))
    missing = set(range(1, last_seq + 1)) - got
    assert dropped > 0
    # Every message is delivered or counted as dropped. A dropped one may still have reached
    # the broker when the link was cut between its PUBLISH and its PUBACK (at most the window).
    assert len(missing) <= dropped <= len(missing) + WINDOW
    # What was dropped is the oldest of the outage: one contiguous run of seqs.
    assert sorted(missing) == list(range(min(missing), max(missing) + 1))


def test_corrupt_buffer_at_start_is_moved_aside_and_data_flows(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    config = write_config(tmp_path / "a.yaml", broker.url, [device("pump-101", modbus_sim.port)])
    buffer_db(config).write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 40)
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    agent = agent_factory(config)
    sub.wait_for(lambda _: len(arrivals(sub, "pump-101")) >= 3, timeout=10)
    assert "is unreadable" in agent.log()
    assert "moved aside" in agent.log()
    assert len(list(tmp_path.glob("buffer.db.corrupt-*"))) == 1
    assert agent.terminate() == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """A real small file system (tmpfs) for disk-full and read-only faults: needs root."""
    mounted: list[Path] = []

    def mount(size: str = "1m", *options: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        proc = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the file system but for about `leave` bytes."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    free = st.f_bavail * st.f_frsize
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_disk_full_is_reported_once_survived_and_recovered(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
    small_disk: Callable[..., Path],
) -> None:
    disk = small_disk("2m")
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml",
            link.url,
            [device("pump-101", modbus_sim.port, "50ms")],
            buffer={"path": str(disk / "buffer.db"), "min_free": 0},
        )
        link.cut()
        agent = agent_factory(config)
        agent.wait_log("running: 1 devices")
        filler = fill(disk, leave=40_000)
        agent.wait_log("buffer commit failed: database or disk is full", timeout=60)
        time.sleep(1)  # many more polls fail to commit: the agent must neither die nor flood
        assert agent.proc.poll() is None
        assert agent.log().count("buffer commit failed") == 1
        filler.unlink()
        agent.wait_log("buffer commits work again after", timeout=10)
        link.restore()
        agent.wait_log("MQTT: connected again")
        first_after = max(arrivals(sub, "pump-101"), default=0)
        sub.wait_for(lambda _: max(arrivals(sub, "pump-101"), default=0) > first_after + 10)
        assert agent.terminate() == 0


def test_min_free_is_kept_by_dropping_the_oldest(
    tmp_path: Path,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    small_disk: Callable[..., Path],
) -> None:
    disk = small_disk("4m")
    config = write_config(
        tmp_path / "a.yaml",
        "mqtt://127.0.0.1:1",
        [device("pump-101", modbus_sim.port, "50ms")],
        buffer={"path": str(disk / "buffer.db"), "min_free": "3MiB"},
    )
    agent = agent_factory(config)
    agent.wait_log("running: 1 devices")
    fill(disk, leave=3 * 2**20 + 100_000)
    agent.wait_log("buffer full \\(min_free on the file system reached\\)", timeout=60)
    time.sleep(1)
    assert "buffer commit failed" not in agent.log()  # the cap acted before the disk was full
    assert agent.terminate() == 0


def test_read_only_buffer_directory_runs_in_memory_and_data_flows(
    tmp_path: Path,
    broker: Broker,
    modbus_sim: SimThread,
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
    small_disk: Callable[..., Path],
) -> None:
    disk = small_disk("1m")
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    config = write_config(
        tmp_path / "a.yaml",
        broker.url,
        [device("pump-101", modbus_sim.port)],
        buffer={"path": str(disk / "state" / "buffer.db")},
    )
    agent = agent_factory(config)
    sub.wait_for(lambda _: len(arrivals(sub, "pump-101")) >= 3, timeout=10)
    log = agent.log()
    assert "cannot be used" in log
    assert "Read-only file system" in log
    assert "running with a buffer in memory" in log
    assert agent.terminate() == 0


def test_state_messages_do_not_overflow_a_small_window(
    tmp_path: Path,
    broker: Broker,
    sim_factory: Callable[..., SimThread],
    agent_factory: AgentFactory,
    subscriber_factory: SubscriberFactory,
) -> None:
    """On reconnect the status and meta messages go out beside a backlog that fills the
    in-flight window: paho must not refuse them (it once did: 'Message queue full')."""
    sim = sim_factory()
    names = ["pump-101", "pump-102", "pump-103"]
    sub = subscriber_factory(broker.url, f"{PREFIX}/+/telemetry")
    with CuttableProxy(broker.port) as link:
        config = write_config(
            tmp_path / "a.yaml",
            link.url,
            [device(n, sim.port) for n in names],
            mqtt={"inflight": 1},
        )
        agent = agent_factory(config)
        sub.wait_for(lambda _: len(arrivals(sub, "pump-103")) >= 3)
        link.cut()
        time.sleep(1.5)
        link.restore()
        agent.wait_log("MQTT: connected again")
        target = {n: max(arrivals(sub, n)) + 10 for n in names}
        sub.wait_for(
            lambda _: all(max(arrivals(sub, n)) >= t for n, t in target.items()), timeout=30
        )
        assert agent.terminate() == 0
    assert "publish failed" not in agent.log()
    for n in names:
        check_complete(arrivals(sub, n), duplicates_at_most=2)
