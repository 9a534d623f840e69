"""bench.run's floor: a bare pymodbus loop, run in a subprocess (python -m bench.run --floor).

It reads and struct-decodes the same registers at the same rate as the agent, with nothing
else (no reading objects, JSON, buffer or MQTT): what fetching the data costs at least.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import struct
import time
from pathlib import Path

from bench.agent import BANK
from bench.common import run_async
from bench.run_setup import DEVICES_PER_SIM, POINTS


def floor_blocks() -> list[tuple[int, int]]:
    """The same requests the agent's planner makes: 62 float32 (124 registers) at most each,
    since a float32 may not straddle two requests of at most 125 registers."""
    per = 124
    total = 2 * POINTS
    return [(BANK + off, min(per, total - off)) for off in range(0, total, per)]


async def _floor(ports: list[int], devices: int, interval: float, out: str) -> None:
    """Poll until SIGTERM, then write what was done to `out` at once and wind down.

    The result is written before the poll tasks are stopped, and they are stopped with a
    flag rather than by cancellation alone: on Python 3.11 pymodbus' `asyncio.wait_for`
    drops a cancellation that coincides with a response (CPython gh-86296), so a single
    `cancel()` may not end a poll loop.
    """
    from pymodbus.client import AsyncModbusTcpClient

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    blocks = [
        (start, count, struct.Struct(f">{count}H"), struct.Struct(f">{count // 2}f"))
        for start, count in floor_blocks()
    ]
    clients = []
    for i in range(devices):
        client = AsyncModbusTcpClient(
            "127.0.0.1", port=ports[i // DEVICES_PER_SIM], timeout=1.0, retries=0, name=f"d{i}"
        )
        if not await client.connect():
            raise SystemExit(f"floor: cannot connect to port {ports[i // DEVICES_PER_SIM]}")
        clients.append(client)
    done: list[list[float]] = [[] for _ in clients]
    skipped = [0] * devices
    errors: list[str] = []

    async def poll(i: int, client: AsyncModbusTcpClient) -> None:
        deadline = time.monotonic()
        sink = 0.0
        while not stop.is_set():
            delay = deadline - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                for start, count, regs, floats in blocks:
                    rr = await client.read_holding_registers(start, count=count, device_id=1)
                    sink += floats.unpack(regs.pack(*rr.registers))[-1]
            except Exception as err:
                errors.append(repr(err))
            else:
                done[i].append(time.monotonic())
            deadline += interval
            late = time.monotonic() - deadline
            if late >= 0:  # skip missed slots, as the agent's runner does
                missed = math.floor(late / interval) + 1
                skipped[i] += missed
                deadline += missed * interval

    print("READY", flush=True)
    pending = {asyncio.create_task(poll(i, c)) for i, c in enumerate(clients)}
    await stop.wait()
    result = {"done": done, "skipped": skipped, "errors": errors[:20], "error_count": len(errors)}
    _write_json(out, result)  # blocking, but the window is over: nothing is measured now
    for _ in range(20):
        if not pending:
            break
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for client in clients:
        client.close()


def _write_json(path: str, data: object) -> None:
    Path(path).write_text(json.dumps(data))


def floor_main(ports: list[int], devices: int, interval: float, out: str) -> None:
    """Same event loop as the agent (uvloop where installed), so the floor is comparable."""
    run_async(_floor(ports, devices, interval, out))
