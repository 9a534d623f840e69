"""A process that buffers messages one by one and prints each seq once it is committed
("buffered"): the power-cut test kills it and checks that every printed seq survived."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge_agent.buffer import SqliteBuffer
from edge_agent.readings import Message


async def main(path: Path, sync: str) -> None:
    buf = SqliteBuffer(path, sync=sync, flush_interval=0.002, min_free=0)
    await buf.open()
    seq = buf.last_seqs().get("pump", 0)
    print(f"START {seq}", flush=True)
    while True:
        seq += 1
        body = (
            f'{{"device":"pump","seq":{seq},"readings":['
            + ",".join(f'{{"point":"p{i}","v":{seq * 0.5 + i}}}' for i in range(20))
            + "]}"
        ).encode()
        buf.put(Message("t/pump/telemetry", body, 1, "pump", seq))
        await buf.flush()
        print(seq, flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2]))
