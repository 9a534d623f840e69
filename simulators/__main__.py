"""Command line: ``python -m simulators modbus|opcua --port N [options]``.

Once the server accepts connections it prints exactly one line to stdout,
``READY modbus <host>:<port>`` or ``READY opcua opc.tcp://<host>:<port>/edge-agent/sim``,
so scripts can wait for it instead of sleeping.  SIGTERM or SIGINT stop it
with exit code 0; a port already in use gives exit code 1.
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

    opcua = kinds.add_parser("opcua", help="OPC UA server of a motor-driven fan (Motor7)")
    opcua.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    opcua.add_argument("--port", type=int, default=4840, help="TCP port, 0 = any free port")
    opcua.add_argument(
        "--deterministic", action="store_true", help="serve the fixed values of the README"
    )
    opcua.add_argument("--seed", type=int, default=0, help="seed of the motor model (>= 0)")
    opcua.add_argument(
        "--fault-severity",
        type=_non_negative,
        default=0.0,
        metavar="X",
        help="bearing outer-race fault severity, 0 = healthy .. 99 = end of life (default 0)",
    )
    opcua.add_argument(
        "--degrade-after",
        type=_non_negative,
        default=None,
        metavar="HOURS",
        help="simulated hours until a bearing fault starts to develop "
        "(default: none, --fault-severity is used)",
    )
    opcua.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        metavar="X",
        help="simulated seconds per real second, e.g. 3600 = an hour a second (default 1)",
    )
    opcua.add_argument(
        "--secure",
        action="store_true",
        help="also offer Basic256Sha256 Sign and SignAndEncrypt endpoints",
    )
    opcua.add_argument(
        "--cert-dir",
        default=None,
        metavar="DIR",
        help="server certificate (made if missing) and trusted/ client certificates",
    )
    opcua.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="CERT",
        help="a client certificate (PEM or DER) to accept; repeatable",
    )
    opcua.add_argument("--trust-all", action="store_true", help="accept every client certificate")
    opcua.add_argument("--log-level", default="WARNING", help="logging level (stderr)")
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


async def _serve_opcua(args: argparse.Namespace) -> int:
    from .opcua_sim import OpcUaSimulator  # asyncua is only needed here

    if args.cert_dir is not None and not args.secure:
        print("opcua simulator: --cert-dir needs --secure", file=sys.stderr)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        sim = OpcUaSimulator(
            host=args.host,
            port=args.port,
            deterministic=args.deterministic,
            seed=args.seed,
            security=args.secure,
            cert_dir=args.cert_dir,
            fault_severity=args.fault_severity,
            trust_all=args.trust_all,
            degrade_after_h=args.degrade_after,
            time_scale=args.time_scale,
        )
        for cert in args.trust:
            sim.trust(cert)
    except (OSError, ValueError) as exc:
        print(f"opcua simulator: {exc}", file=sys.stderr)
        return 2
    if args.log_level.upper() == "DEBUG":
        for name in ("asyncua.server", "asyncua.common.connection", "asyncua.crypto"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        await sim.start()
    except OSError as exc:
        print(f"opcua simulator: {exc}", file=sys.stderr)
        return 1
    print(f"READY opcua {sim.endpoint}", flush=True)
    await stop.wait()
    await sim.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator selected on the command line until signalled."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    if args.kind == "opcua":
        return asyncio.run(_serve_opcua(args))
    return asyncio.run(_serve_modbus(args))


if __name__ == "__main__":
    sys.exit(main())
