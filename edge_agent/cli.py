"""Command line: edge-agent run|check|read|schema. Maps every user mistake to a one-line
message and an exit code, never to a traceback.

Exit codes: 0 fine; 1 `read` found bad values or unreachable devices; 2 invalid config or
usage (check, read, schema); 78 invalid config at `run` (EX_CONFIG: systemd is told not to
restart a daemon that cannot start until someone edits its config); 141 the output pipe
was closed early (`edge-agent read ... | head`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, Loaded, load_config

EXIT_CONFIG_RUN = 78
EXIT_BROKEN_PIPE = 141  # as a shell reports a process ended by SIGPIPE


def _load(path: str) -> Loaded:
    try:
        return load_config(path)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        print(f"{path}: {len(err.problems)} problem(s); nothing was started", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_check(args: argparse.Namespace) -> int:
    from .summary import summary

    print(summary(_load(args.config)))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import orjson

    from .config.models import Config

    schema = Config.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "edge-agent configuration"
    sys.stdout.write(orjson.dumps(schema, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    from .commission import read_devices

    loaded = _load(args.config)
    names = [d.name for d in loaded.config.devices]
    if args.device and args.device not in names:
        print(
            f"{args.config}: no device named '{args.device}'; devices: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    return _run_async(read_devices(loaded.config, args.device))


def cmd_buffer(args: argparse.Namespace) -> int:
    from .buffer.inspect import NoBuffer
    from .buffer_cli import print_export, print_stats

    loaded = _load(args.config)
    try:
        if args.action == "stats":
            print_stats(loaded.config)
        else:
            return print_export(loaded.config, args.since)
    except NoBuffer as err:
        print(f"edge-agent: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_browse(args: argparse.Namespace) -> int:
    from .config.opcua import OpcUaDevice

    loaded = _load(args.config)
    dev = next((d for d in loaded.config.devices if d.name == args.device), None)
    if not isinstance(dev, OpcUaDevice):
        names = [d.name for d in loaded.config.devices if isinstance(d, OpcUaDevice)]
        print(
            f"{args.config}: no OPC UA device named '{args.device}'; OPC UA devices: "
            f"{', '.join(names) or 'none'}",
            file=sys.stderr,
        )
        return 2
    from .drivers.base import DriverError
    from .drivers.opcua.browse import browse

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)  # errors: the line below
    try:
        rows = _run_async(browse(dev, args.depth))
    except DriverError as err:
        print(f"{dev.name}: {err}", file=sys.stderr)
        return 1
    for depth, node_id, name, dtype, value in rows:
        print(
            f"{'  ' * depth}{name}  [{node_id}]"
            + (f"  {dtype}" if dtype else "")
            + (f" = {value}" if value else "")
        )
    return 0


def cmd_certs(args: argparse.Namespace) -> int:
    import socket
    from pathlib import Path

    from .drivers.opcua.certs import make_client_certificate

    hostname = args.hostname or socket.gethostname()
    uri = args.uri or f"urn:{hostname}:edge-agent"
    try:
        cert, key = make_client_certificate(Path(args.out), uri, hostname)
    except FileExistsError as err:
        print(
            f"edge-agent: {err}: servers may trust it already: keep the existing pair, or "
            "remove it to make a new one (servers that trust the old one will then refuse "
            "this gateway until they trust the new one)",
            file=sys.stderr,
        )
        return 1
    except OSError as err:
        print(f"edge-agent: cannot write to {args.out}: {err.strerror or err}", file=sys.stderr)
        return 1
    print(f"certificate  {cert}\nprivate key  {key}\napplication URI  {uri}")
    print(
        "Next: copy the certificate into the server's trusted clients, and the server's "
        "certificate into the directory named by security.trusted_servers (docs: README)."
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .app import run_agent

    try:
        return _run_async(run_agent(args.config))
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        print(f"{args.config}: {len(err.problems)} problem(s); not started", file=sys.stderr)
        return EXIT_CONFIG_RUN
    except Exception as err:
        print(f"edge-agent: stopped by an internal error: {err!r}", file=sys.stderr)
        return 1


def _run_async(coro: object) -> int:
    try:
        import uvloop  # Linux only: a faster event loop, less CPU per reading
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type,no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Poll industrial devices, buffer every reading, publish them over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("run", help="run the agent (the daemon's entry point)")
    p.add_argument("config")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("check", help="validate a config and print a summary")
    p.add_argument("config")
    p.set_defaults(fn=cmd_check)
    p = sub.add_parser("read", help="poll once and print decoded values (no MQTT)")
    p.add_argument("config")
    p.add_argument("device", nargs="?", help="only this device")
    p.set_defaults(fn=cmd_read)
    p = sub.add_parser("browse", help="print an OPC UA device's address space as a tree")
    p.add_argument("config")
    p.add_argument("device")
    p.add_argument("--depth", type=int, default=3, help="levels below Objects (default 3)")
    p.set_defaults(fn=cmd_browse)
    p = sub.add_parser("certs", help="make this gateway's OPC UA client certificate and key")
    p.add_argument("kind", choices=["opcua"])
    p.add_argument(
        "--out", required=True, help="directory for edge-agent-cert.der and edge-agent-key.pem"
    )
    p.add_argument("--uri", help="application URI (default urn:HOSTNAME:edge-agent)")
    p.add_argument("--hostname", help="host name in the certificate (default: this host's)")
    p.set_defaults(fn=cmd_certs)
    p = sub.add_parser("buffer", help="inspect the store-and-forward buffer")
    p.add_argument("action", choices=["stats", "export"])
    p.add_argument("config")
    p.add_argument(
        "--since", help="export: from this time (2026-11-29T08:00, local) or this long ago (2h, 7d)"
    )
    p.add_argument("--format", choices=["jsonl"], default="jsonl", help="export format")
    p.set_defaults(fn=cmd_buffer)
    p = sub.add_parser("schema", help="print the config's JSON Schema")
    p.set_defaults(fn=cmd_schema)
    args = parser.parse_args(argv)
    try:
        code = int(args.fn(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        if args.command == "run":
            raise  # the daemon writes no stdout: an EPIPE there is a socket's, a real error
        # `edge-agent read ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
