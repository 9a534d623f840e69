"""The demo's command line: ``./scripts/demo [--seconds N] [--embedded-broker]``.

The hidden ``--serve-amqtt PORT`` is how the demo runs its embedded broker in a child
interpreter (see `brokers.serve_amqtt`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from .brokers import serve_amqtt
from .run import Demo


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./scripts/demo",
        description="Run the pump and motor simulators, an MQTT broker and edge-agent on "
        "config/demo.yaml, and show the published readings as a live table until Ctrl-C.",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        metavar="N",
        help="show the table for N seconds, then stop cleanly",
    )
    parser.add_argument(
        "--embedded-broker",
        action="store_true",
        help="use the embedded amqtt broker (MQTT 3.1.1) even if mosquitto is installed",
    )
    parser.add_argument("--serve-amqtt", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_amqtt is not None:
        logging.basicConfig(
            level=logging.WARNING,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        asyncio.run(serve_amqtt(args.serve_amqtt))
        return 0
    demo = Demo(args.seconds, args.embedded_broker)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, demo.on_signal)
    return demo.run()
