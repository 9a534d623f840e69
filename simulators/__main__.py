"""Command line: ``python -m simulators modbus --port 5020 [options]``.

Once the server accepts connections it prints exactly one line,
``READY modbus <host>:<port>``, to stdout, so scripts can wait for it
instead of sleeping.  SIGTERM or SIGINT stop it with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from collections.abc import Sequence

from .modbus_sim import ModbusSimulator


def _non_negative(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True)
    modbus = kinds.add_parser("modbus", help="Modbus TCP pump PLC")
    modbus.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    modbus.add_argument("--port", type=int, default=5020, help="TCP port, 0 = any free port")
    modbus.add_argument("--unit", type=int, default=1, help="documented unit id (all are answered)")
    modbus.add_argument(
        "--deterministic", action="store_true", help="serve the fixed values of the register map"
    )
    modbus.add_argument("--seed", type=int, default=None, help="seed for the pump model")
    modbus.add_argument(
        "--degrade-after",
        type=_non_negative,
        default=None,
        metavar="HOURS",
        help="simulated hours until a bearing fault starts to develop (default: no fault)",
    )
    modbus.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="X",
        help="simulated seconds per real second, e.g. 3600 = an hour a second (default 1)",
    )
    modbus.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
    return parser


async def _serve_modbus(args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sim = ModbusSimulator(
        host=args.host,
        port=args.port,
        unit_id=args.unit,
        deterministic=args.deterministic,
        seed=args.seed,
        degrade_after_h=args.degrade_after,
        time_scale=args.time_scale,
    )
    try:
        await sim.start()
    except OSError as exc:
        print(f"modbus simulator: {exc}", file=sys.stderr)
        return 1
    print(f"READY modbus {args.host}:{sim.port}", flush=True)
    await stop.wait()
    await sim.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator selected on the command line until signalled."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    return asyncio.run(_serve_modbus(args))


if __name__ == "__main__":
    sys.exit(main())
