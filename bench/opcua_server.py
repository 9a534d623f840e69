"""bench.opcua's OPC UA server, in a process of its own (``python -m bench.opcua --server PORT``).

1,000 Double variables ``ns=2;s=Bench.V0000..V0999`` under one object, all rewritten every
100 ms in one batch per tick (``Server.write_attribute_value`` per node, which skips the
checks of ``write_value``). Every tenth tick it writes "monotonic-time tick" to the ticks
file, so that the bench can tell how many changes the server really made.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import time
from pathlib import Path

ITEMS = 1000
TICK = 0.1  # server update period, s


async def serve(port: int, ticks_file: str | None = None) -> None:
    from asyncua import Server, ua

    logging_quiet()
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    idx = await server.register_namespace("urn:bench:opcua")
    assert idx == 2, idx
    obj = await server.nodes.objects.add_object(ua.NodeId("Bench", idx), "2:Bench")
    nodes = []
    for i in range(ITEMS):
        var = await obj.add_variable(
            ua.NodeId(f"Bench.V{i:04d}", idx), f"2:V{i:04d}", ua.Variant(0.0, ua.VariantType.Double)
        )
        nodes.append(var.nodeid)
    write = server.write_attribute_value
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        print("ready", flush=True)
        tick = 0
        nxt = time.monotonic()
        while not stop.is_set():
            tick += 1
            now = dt.datetime.now(dt.UTC)
            for i, nid in enumerate(nodes):
                await write(
                    nid,
                    ua.DataValue(
                        ua.Variant(100.0 + i + (tick % 1000) * 0.001, ua.VariantType.Double),
                        SourceTimestamp=now,
                        ServerTimestamp=now,
                    ),
                )
            if ticks_file and tick % 10 == 0:
                Path(ticks_file).write_text(f"{time.monotonic()} {tick}")  # noqa: ASYNC240 - a few bytes once a second
            nxt += TICK
            delay = nxt - time.monotonic()
            if delay < 0:  # late: skip the missed ticks rather than bunch them
                nxt = time.monotonic()
                delay = 0
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)


def logging_quiet() -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
