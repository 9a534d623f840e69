"""The demo's MQTT broker: finding mosquitto and writing its config, or serving amqtt.

The start-up itself (spawn, wait, retry on a port clash) is `Demo.start_broker`, because it
shares the spawning and waiting with the simulators; this module holds what is particular
to brokers, including the embedded amqtt broker that ``--serve-amqtt PORT`` runs in a child
interpreter.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import signal
import socket

from .children import HOST, Child

BROKER_START_TIMEOUT = 15.0
# Debian installs mosquitto in /usr/sbin, which is not on an ordinary user's PATH.
EXTRA_BIN_DIRS = ("/usr/sbin", "/usr/local/sbin")

MOSQUITTO_READY = re.compile(r"mosquitto version \S+ running")
AMQTT_READY = "READY amqtt"
PORT_IN_USE = re.compile(r"address already in use", re.IGNORECASE)


def free_port() -> int:
    """A port that was free a moment ago (the kernel's pick); callers retry on a clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


def broker_ready(broker: Child, marker: re.Pattern[str], port: int) -> bool:
    """The broker logged that it runs *and* accepts TCP on `port`.

    The marker as well as the connect: a stranger that grabbed the port between
    `free_port()` and the broker's bind would answer the connect.
    """
    return bool(marker.search(broker.log_text())) and port_accepts(port)


def find_mosquitto() -> str | None:
    path = os.pathsep.join([os.environ.get("PATH", ""), *EXTRA_BIN_DIRS])
    return shutil.which("mosquitto", path=path)


def amqtt_available() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def mosquitto_config(port: int) -> str:
    # Started as root, mosquitto would switch to the `mosquitto` user, and that change of
    # credentials cancels the parent-death signal: it would outlive a killed demo.
    user = ["user root"] if os.geteuid() == 0 else []
    return "\n".join(
        [
            "# written by simulators/demo/brokers.py for one demo run",
            *user,
            f"listener {port} {HOST}",
            "allow_anonymous true",
            "persistence false",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "",
        ]
    )


async def serve_amqtt(port: int) -> None:
    """The embedded broker: anonymous, plain TCP on 127.0.0.1, until SIGTERM or SIGINT."""
    # Only needed in this mode, and optional (the `demo` extra).
    from amqtt.broker import Broker  # type: ignore[import-untyped]

    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{HOST}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    print(f"{AMQTT_READY} {HOST}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()
