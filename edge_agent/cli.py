"""Command line: edge-agent run|check|read|schema. Maps every user mistake to a one-line
message and an exit code, never to a traceback.

Exit codes: 0 fine; 1 `read` found bad values or unreachable devices; 2 invalid config or
usage (check, read, schema); 78 invalid config at `run` (EX_CONFIG: systemd is told not to
restart a daemon that cannot start until someone edits its config).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, Loaded, load_config

EXIT_CONFIG_RUN = 78


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
        return int(args.fn(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
